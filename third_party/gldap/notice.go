// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// errMalformedRequest marks a PDU the server cannot serve (undecodable BER,
// an invalid LDAPMessage, an unknown operation).  The connection is ended with
// a Notice of Disconnection carrying ResultProtocolError.
var errMalformedRequest = errors.New("malformed request")

// errRequestTooLarge is a PDU longer than WithMaxRequestSize allows.
var errRequestTooLarge = fmt.Errorf("request too large: %w", errMalformedRequest)

// noticeWriteTimeout bounds writing a Notice of Disconnection, so a client
// that doesn't read can't hold up closing its connection (or Server.Stop).
const noticeWriteTimeout = 2 * time.Second

// notice is a pending Notice of Disconnection (RFC 4511 4.4.1)
type notice struct {
	code       int
	diagnostic string
	// reply, if set, answers the request that ended the conn; it is sent
	// before the notice (see refuseRequest)
	reply *packet
}

// noticeOfDisconnectionPacket encodes a Notice of Disconnection: an unsolicited
// ExtendedResponse with message ID 0 and responseName 1.3.6.1.4.1.1466.20036.
func noticeOfDisconnectionPacket(code int, diagnostic string) *packet {
	replyPacket := beginResponse(0)
	resultPacket := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ber.Tag(ApplicationExtendedResponse), nil, ApplicationCodeMap[ApplicationExtendedResponse])
	resultPacket.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), ResultCodeMap[uint16(code)]))
	addOptionalResponseChildren(resultPacket, WithMatchedDN(""), WithDiagnosticMessage(diagnostic))
	resultPacket.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, string(ExtendedOperationDisconnection), "responseName"))
	replyPacket.AppendChild(resultPacket)
	return &packet{Packet: replyPacket}
}

// terminate ends the connection: the pending notice (if code >= 0 and none is
// pending yet) is recorded to be sent once in-flight handlers have returned,
// the connection context is cancelled, a blocked read is unblocked, so the
// read loop ends, and writes get a deadline of noticeWriteTimeout.  It is safe to call from any goroutine, more than once.
func (c *conn) terminate(code int, diagnostic string) {
	c.stateMu.Lock()
	if c.pendingNotice == nil && code >= 0 {
		c.pendingNotice = &notice{code: code, diagnostic: diagnostic}
	}
	// the close reason (ConnEvent), unless the caller recorded one
	switch code {
	case ResultUnavailable:
		c.closeBecauseLocked(ReasonStopping)
	case ResultProtocolError:
		c.closeBecauseLocked(ReasonProtocolError)
	case ResultOther:
		c.closeBecauseLocked(ReasonInternalError)
	}
	c.closing = true
	cancel := c.cancel
	// unblock a pending read: a deadline in the past (set while holding
	// stateMu, so setReadDeadlineLocked can't replace it with a later one)
	c.unblockRead()
	// and bound writes: a handler blocked writing to a client that doesn't
	// read must not hold up closing the conn (or Server.Stop) forever
	if nc := c.currentNetConn(); nc != nil {
		_ = nc.SetWriteDeadline(time.Now().Add(noticeWriteTimeout))
	}
	c.stateMu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// drain makes the conn stop reading requests (Server.Shutdown): a read
// blocked on the client is unblocked, and the read loop then waits for the
// handlers in flight and ends the conn (finishDrain).  Unlike terminate it
// cancels nothing.  Safe to call from any goroutine, more than once.
func (c *conn) drain() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.closing {
		return
	}
	c.draining = true
	c.unblockRead()
}

// isDraining reports whether drain was called.
func (c *conn) isDraining() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.draining
}

// finishDrain is the end of a drained conn's read loop: the handlers in
// flight run to the end (or until Stop cancels them), then the conn is
// terminated with "server stopping".
func (c *conn) finishDrain() {
	c.requestsWg.Wait()
	c.terminate(ResultUnavailable, "server stopping")
}

// isClosing reports whether terminate was called.
func (c *conn) isClosing() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.closing
}

// unblockRead makes a read blocked on the connection return at once.
func (c *conn) unblockRead() {
	if nc := c.currentNetConn(); nc != nil {
		// a deadline in the past unblocks the pending Read with a timeout
		_ = nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// writePendingNotice writes the pending Notice of Disconnection, if any.  It is
// called by close() after in-flight handlers returned and before the socket is
// closed.
func (c *conn) writePendingNotice() (sent bool, err error) {
	const op = "gldap.(conn).writePendingNotice"
	c.stateMu.Lock()
	n := c.pendingNotice
	c.pendingNotice = nil
	c.stateMu.Unlock()
	if n == nil {
		return false, nil
	}
	c.logger.Debug("sending notice of disconnection", "op", op, "conn", c.connID, "code", n.code, "diagnostic", n.diagnostic)
	c.writerMu.Lock()
	defer c.writerMu.Unlock()
	nc := c.currentNetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(noticeWriteTimeout))
	if n.reply != nil {
		if _, err := c.writer.Write(n.reply.Bytes()); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	}
	if _, err := c.writer.Write(noticeOfDisconnectionPacket(n.code, n.diagnostic).Bytes()); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.writer.Flush(); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return true, nil
}

// lingerDelay bounds how long lingerClose waits for the client to close.
const lingerDelay = 500 * time.Millisecond

// lingerClose closes a connection after a Notice of Disconnection so that
// the client can read it: closing a TCP socket with unread input makes the
// kernel send a RST, which can destroy the notice before the client reads it.
// Like net/http's closeWriteAndWait, it sends a FIN (CloseWrite), discards
// what the client still sends until it closes (at most lingerDelay and
// 64 KiB), then closes.
func lingerClose(nc net.Conn) error {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(lingerDelay))
			_, _ = io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
		}
	}
	return nc.Close()
}

// rejectConn sends a Notice of Disconnection on a connection that is not
// served (e.g. WithMaxConnections) and closes it.  Writing, a TLS handshake
// and lingering are bounded by noticeWriteTimeout.
func rejectConn(nc net.Conn, code int, diagnostic string) {
	_ = nc.SetDeadline(time.Now().Add(noticeWriteTimeout))
	if _, err := nc.Write(noticeOfDisconnectionPacket(code, diagnostic).Bytes()); err != nil {
		_ = nc.Close()
		return
	}
	_ = lingerClose(nc)
}
