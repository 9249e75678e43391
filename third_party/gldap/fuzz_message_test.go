// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// envelope wraps a protocol op in an LDAPMessage with message ID 1.
func envelope(op *ber.Packet) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "MessageID"))
	p.AppendChild(op)
	return p.Bytes()
}

func fuzzSeeds(f *testing.F) {
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(3), "Version"))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid=alice,dc=example,dc=com", "Name"))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "secret,123456", "Password"))
	f.Add(envelope(bind))

	for _, filter := range []string{"(uid=alice)", "(&(objectClass=person)(|(cn=a*b*c)(!(mail=*))))", "(ou:dn:=people)", "(cn>=m)"} {
		search := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchRequest, nil, "Search")
		search.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dc=example,dc=com", "Base"))
		search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(2), "Scope"))
		search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(0), "Deref"))
		search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "Size"))
		search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "Time"))
		search.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "TypesOnly"))
		fp, err := ldap.CompileFilter(filter)
		if err != nil {
			f.Fatal(err)
		}
		search.AppendChild(fp)
		attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", "Attribute"))
		search.AppendChild(attrs)
		f.Add(envelope(search))
	}

	del := ber.NewString(ber.ClassApplication, ber.TypePrimitive, ApplicationDelRequest, "uid=bob,dc=example,dc=com", "Del")
	f.Add(envelope(del))
	abandon := ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ApplicationAbandonRequest, int64(7), "Abandon")
	f.Add(envelope(abandon))
	ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationExtendedRequest, nil, "Extended")
	ext.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.11.3", "Name"))
	ext.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "\x00\x01", "Value"))
	f.Add(envelope(ext))
	f.Add([]byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x77, 0x00})
}

// FuzzNewMessage: whatever bytes a client sends, parsing them into a
// message returns a message or an error; it never panics (a panic here
// would end the client's connection at best).
func FuzzNewMessage(f *testing.F) {
	// As a server would (WithMaxRequestSize): without a bound, a length
	// field alone makes the decoder reserve gigabytes and the fuzzer stall.
	old := ber.MaxPacketLengthBytes
	ber.MaxPacketLengthBytes = 1 << 20
	f.Cleanup(func() { ber.MaxPacketLengthBytes = old })
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bp, err := ber.DecodePacketErr(data)
		if err != nil {
			return
		}
		p := &packet{Packet: bp}
		if err := p.basicValidation(); err != nil {
			return
		}
		_, _ = newMessage(p)
	})
}
