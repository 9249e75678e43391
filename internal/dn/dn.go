// Package dn compares distinguished names the way directories do. It is the
// one place ldapgate decides whether two spellings name the same entry
// (exempt_dns, secure_groups, break-glass users, Who Am I answers), so that
// a spelling chosen by an attacker or an admin cannot make one comparison
// say yes where another says no.
//
// Two DNs are equal when, RDN by RDN, they have the same attributes in any
// order (multi-valued RDNs), attribute types compared without case and with
// the common OIDs read as their names (2.5.4.3 is cn), and values compared
// after RFC 4514 unescaping, without case, and with insignificant spaces
// removed (leading and trailing, and runs of inner spaces counted as one,
// as caseIgnoreMatch does, RFC 4518). Every naming attribute of the
// directories ldapgate fronts (cn, ou, dc, uid, o, c, l, st...) matches
// without case; a case-exact naming attribute would be folded too, which can
// only make two distinct entries compare equal, so exemptions must name
// entries of case-insensitive naming attributes (all of AD and OpenLDAP's).
package dn

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ErrEmpty means a DN with no RDN where an entry must be named.
var ErrEmpty = errors.New("empty DN")

// DN is a parsed, normalized distinguished name.
type DN struct {
	rdns []string // each RDN canonical: "type=value" pairs sorted, joined by "+"
}

// Parse reads an RFC 4514 string DN. The root DN ("") is ErrEmpty.
func Parse(s string) (DN, error) {
	parsed, err := ldap.ParseDN(s)
	if err != nil {
		return DN{}, err
	}
	if len(parsed.RDNs) == 0 {
		return DN{}, ErrEmpty
	}
	d := DN{rdns: make([]string, len(parsed.RDNs))}
	for i, rdn := range parsed.RDNs {
		avas := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			t := normalType(a.Type)
			if !validType(t) {
				return DN{}, fmt.Errorf("attribute type %q is neither a name nor an OID", a.Type)
			}
			avas[j] = t + "=" + escape(normalValue(a.Value))
		}
		slices.Sort(avas)
		d.rdns[i] = strings.Join(avas, "+")
	}
	return d, nil
}

// String is the canonical spelling: equal DNs print the same.
func (d DN) String() string { return strings.Join(d.rdns, ",") }

// Equal reports whether d and o name the same entry.
func (d DN) Equal(o DN) bool { return slices.Equal(d.rdns, o.rdns) }

// Under reports whether d is o or an entry below it.
func (d DN) Under(o DN) bool {
	n := len(d.rdns) - len(o.rdns)
	return len(o.rdns) > 0 && n >= 0 && slices.Equal(d.rdns[n:], o.rdns)
}

// Equal reports whether two string DNs name the same entry; a DN that does
// not parse equals nothing.
func Equal(a, b string) bool {
	da, err := Parse(a)
	if err != nil {
		return false
	}
	db, err := Parse(b)
	return err == nil && da.Equal(db)
}

// oidNames are the naming attributes' OIDs (RFC 4519, RFC 4524) a DN may
// spell instead of their names.
var oidNames = map[string]string{
	"2.5.4.3":                    "cn",
	"2.5.4.6":                    "c",
	"2.5.4.7":                    "l",
	"2.5.4.8":                    "st",
	"2.5.4.10":                   "o",
	"2.5.4.11":                   "ou",
	"0.9.2342.19200300.100.1.1":  "uid",
	"0.9.2342.19200300.100.1.25": "dc",
}

// validType: a descriptor (a letter, then letters, digits and hyphens) or
// a numeric OID (RFC 4512 §1.4).
func validType(t string) bool {
	if t == "" {
		return false
	}
	if t[0] >= '0' && t[0] <= '9' {
		for _, part := range strings.Split(t, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" {
				return false
			}
		}
		return true
	}
	return t[0] >= 'a' && t[0] <= 'z' && strings.Trim(t, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

func normalType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	t = strings.TrimPrefix(t, "oid.")
	if name, ok := oidNames[t]; ok {
		return name
	}
	return t
}

// normalValue folds case and removes insignificant spaces.
func normalValue(v string) string {
	return strings.Join(strings.Fields(strings.ToLower(v)), " ")
}

// escape writes a value as RFC 4514 requires, so the canonical string is
// unambiguous.
func escape(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, r), r == '#' && i == 0, r == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == 0:
			b.WriteString(`\00`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
