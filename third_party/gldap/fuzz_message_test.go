// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
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
	berSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		bp, _, err := decodeBER(data, true)
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

// berSeeds are encodings that stress the decoder: deep nesting, huge length
// prefixes, indefinite lengths, truncated headers, non-canonical headers.
func berSeeds(f *testing.F) {
	nest := func(core []byte, id byte, n int) []byte {
		for range n {
			if l := len(core); l < 0x80 {
				core = append([]byte{id, byte(l)}, core...)
			} else {
				core = append([]byte{id, 0x84, byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l)}, core...)
			}
		}
		return core
	}
	f.Add(nest([]byte{0x04, 0x01, 'x'}, 0x30, 63))
	f.Add(nest([]byte{0x04, 0x01, 'x'}, 0x30, 64))
	f.Add(nest(nil, 0xa2, 70))
	f.Add([]byte{0x30, 0x84, 0x00, 0x40, 0x00, 0x00})                         // 4 MiB announced
	f.Add([]byte{0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // 8-octet length
	f.Add([]byte{0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9})                      // 9 length octets
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00})                   // indefinite
	f.Add([]byte{0x30, 0x06, 0x30, 0x80, 0x04, 0x00, 0x00, 0x00})             // inner indefinite
	f.Add([]byte{0x30})                                                       // truncated header
	f.Add([]byte{0x30, 0x82, 0x01})                                           // truncated length
	f.Add([]byte{0x30, 0x03, 0x02, 0x01})                                     // truncated content
	f.Add([]byte{0x30, 0x05, 0x04, 0x64, 'a', 'b', 'c'})                      // inner beyond outer
	f.Add([]byte{0x30, 0x04, 0x00, 0x00, 0x00, 0x00})                         // EOC inside definite
	f.Add([]byte{0x3f, 0x81, 0x00, 0x03, 0x1f, 0x05, 0x00})                   // high tags, one small
	f.Add([]byte{0x30, 0x81, 0x05, 0x02, 0x83, 0x00, 0x00, 0x01, 0x07})       // long lengths, leading zeros
	f.Add([]byte{0x30, 0x08, 0x06, 0x03, 0x2a, 0x86, 0x48, 0x0c, 0x01, 0xff}) // OID, bad UTF-8
	f.Add([]byte{0x30, 0x06, 0x16, 0x01, 0x80, 0x01, 0x01, 0x05})             // IA5 > 0x7f, boolean
	f.Add([]byte{0x30, 0x03, 0x02, 0x09, 0x01})                               // integer of 9 octets
}

func bothNaN(a, b any) bool {
	x, ok1 := a.(float64)
	y, ok2 := b.(float64)
	return ok1 && ok2 && math.IsNaN(x) && math.IsNaN(y)
}

// samePackets describes the first difference between two decoded trees, ""
// if there is none.
func samePackets(path string, a, b *ber.Packet) string {
	switch {
	case a.Identifier != b.Identifier:
		return fmt.Sprintf("%s: identifier %+v vs %+v", path, a.Identifier, b.Identifier)
	case !reflect.DeepEqual(a.Value, b.Value) && !bothNaN(a.Value, b.Value):
		return fmt.Sprintf("%s: value %#v vs %#v", path, a.Value, b.Value)
	case !bytes.Equal(a.ByteValue, b.ByteValue) || (a.ByteValue == nil) != (b.ByteValue == nil):
		return fmt.Sprintf("%s: byte value %x vs %x", path, a.ByteValue, b.ByteValue)
	case !bytes.Equal(a.Data.Bytes(), b.Data.Bytes()):
		return fmt.Sprintf("%s: data %x vs %x", path, a.Data.Bytes(), b.Data.Bytes())
	case len(a.Children) != len(b.Children):
		return fmt.Sprintf("%s: %d vs %d children", path, len(a.Children), len(b.Children))
	}
	for i := range a.Children {
		if d := samePackets(fmt.Sprintf("%s/%d", path, i), a.Children[i], b.Children[i]); d != "" {
			return d
		}
	}
	return ""
}

// FuzzDecodeBER: decodeBER (patch 22) decodes exactly what asn1-ber's
// ber.DecodePacketErr decodes, or refuses it for a reason of its own (a
// limit, an indefinite length); decompileFilter renders any decoded packet
// as go-ldap's ldap.DecompileFilter does.
func FuzzDecodeBER(f *testing.F) {
	old := ber.MaxPacketLengthBytes
	ber.MaxPacketLengthBytes = 1 << 20
	f.Cleanup(func() { ber.MaxPacketLengthBytes = old })
	berSeeds(f)
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, n, err := decodeBER(data, true)
		want, wantErr := ber.DecodePacketErr(data)
		var le *requestLimitError
		switch {
		case errors.As(err, &le), errors.Is(err, errIndefiniteLength):
			return
		case (err == nil) != (wantErr == nil):
			t.Fatalf("decodeBER error %v, asn1-ber error %v", err, wantErr)
		case err != nil:
			return
		}
		if d := samePackets("", got, want); d != "" {
			t.Fatalf("decoded trees differ at %s", d)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("re-encodings differ: %x vs %x", got.Bytes(), want.Bytes())
		}
		if n > len(data) || n < 2 {
			t.Fatalf("decoded %d of %d octets", n, len(data))
		}
		// every packet, as a filter
		var walk func(g, w *ber.Packet)
		walk = func(g, w *ber.Packet) {
			gs, gerr := decompileFilter(g)
			ws, werr := ldap.DecompileFilter(w)
			if (gerr == nil) != (werr == nil) || gs != ws {
				t.Fatalf("filter %q (%v) vs go-ldap's %q (%v)", gs, gerr, ws, werr)
			}
			for i := range g.Children {
				walk(g.Children[i], w.Children[i])
			}
		}
		decodeFilterBooleans(got)
		decodeFilterBooleans(want)
		walk(got, want)
	})
}
