// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"fmt"
	"math"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// minReadBuffer is the smallest buffer a request's bytes are read into.
const minReadBuffer = 512

// requestSizeLimit is the most content octets a request may have:
// WithMaxRequestSize, or else asn1-ber's limit (ber.MaxPacketLengthBytes,
// 2 GiB by default).
func (c *conn) requestSizeLimit() int {
	if c.maxRequestSize > 0 {
		return c.maxRequestSize
	}
	if l := ber.MaxPacketLengthBytes; l > 0 && l < math.MaxInt32 {
		return int(l)
	}
	return math.MaxInt32
}

// readLimitedPacket reads one LDAPMessage of at most requestSizeLimit
// content octets: the length is checked from the TLV header before anything
// is read, the bytes are read into a buffer that grows as they arrive (see
// readMessageBytes), and the BER is then decoded from exactly that many
// bytes, so no inner length can make it read or allocate more, in time and
// memory linear in their number (decodeRequest).  LDAP only
// allows definite lengths (RFC 4511 5.1).  The caller holds c.mu and has
// peeked the tag.
func (c *conn) readLimitedPacket() (*ber.Packet, error) {
	const op = "gldap.(conn).readLimitedPacket"
	hdr, err := c.reader.Peek(2)
	if err != nil {
		return nil, err
	}
	var length, hdrLen int
	switch l := hdr[1]; {
	case l < 0x80:
		length, hdrLen = int(l), 2
	case l == 0x80:
		return nil, fmt.Errorf("%s: indefinite length: %w", op, errMalformedRequest)
	default:
		n := int(l & 0x7f)
		if n > 4 {
			return nil, fmt.Errorf("%s: %d length octets: %w", op, n, errRequestTooLarge)
		}
		if hdr, err = c.reader.Peek(2 + n); err != nil {
			return nil, err
		}
		for _, b := range hdr[2:] {
			length = length<<8 | int(b)
		}
		hdrLen = 2 + n
	}
	if limit := c.requestSizeLimit(); length > limit {
		return nil, fmt.Errorf("%s: %d octets, limit is %d: %w", op, length, limit, errRequestTooLarge)
	}
	buf, taken, err := c.readMessageBytes(hdrLen + length)
	// the request's budget is given back once it is decoded (or wasn't
	// read): the packets share its buffer, which is garbage once they
	// are parsed
	defer c.readBudget.give(taken)
	if err != nil {
		return nil, err
	}
	p, err := decodeRequest(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, errMalformedRequest, err)
	}
	return p, nil
}

// readMessageBytes reads the next n bytes of the conn: one LDAPMessage,
// header included.  The buffer grows as the bytes arrive: it is (re)allocated
// only once more bytes are waiting in the conn's reader, and then at most
// doubled, so it never holds more than twice what the client has sent (and
// at least minReadBuffer).  A header announcing megabytes costs nothing until
// they come.
//
// With WithMaxBufferedBytes, the buffer's capacity beyond freeRequestBytes
// is taken from the server's budget before it is allocated; when the budget
// can't cover it, the read ends with errServerBusy (see WithMaxBufferedBytes
// for why it doesn't wait).  taken is what was taken, to be given back by
// the caller, also on error.  The caller holds c.mu.
func (c *conn) readMessageBytes(n int) (buf []byte, taken int, err error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// wait until more bytes are here (in the reader's own buffer)
			if _, err := c.reader.Peek(1); err != nil {
				return nil, taken, err
			}
			newCap := min(n, max(2*cap(buf), len(buf)+c.reader.Buffered(), minReadBuffer))
			if need := max(0, newCap-freeRequestBytes) - taken; need > 0 && c.readBudget != nil {
				if !c.readBudget.take(need) {
					return nil, taken, fmt.Errorf("%d of %d octets read, %d more to buffer: %w", len(buf), n, need, errServerBusy)
				}
				taken += need
			}
			grown := make([]byte, len(buf), newCap)
			copy(grown, buf)
			buf = grown
		}
		m, err := c.reader.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			return nil, taken, err
		}
	}
	return buf, taken, nil
}

// refuseRequest ends the conn after the read loop refused a request (err):
// a Notice of Disconnection with protocolError, its diagnostic saying why,
// or with ResultBusy when the request would exceed WithMaxBufferedBytes.
// A request refused by a decoding limit (requestLimitError) whose message ID
// could be read is first answered itself, with protocolError and the same
// diagnostic, so the client's operation fails with a reason rather than a
// closed connection.
func (c *conn) refuseRequest(requestID int, err error) {
	const op = "gldap.(conn).refuseRequest"
	if errors.Is(err, errServerBusy) {
		c.logger.Info("request buffer budget exhausted, disconnecting client", "op", op, "conn", c.connID, "requestID", requestID, "err", err.Error())
		c.closeBecause(ReasonBufferBudget)
		c.terminate(ResultBusy, "server busy")
		return
	}
	c.logger.Info("malformed request, disconnecting client", "op", op, "conn", c.connID, "requestID", requestID, "err", err.Error())
	diag := "malformed or unsupported request"
	var le *requestLimitError
	switch {
	case errors.Is(err, errRequestTooLarge):
		diag = "request too large"
	case errors.As(err, &le):
		diag = le.diagnostic()
		if reply := le.reply(); reply != nil {
			c.stateMu.Lock()
			if c.pendingNotice == nil {
				c.pendingNotice = &notice{code: ResultProtocolError, diagnostic: diag, reply: reply}
			}
			c.stateMu.Unlock()
		}
	}
	c.terminate(ResultProtocolError, diag)
}
