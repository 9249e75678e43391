// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// decodeFilterBooleans fills in the Value of the dnAttributes BOOLEAN of
// every extensible-match filter item (ldapgate patch 18).
//
// ber decodes a context-specific primitive without knowing its type, so a
// filter read from the wire carries dnAttributes [4] as raw octets, while
// ldap.DecompileFilter (go-ldap v3.4.15) type-asserts Value to bool. The
// assertion panicked inside DecompileFilter, the request failed to parse,
// and a client searching with "(ou:dn:=people)" lost its connection.
func decodeFilterBooleans(p *ber.Packet) {
	if p == nil || p.ClassType != ber.ClassContext {
		return
	}
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		for _, c := range p.Children {
			decodeFilterBooleans(c)
		}
	case ldap.FilterExtensibleMatch:
		for _, c := range p.Children {
			if c.ClassType == ber.ClassContext && c.Tag == ldap.MatchingRuleAssertionDNAttributes {
				if _, ok := c.Value.(bool); !ok {
					b := c.Data.Bytes()
					c.Value = len(b) > 0 && b[0] != 0
				}
			}
		}
	}
}

// errBadFilter is a filter decompileFilter can't render.
var errBadFilter = errors.New("ldap: error decompiling filter")

// decompileFilter renders a decoded filter as its string, exactly as
// ldap.DecompileFilter (go-ldap v3.4.15) does, in time and memory linear in
// the filter's size (patch 22).  DecompileFilter returns each nested
// filter's string to its parent, which copies it into its own: a filter
// nested 60 deep around a 3 MB value cost 1.1 GB of allocations.  Here every
// level writes into one builder.  It fails where DecompileFilter panics (and
// so errs): a missing operand, a dnAttributes that isn't a bool.
func decompileFilter(p *ber.Packet) (string, error) {
	var b strings.Builder
	if err := writeFilter(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeFilter(b *strings.Builder, p *ber.Packet) error {
	if p == nil {
		return errBadFilter
	}
	// value is an operand's octets, escaped as DecompileFilter escapes them
	value := func(q *ber.Packet) string { return ldap.EscapeFilter(string(q.Data.Bytes())) }
	pair := func(op string) error {
		if len(p.Children) < 2 {
			return errBadFilter
		}
		b.WriteString(value(p.Children[0]))
		b.WriteString(op)
		b.WriteString(value(p.Children[1]))
		return nil
	}
	b.WriteByte('(')
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		if p.Tag == ldap.FilterAnd {
			b.WriteByte('&')
		} else {
			b.WriteByte('|')
		}
		for _, c := range p.Children {
			if err := writeFilter(b, c); err != nil {
				return err
			}
		}
	case ldap.FilterNot:
		b.WriteByte('!')
		if len(p.Children) < 1 {
			return errBadFilter
		}
		if err := writeFilter(b, p.Children[0]); err != nil {
			return err
		}
	case ldap.FilterSubstrings:
		if len(p.Children) < 2 {
			return errBadFilter
		}
		b.WriteString(value(p.Children[0]))
		b.WriteByte('=')
		for i, c := range p.Children[1].Children {
			if i == 0 && c.Tag != ldap.FilterSubstringsInitial {
				b.WriteByte('*')
			}
			b.WriteString(value(c))
			if c.Tag != ldap.FilterSubstringsFinal {
				b.WriteByte('*')
			}
		}
	case ldap.FilterEqualityMatch:
		if err := pair("="); err != nil {
			return err
		}
	case ldap.FilterGreaterOrEqual:
		if err := pair(">="); err != nil {
			return err
		}
	case ldap.FilterLessOrEqual:
		if err := pair("<="); err != nil {
			return err
		}
	case ldap.FilterApproxMatch:
		if err := pair("~="); err != nil {
			return err
		}
	case ldap.FilterPresent:
		b.WriteString(value(p))
		b.WriteString("=*")
	case ldap.FilterExtensibleMatch:
		var attr, rule, val string
		dnAttributes := false
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				rule = string(c.Data.Bytes())
			case ldap.MatchingRuleAssertionType:
				attr = string(c.Data.Bytes())
			case ldap.MatchingRuleAssertionMatchValue:
				val = string(c.Data.Bytes())
			case ldap.MatchingRuleAssertionDNAttributes:
				v, ok := c.Value.(bool)
				if !ok {
					return errBadFilter
				}
				dnAttributes = v
			}
		}
		if attr != "" {
			b.WriteString(ldap.EscapeFilter(attr))
		}
		if dnAttributes {
			b.WriteString(":dn")
		}
		if rule != "" {
			b.WriteString(":")
			b.WriteString(ldap.EscapeFilter(rule))
		}
		b.WriteString(":=")
		b.WriteString(ldap.EscapeFilter(val))
	}
	b.WriteByte(')')
	return nil
}
