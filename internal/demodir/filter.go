package demodir

import (
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// dnValued are the attributes whose values are compared as DNs, so that
// (member=UID=Adam, ou=People,...) finds the group like slapd would.
var dnValued = map[string]bool{"member": true}

// matches evaluates a filter compiled by ldap.CompileFilter against e.
// Matching is case-insensitive throughout (every sample attribute has a
// caseIgnore syntax, or is a DN); what the demo does not know — extensible
// matches, undefined results — is false.
func matches(f *ber.Packet, e *entry) bool {
	switch f.Tag {
	case ldap.FilterAnd:
		for _, c := range f.Children {
			if !matches(c, e) {
				return false
			}
		}
		return true
	case ldap.FilterOr:
		for _, c := range f.Children {
			if matches(c, e) {
				return true
			}
		}
		return false
	case ldap.FilterNot:
		return len(f.Children) == 1 && !matches(f.Children[0], e)
	case ldap.FilterPresent:
		return len(e.values(f.Data.String())) > 0
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch:
		name, want, ok := assertion(f)
		return ok && anyValue(e, name, func(v string) bool { return equal(name, v, want) })
	case ldap.FilterGreaterOrEqual:
		name, want, ok := assertion(f)
		return ok && anyValue(e, name, func(v string) bool { return compare(v, want) >= 0 })
	case ldap.FilterLessOrEqual:
		name, want, ok := assertion(f)
		return ok && anyValue(e, name, func(v string) bool { return compare(v, want) <= 0 })
	case ldap.FilterSubstrings:
		if len(f.Children) != 2 {
			return false
		}
		name := f.Children[0].Data.String()
		return anyValue(e, name, func(v string) bool { return substrings(strings.ToLower(v), f.Children[1].Children) })
	}
	return false
}

func assertion(f *ber.Packet) (name, value string, ok bool) {
	if len(f.Children) != 2 {
		return "", "", false
	}
	return f.Children[0].Data.String(), f.Children[1].Data.String(), true
}

func anyValue(e *entry, name string, pred func(string) bool) bool {
	for _, v := range e.values(name) {
		if pred(v) {
			return true
		}
	}
	return false
}

func equal(attrName, a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	if !dnValued[strings.ToLower(attrName)] {
		return false
	}
	da, err1 := ldap.ParseDN(a)
	db, err2 := ldap.ParseDN(b)
	return err1 == nil && err2 == nil && da.EqualFold(db)
}

// compare orders integers numerically and everything else by lowercased
// string, which is all the ordering the sample data needs.
func compare(a, b string) int {
	if x, err := strconv.ParseInt(a, 10, 64); err == nil {
		if y, err := strconv.ParseInt(b, 10, 64); err == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// substrings matches v (lowercased) against initial, any and final parts.
func substrings(v string, parts []*ber.Packet) bool {
	for i, p := range parts {
		s := strings.ToLower(p.Data.String())
		switch p.Tag {
		case ldap.FilterSubstringsInitial:
			if i != 0 || !strings.HasPrefix(v, s) {
				return false
			}
			v = v[len(s):]
		case ldap.FilterSubstringsAny:
			j := strings.Index(v, s)
			if j < 0 {
				return false
			}
			v = v[j+len(s):]
		case ldap.FilterSubstringsFinal:
			if i != len(parts)-1 || !strings.HasSuffix(v, s) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
