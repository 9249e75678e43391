// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Limits of one BER encoding sent by a client: a request, or a control value
// decoded from one (patch 22).
const (
	// maxRequestDepth is how deeply elements may nest, the outermost
	// element (the LDAPMessage SEQUENCE) being level 1.  A bind or search
	// uses fewer than 10 levels plus its filter's nesting.
	maxRequestDepth = 64
	// maxRequestElements bounds the elements (TLVs) of one encoding: each
	// becomes a *ber.Packet of about 180 bytes, so a 4 MiB request of
	// two-octet elements would otherwise decode into 370 MB of packets.
	maxRequestElements = 1 << 17
)

var (
	// errRequestTooDeep and errTooManyElements are encodings beyond the
	// limits above.
	errRequestTooDeep  = fmt.Errorf("request nested too deeply: %w", errMalformedRequest)
	errTooManyElements = fmt.Errorf("request has too many elements: %w", errMalformedRequest)
	// errIndefiniteLength: LDAP only uses definite lengths (RFC 4511 5.1)
	errIndefiniteLength = errors.New("indefinite length")
)

// requestLimitError is an LDAPMessage refused by a decoding limit.  The scan
// that found it had read what precedes the violation: the message ID and the
// protocolOp's tag, so the request can be answered (see refuseRequest).
type requestLimitError struct {
	err       error   // errRequestTooDeep or errTooManyElements
	messageID int64   // -1 if none was read
	opTag     ber.Tag // the protocolOp's [APPLICATION n], if hasOp
	hasOp     bool
}

func (e *requestLimitError) Error() string { return e.err.Error() }
func (e *requestLimitError) Unwrap() error { return e.err }

// diagnostic is the diagnosticMessage of the refusal.
func (e *requestLimitError) diagnostic() string {
	if errors.Is(e.err, errTooManyElements) {
		return "request has too many elements"
	}
	return "request nested too deeply"
}

// reply is the answer to the refused request: a response of the type that
// answers its operation, with its message ID and ResultProtocolError; nil
// when there is none to give (no valid message ID, an operation without a
// response, or an unknown one).
func (e *requestLimitError) reply() *packet {
	if e.messageID <= 0 || e.messageID > math.MaxInt32 || !e.hasOp {
		return nil
	}
	var code int
	switch e.opTag {
	case ApplicationBindRequest:
		code = ApplicationBindResponse
	case ApplicationSearchRequest:
		code = ApplicationSearchResultDone
	case ApplicationModifyRequest:
		code = ApplicationModifyResponse
	case ApplicationAddRequest:
		code = ApplicationAddResponse
	case ApplicationDelRequest:
		code = ApplicationDelResponse
	case ApplicationModifyDNRequest:
		code = ApplicationModifyDNResponse
	case ApplicationCompareRequest:
		code = ApplicationCompareResponse
	case ApplicationExtendedRequest:
		code = ApplicationExtendedResponse
	default:
		return nil // unbind, abandon: no response; unknown: no type
	}
	r := &GeneralResponse{
		baseResponse:    &baseResponse{messageID: e.messageID, code: ResultProtocolError, diagMessage: e.diagnostic()},
		applicationCode: code,
	}
	return r.packet()
}

// berHeader is an element's identifier and length octets.
type berHeader struct {
	id        ber.Identifier
	hdrLen    int  // octets of the identifier and length
	length    int  // content octets
	canonical bool // encoded as asn1-ber encodes it (see decodeBER)
}

// parseBERHeader parses the header of the element at the start of b, whose
// content must fit in b.  It accepts what asn1-ber's reader accepts, except
// indefinite lengths.
func parseBERHeader(b []byte) (berHeader, error) {
	var h berHeader
	if len(b) < 2 {
		return h, errors.New("truncated header")
	}
	h.id.ClassType = ber.Class(b[0]) & ber.ClassBitmask
	h.id.TagType = ber.Type(b[0]) & ber.TypeBitmask
	h.id.Tag = ber.Tag(b[0]) & ber.TagBitmask
	i := 1
	h.canonical = true
	if h.id.Tag == ber.HighTag {
		h.id.Tag = 0
		for n := 1; ; n++ {
			if i >= len(b) {
				return h, errors.New("truncated tag")
			}
			c := b[i]
			i++
			h.id.Tag = h.id.Tag<<7 | ber.Tag(c)&ber.HighTagValueBitmask
			if n == 1 && h.id.Tag == 0 {
				return h, errors.New("invalid first high-tag-number tag byte")
			}
			if n > 9 {
				return h, errors.New("high-tag-number tag overflow")
			}
			if ber.Tag(c)&ber.HighTagContinueBitmask == 0 {
				break
			}
		}
		// the leading group is non-zero, so only a small tag in the
		// high-tag form is longer than asn1-ber's encoding
		h.canonical = h.id.Tag >= ber.HighTag
	}
	if i >= len(b) {
		return h, errors.New("truncated length")
	}
	l := b[i]
	i++
	switch {
	case l == 0xff:
		return h, errors.New("invalid length byte 0xff")
	case l == 0x80:
		return h, errIndefiniteLength
	case l < 0x80:
		h.length = int(l)
	default:
		n := int(l & 0x7f)
		if n > 8 {
			return h, errors.New("long-form length overflow")
		}
		if len(b)-i < n {
			return h, errors.New("truncated length")
		}
		var v uint64
		for _, c := range b[i : i+n] {
			v = v<<8 | uint64(c)
		}
		if v < 0x80 || (n > 1 && b[i] == 0) {
			h.canonical = false // short form, or a leading zero octet
		}
		i += n
		if v > uint64(len(b)-i) {
			return h, fmt.Errorf("length %d beyond the %d octets available", v, len(b)-i)
		}
		h.length = int(v)
	}
	if h.length > len(b)-i {
		return h, fmt.Errorf("length %d beyond the %d octets available", h.length, len(b)-i)
	}
	h.hdrLen = i
	return h, nil
}

// isEOC is asn1-ber's end-of-contents marker, which it refuses inside a
// definite length.
func (h berHeader) isEOC() bool {
	return h.id.ClassType == ber.ClassUniversal && h.id.TagType == ber.TypePrimitive && h.id.Tag == ber.TagEOC && h.length == 0
}

// berScan is what scanBER learned about an encoding.
type berScan struct {
	end       int // octets of the first element
	elements  int
	primitive int // content octets of primitive elements
	canonical bool
}

// scanBER walks the headers of the first element of b and everything in it,
// without allocating: it checks that every length fits in its parent, that
// nesting and element count stay within the limits, and counts what decoding
// needs.  For an LDAPMessage (ldapMessage), a limit violation is a
// *requestLimitError with the message ID and operation read before it.
func scanBER(b []byte, ldapMessage bool) (berScan, error) {
	s := berScan{canonical: true}
	var ends [maxRequestDepth]int // end offset of each open constructed element
	depth := 0                    // open constructed elements
	rootChildren := 0
	messageID, opTag, hasOp := int64(-1), ber.Tag(0), false
	limitErr := func(err error) error {
		if !ldapMessage {
			return err
		}
		return &requestLimitError{err: err, messageID: messageID, opTag: opTag, hasOp: hasOp}
	}
	pos := 0
	for {
		bound := len(b)
		if depth > 0 {
			bound = ends[depth-1]
		}
		h, err := parseBERHeader(b[pos:bound])
		if err != nil {
			return s, err
		}
		if depth+1 > maxRequestDepth {
			return s, limitErr(errRequestTooDeep)
		}
		if s.elements++; s.elements > maxRequestElements {
			return s, limitErr(errTooManyElements)
		}
		if depth > 0 && h.isEOC() {
			return s, errors.New("eoc child not allowed with definite length")
		}
		s.canonical = s.canonical && h.canonical
		content := b[pos+h.hdrLen : pos+h.hdrLen+h.length]
		if depth == 1 {
			// the LDAPMessage's messageID, then its protocolOp
			switch rootChildren {
			case 0:
				if h.id == (ber.Identifier{ClassType: ber.ClassUniversal, TagType: ber.TypePrimitive, Tag: ber.TagInteger}) && len(content) > 0 {
					if id, err := ber.ParseInt64(content); err == nil {
						messageID = id
					}
				}
			case 1:
				if h.id.ClassType == ber.ClassApplication {
					opTag, hasOp = h.id.Tag, true
				}
			}
			rootChildren++
		}
		next := pos + h.hdrLen + h.length
		if h.id.TagType == ber.TypeConstructed && h.length > 0 {
			ends[depth] = next
			depth++
			pos += h.hdrLen
			continue
		}
		if h.id.TagType != ber.TypeConstructed {
			s.primitive += h.length
		}
		pos = next
		for depth > 0 && pos == ends[depth-1] {
			depth--
		}
		if depth == 0 {
			s.end = pos
			return s, nil
		}
	}
}

// decodeBER decodes the first element of b into the packets asn1-ber's
// ber.DecodePacketErr would return, in time and memory linear in len(b).
// asn1-ber copies every decoded subtree into its parent's Data, so a deep
// encoding cost depth × size (990 levels around 3 MB: 12 s and 6 GB); here
// the encoding is scanned first (scanBER, which enforces maxRequestDepth and
// maxRequestElements), then built from a few allocations:
//   - a constructed packet's Data shares b (or, when some header in b isn't
//     in asn1-ber's canonical form, e.g. 4-octet lengths, one buffer holding
//     the canonical re-encoding): its bytes are what asn1-ber gives;
//   - a primitive's Data is its own copy (callers do Truncate and Write on
//     it), its ByteValue (universal class only) shares b;
//   - Value is set as asn1-ber sets it.
//
// b must not be modified while the packets are in use.  It returns the
// number of octets decoded; like asn1-ber, it ignores what follows the first
// element.
func decodeBER(b []byte, ldapMessage bool) (*ber.Packet, int, error) {
	s, err := scanBER(b, ldapMessage)
	if err != nil {
		return nil, 0, err
	}
	d := berBuilder{
		src:     b,
		packets: make([]ber.Packet, s.elements),
		buffers: make([]bytes.Buffer, s.elements),
		kids:    make([]*ber.Packet, s.elements-1),
		data:    make([]byte, s.primitive),
	}
	p, _, err := d.build(0)
	if err != nil {
		return nil, 0, err
	}
	if !s.canonical {
		d.canon = make([]byte, s.end)
		d.writeCanonical(p, s.end)
	}
	return p, s.end, nil
}

// decodeRequest decodes the BER of one LDAPMessage (see decodeBER), which
// must be all of b.
func decodeRequest(b []byte) (*ber.Packet, error) {
	p, n, err := decodeBER(b, true)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("%d octets after the LDAPMessage", len(b)-n)
	}
	return p, nil
}

// berBuilder builds packets from an encoding scanBER has checked, taking
// them, their buffers, children slices and primitive contents from slabs.
type berBuilder struct {
	src     []byte
	packets []ber.Packet
	buffers []bytes.Buffer
	kids    []*ber.Packet
	data    []byte
	canon   []byte // canonical re-encoding, when src isn't canonical
}

// build decodes the element at d.src[pos:] and returns it with the offset
// that follows it.
func (d *berBuilder) build(pos int) (*ber.Packet, int, error) {
	h, err := parseBERHeader(d.src[pos:])
	if err != nil {
		return nil, 0, err // scanBER accepted it: can't happen
	}
	p := &d.packets[0]
	d.packets = d.packets[1:]
	p.Data = &d.buffers[0]
	d.buffers = d.buffers[1:]
	p.Identifier = h.id
	start, end := pos+h.hdrLen, pos+h.hdrLen+h.length
	content := d.src[start:end:end]

	if h.id.TagType == ber.TypeConstructed {
		n := 0
		for q := start; q < end; n++ {
			ch, err := parseBERHeader(d.src[q:end])
			if err != nil {
				return nil, 0, err
			}
			q += ch.hdrLen + ch.length
		}
		p.Children = d.kids[:n:n]
		d.kids = d.kids[n:]
		for i, q := 0, start; q < end; i++ {
			if p.Children[i], q, err = d.build(q); err != nil {
				return nil, 0, err
			}
		}
		// the content is the canonical encoding of the children, unless
		// writeCanonical replaces it
		*p.Data = *bytes.NewBuffer(content)
		return p, end, nil
	}

	p.Children = d.kids[:0:0]
	if h.length > 0 {
		own := d.data[:h.length:h.length]
		d.data = d.data[h.length:]
		copy(own, content)
		*p.Data = *bytes.NewBuffer(own)
	}
	if p.ClassType != ber.ClassUniversal {
		return p, end, nil
	}
	p.ByteValue = content
	switch p.Tag {
	case ber.TagBoolean:
		v, _ := ber.ParseInt64(content)
		p.Value = v != 0
	case ber.TagInteger, ber.TagEnumerated:
		p.Value, _ = ber.ParseInt64(content)
	case ber.TagOctetString:
		p.Value = string(content)
	case ber.TagObjectIdentifier, ber.TagRealFloat, ber.TagUTF8String, ber.TagRelativeOID,
		ber.TagPrintableString, ber.TagIA5String, ber.TagGeneralizedTime:
		// rare in LDAP: let asn1-ber convert (and validate) the value of
		// this one primitive, which costs its size
		q, err := ber.DecodePacketErr(d.src[pos:end])
		if err != nil {
			return nil, 0, err
		}
		p.Value = q.Value
	}
	return p, end, nil
}

// writeCanonical writes p's encoding as asn1-ber encodes it (short-form
// tags below 31, minimal lengths) so that it ends at d.canon[end], and points
// the Data of every constructed packet in p at its content there, which is
// what asn1-ber's Data holds.  It returns where the encoding starts.  A
// canonical encoding is never longer than the one decoded, so d.canon, as
// long as that, has room for it.
func (d *berBuilder) writeCanonical(p *ber.Packet, end int) int {
	pos := end
	if p.TagType == ber.TypeConstructed {
		for i := len(p.Children) - 1; i >= 0; i-- {
			pos = d.writeCanonical(p.Children[i], pos)
		}
		*p.Data = *bytes.NewBuffer(d.canon[pos:end:end])
	} else {
		pos -= p.Data.Len()
		copy(d.canon[pos:end], p.Data.Bytes())
	}
	var hdr [20]byte
	h := appendCanonicalHeader(hdr[:0], p.Identifier, end-pos)
	pos -= len(h)
	copy(d.canon[pos:], h)
	return pos
}

// appendCanonicalHeader appends the identifier and length octets of an
// element as asn1-ber encodes them.
func appendCanonicalHeader(dst []byte, id ber.Identifier, length int) []byte {
	b := byte(id.ClassType) | byte(id.TagType)
	if id.Tag < ber.HighTag {
		dst = append(dst, b|byte(id.Tag))
	} else {
		var groups [10]byte
		k := len(groups) - 1
		t := id.Tag
		groups[k] = byte(t & ber.HighTagValueBitmask)
		for t >>= 7; t > 0; t >>= 7 {
			k--
			groups[k] = byte(t&ber.HighTagValueBitmask) | byte(ber.HighTagContinueBitmask)
		}
		dst = append(dst, b|byte(ber.HighTag))
		dst = append(dst, groups[k:]...)
	}
	if length < 0x80 {
		return append(dst, byte(length))
	}
	var octets [8]byte
	k := len(octets)
	for l := uint64(length); l > 0; l >>= 8 {
		k--
		octets[k] = byte(l)
	}
	dst = append(dst, 0x80|byte(len(octets)-k))
	return append(dst, octets[k:]...)
}
