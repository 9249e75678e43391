// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
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
