// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
)

// conn is a connection to an ldap client
type conn struct {
	mu sync.Mutex // mutex for the conn

	connID      int
	netConn     net.Conn
	logger      hclog.Logger
	router      *Mux
	shutdownCtx context.Context
	// drainCtx, when set, is cancelled by Server.Shutdown: the conn stops
	// reading, waits for its handlers and closes (see drain)
	drainCtx   context.Context
	requestsWg sync.WaitGroup

	reader   *bufio.Reader
	writer   *bufio.Writer
	writerMu sync.Mutex // shared lock across all ResponseWriter's to prevent write data races

	// netMu guards netConn for readers that must not wait behind mu, which is
	// held while the read loop is blocked reading the next PDU (see
	// currentNetConn).  initConn holds both when it swaps the conn.
	netMu sync.RWMutex

	// ctx is the connection's context: it's derived from shutdownCtx and
	// cancelled when the read loop ends.  Every request gets a child of it.
	// ctx and cancel are set by serveRequests before the first read.
	ctx    context.Context
	cancel context.CancelFunc

	// stateMu guards inflight, closing and pendingNotice (and ctx/cancel
	// while they are set)
	stateMu       sync.Mutex
	inflight      map[int]*inflightRequest // keyed by Request.ID
	closing       bool                     // terminate was called
	draining      bool                     // drain was called: nothing more is read
	pendingNotice *notice                  // sent by close() before closing the socket

	// set by the server before serveRequests
	disablePanicRecovery bool
	idleTimeout          time.Duration // 0: none
	readDeadline         time.Time     // absolute (WithReadTimeout); zero: none
	maxRequestSize       int           // WithMaxRequestSize; 0: asn1-ber's limit
	readBudget           *byteBudget   // WithMaxBufferedBytes; nil: none
	maxPending           int           // WithMaxPendingRequests; 0: no limit
	writeTimeout         time.Duration // WithWriteTimeout, per write; 0: idleTimeout
	requestTimeout       time.Duration // WithRequestTimeout; 0: none

	// slots holds one token per request whose handler runs in its own
	// goroutine (WithMaxPendingRequests); nil without a limit
	slots chan struct{}

	// guarded by stateMu: used to compute the read deadline
	pending      int       // requests whose handler runs in its own goroutine
	lastActivity time.Time // last PDU read or last pending request done
	requestStart time.Time // first byte of the PDU being read; zero between PDUs
	closeReason  string    // why the server ended the conn (ConnEvent.Reason); first wins
}

// inflightRequest tracks a request whose handler has not returned yet.
type inflightRequest struct {
	messageID int64
	cancel    context.CancelFunc
	// abandonable is false for bind and StartTLS requests, which RFC 4511
	// 4.11 says cannot be abandoned
	abandonable bool
	// abandoned is shared with the request's ResponseWriter, which refuses
	// to write once it is set
	abandoned *atomic.Bool
	// w is the request's ResponseWriter (see startTLSAllowed)
	w *ResponseWriter
}

// newConn will create a new Conn from an accepted net.Conn which will be used
// to serve requests to an ldap client.
func newConn(shutdownCtx context.Context, connID int, netConn net.Conn, logger hclog.Logger, router *Mux) (*conn, error) {
	const op = "gldap.NewConn"
	if shutdownCtx == nil {
		return nil, fmt.Errorf("%s: missing shutdown context: %w", op, ErrInvalidParameter)
	}
	if connID == 0 {
		return nil, fmt.Errorf("%s: missing connection id: %w", op, ErrInvalidParameter)
	}
	if netConn == nil {
		return nil, fmt.Errorf("%s: missing connection: %w", op, ErrInvalidParameter)
	}
	if logger == nil {
		return nil, fmt.Errorf("%s: missing logger: %w", op, ErrInvalidParameter)
	}
	if router == nil {
		return nil, fmt.Errorf("%s: missing router: %w", op, ErrInvalidParameter)
	}
	c := &conn{
		connID:      connID,
		netConn:     netConn,
		shutdownCtx: shutdownCtx,
		logger:      logger,
		router:      router,
	}
	if err := c.initConn(netConn); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}

// serveRequests until the connection is closed or the shutdownCtx is cancelled
// as the server stops
func (c *conn) serveRequests() error {
	const op = "gldap.serveRequests"

	c.stateMu.Lock()
	c.ctx, c.cancel = context.WithCancel(c.shutdownCtx)
	c.inflight = map[int]*inflightRequest{}
	c.lastActivity = time.Now()
	c.stateMu.Unlock()
	if c.maxPending > 0 {
		c.slots = make(chan struct{}, c.maxPending)
	}
	// the first writes may be an LDAPS handshake's, done by the first read
	c.setWriteDeadline()
	// Whatever ends the read loop (EOF, unbind, read error, shutdown) cancels
	// the connection context, so handlers still running learn that their
	// client is gone before close() waits for them.
	defer c.cancel()
	// When the server stops, end the conn even if its read is blocked on an
	// idle client: record the "server stopping" notice, cancel the conn
	// context and unblock the read.
	stopWatching := context.AfterFunc(c.shutdownCtx, func() {
		c.terminate(ResultUnavailable, "server stopping")
	})
	defer stopWatching()
	// Server.Shutdown: stop reading, let the handlers in flight finish
	// with their contexts intact (patch 30).
	if c.drainCtx != nil {
		stopDraining := context.AfterFunc(c.drainCtx, c.drain)
		defer stopDraining()
	}

	requestID := 0
	for {
		requestID++
		w, err := newResponseWriter(c.writer, &c.writerMu, c.logger, c.connID, requestID)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		w.conn = c

		if c.shutdownCtx.Err() != nil {
			c.logger.Debug("received shutdown cancellation", "op", op, "conn", c.connID, "requestID", w.requestID)
			c.terminate(ResultUnavailable, "server stopping")
			return nil
		}
		if c.isDraining() {
			c.finishDrain()
			return nil
		}
		c.updateReadDeadline(false)
		r, err := c.readRequest(w.requestID)
		// a PDU was read: restart the idle clock (this deadline also bounds
		// a synchronous handler's reads, e.g. a TLS handshake)
		requestTimedOut := c.endRequestRead(err)
		if c.isDraining() && !c.isClosing() {
			// drain unblocked the read, or a request arrived as the
			// server began to shut down: it is not served
			c.finishDrain()
			return nil
		}
		if m, ok := r.bindRequestError(); ok && !c.router.hasRoute(r) {
			// A bind that can't be served (LDAPv2, unknown authentication
			// choice) goes to the Bind route like any bind, because it
			// resets the conn's authentication (RFC 4511 4.2.1).  Without
			// a Bind route the library answers it, keeping the conn open.
			c.logger.Debug("answering unsupported bind request", "op", op, "conn", c.connID, "requestID", w.requestID, "err", m.err)
			if err := w.Write(m.response()); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
			continue
		}
		if err != nil {
			var netErr net.Error
			switch {
			case c.isClosing():
				// terminate() unblocked the read; its notice is pending
				return nil
			case c.shutdownCtx.Err() != nil:
				c.logger.Debug("received shutdown cancellation", "op", op, "conn", c.connID, "requestID", w.requestID)
				c.terminate(ResultUnavailable, "server stopping")
				return nil
			case errors.Is(err, errMalformedRequest), errors.Is(err, errServerBusy):
				// RFC 4511 4.1.1: a PDU that can't be parsed (or an unknown
				// operation) is answered with a Notice of Disconnection
				// carrying protocolError, then the connection is closed
				// (see refuseRequest).
				c.refuseRequest(w.requestID, err)
				return nil
			case requestTimedOut:
				// WithRequestTimeout: the PDU's first byte came, the rest
				// didn't in time (slowloris)
				c.logger.Info("request not received in time, disconnecting client", "op", op, "conn", c.connID, "requestID", w.requestID)
				c.closeBecause(ReasonRequestTimeout)
				c.terminate(ResultProtocolError, "request not received in time")
				return nil
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "unexpected EOF"):
				return nil // connection is closed
			case errors.As(err, &netErr) && netErr.Timeout():
				c.logger.Debug("read timeout", "op", op, "conn", c.connID, "requestID", w.requestID)
				c.closeBecause(c.readTimeoutReason())
				return nil
			}
			return fmt.Errorf("%s: error reading request: %w", op, err)
		}

		if m, ok := r.message.(*AbandonMessage); ok {
			// cancel the abandoned request before anything else is read, then
			// let an optional Abandon route see it (see Mux.Abandon)
			c.abandon(m.MessageID)
			w.noResponse = true
		}

		switch {
		case r.routeOp == unbindRouteOperation:
			// support an optional unbind route
			if c.router.unbindRoute != nil {
				done := c.beginRequest(w, r)
				c.callHandler(r, func() { c.router.unbindRoute.handler()(w, r) })
				done()
			}
			// stop serving requests when UnbindRequest is received
			return nil

		// If it's a StartTLS request, then we can't dispatch it concurrently,
		// since the conn needs to complete it's TLS negotiation before handling
		// any other requests.  With other operations outstanding it is
		// refused, without calling its handler (patch 20).
		// see: https://datatracker.ietf.org/doc/html/rfc4511#section-4.14.1
		case r.extendedName == ExtendedOperationStartTLS && !c.startTLSAllowed():
			c.logger.Debug("refusing StartTLS with operations outstanding", "op", op, "conn", c.connID, "requestID", w.requestID)
			resp := r.NewExtendedResponse(WithResponseCode(ResultOperationsError))
			resp.SetResponseName(ExtendedOperationStartTLS)
			resp.SetDiagnosticMessage("StartTLS with operations outstanding")
			if err := w.Write(resp); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		case r.extendedName == ExtendedOperationStartTLS:
			done := c.beginRequest(w, r)
			c.callHandler(r, func() { c.router.serve(w, r) })
			done()
		default:
			// At the WithMaxPendingRequests limit, wait for a slot before
			// reading anything more: the client waits, the server doesn't
			// start a goroutine per request it sends (patch 24).
			if !c.acquireSlot() {
				// the conn is ending (terminate, Stop); the conn context can
				// end before the shutdown watcher recorded its notice
				if c.shutdownCtx.Err() != nil {
					c.terminate(ResultUnavailable, "server stopping")
				}
				return nil
			}
			// register the request before reading the next PDU, so its
			// context exists before anything else on the conn can refer to it.
			done := c.beginRequest(w, r)
			c.beginPending()
			c.requestsWg.Add(1)
			go func() {
				defer func() {
					done()
					c.endPending()
					c.releaseSlot()
					c.logger.Debug("requestsWg done", "op", op, "conn", c.connID, "requestID", w.requestID)
					c.requestsWg.Done()
				}()
				c.callHandler(r, func() { c.router.serve(w, r) })
			}()
		}
	}
}

// callHandler runs a request handler.  Unless panic recovery is disabled, a
// panic is recovered and logged with its stack, and the connection is ended
// with a Notice of Disconnection carrying ResultOther: the handler's state is
// unknown, but the process and other connections carry on.
func (c *conn) callHandler(r *Request, h func()) {
	const op = "gldap.(conn).callHandler"
	if !c.disablePanicRecovery {
		defer func() {
			if rec := recover(); rec != nil {
				c.logger.Error("recovered from panic in request handler, disconnecting client",
					"op", op, "conn", c.connID, "requestID", r.ID, "routeOp", r.routeOp,
					"panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
				c.terminate(ResultOther, "internal error")
			}
		}()
	}
	h()
}

// beginRequest gives r its own context, a child of the connection context, and
// tracks it as in flight.  The returned func must be called once the request's
// handler has returned; it cancels the request context and stops tracking it.
func (c *conn) beginRequest(w *ResponseWriter, r *Request) func() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	ctx, cancel := context.WithCancel(c.ctx)
	r.ctx = ctx
	ir := &inflightRequest{
		messageID:   r.message.GetID(),
		cancel:      cancel,
		abandonable: r.routeOp != bindRouteOperation && r.extendedName != ExtendedOperationStartTLS,
		abandoned:   &atomic.Bool{},
		w:           w,
	}
	w.abandoned = ir.abandoned
	c.inflight[r.ID] = ir
	return func() {
		cancel()
		c.stateMu.Lock()
		defer c.stateMu.Unlock()
		delete(c.inflight, r.ID)
	}
}

// startTLSAllowed tells whether a StartTLS request may go to its handler: no
// other request of the conn may be outstanding, i.e. owe its client a
// response (RFC 4511 4.14.1).  Abandon requests and abandoned requests get
// none; a request that has written its final response is done even if its
// handler is still running.  When the StartTLS may go ahead, the writers of
// the requests still running are closed (ResponseWriter.upgraded) and any
// write in progress is waited for, so nothing is written in plaintext after
// the upgrade, or half before and half after it.  Called by the read loop,
// which reads nothing else until the StartTLS handler returned.
func (c *conn) startTLSAllowed() bool {
	allowed := func() bool {
		c.stateMu.Lock()
		defer c.stateMu.Unlock()
		for _, ir := range c.inflight {
			if ir.w.noResponse || ir.abandoned.Load() || ir.w.responded.Load() {
				continue
			}
			return false
		}
		for _, ir := range c.inflight {
			ir.w.upgraded.Store(true)
		}
		return true
	}()
	if allowed {
		// A write that checked upgraded before it was set holds writerMu:
		// let it finish before the StartTLS response is written.  (Not
		// under stateMu: terminate needs that to unblock a stuck write.)
		c.writerMu.Lock()
		c.writerMu.Unlock() //nolint:staticcheck // an intentional barrier
	}
	return allowed
}

// acquireSlot takes one of the conn's WithMaxPendingRequests slots for a
// request about to run in its own goroutine, waiting while all are taken.
// It returns false, without a slot, when the conn context ends first (the
// conn was terminated or the server is stopping).  Called by the read loop
// only, so nothing is read from the conn while it waits.
func (c *conn) acquireSlot() bool {
	const op = "gldap.(conn).acquireSlot"
	if c.slots == nil {
		return true
	}
	if c.ctx.Err() != nil {
		return false
	}
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	c.logger.Debug("too many requests in flight, not reading until one completes", "op", op, "conn", c.connID, "max", c.maxPending)
	select {
	case c.slots <- struct{}{}:
		// a handler ending with the conn context frees a slot too: don't
		// start a request on a conn that is ending
		if c.ctx.Err() != nil {
			<-c.slots
			return false
		}
		return true
	case <-c.ctx.Done():
		return false
	}
}

// releaseSlot gives back the slot taken by acquireSlot.
func (c *conn) releaseSlot() {
	if c.slots != nil {
		<-c.slots
	}
}

// beginPending counts a request whose handler runs concurrently with the read
// loop; while any is pending the idle timeout doesn't apply.
func (c *conn) beginPending() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.pending++
	c.setReadDeadlineLocked()
}

// endPending is called when a pending request's handler returned; when it was
// the last one, the idle clock restarts.
func (c *conn) endPending() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.pending--
	if c.pending == 0 {
		c.lastActivity = time.Now()
	}
	c.setReadDeadlineLocked()
}

// updateReadDeadline applies the read deadline for the conn's current state,
// restarting the idle clock first if activity is true.
func (c *conn) updateReadDeadline(activity bool) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if activity {
		c.lastActivity = time.Now()
	}
	c.setReadDeadlineLocked()
}

// requestArriving is called by readPacket once the first byte of a PDU is
// there: from now on the request deadline (WithRequestTimeout) applies
// until endRequestRead.
func (c *conn) requestArriving() {
	if c.requestTimeout == 0 {
		return
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.requestStart.IsZero() {
		c.requestStart = time.Now()
		c.setReadDeadlineLocked()
	}
}

// endRequestRead is called when reading a PDU ended with err: the request
// deadline no longer applies, and after a PDU was read the idle clock
// restarts.  It reports whether err is the request deadline passing.
func (c *conn) endRequestRead(err error) (requestTimedOut bool) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	started := c.requestStart
	c.requestStart = time.Time{}
	if err == nil {
		c.lastActivity = time.Now()
	}
	c.setReadDeadlineLocked()
	var netErr net.Error
	return err != nil && c.requestTimeout > 0 && !started.IsZero() &&
		errors.As(err, &netErr) && netErr.Timeout() &&
		!time.Now().Before(started.Add(c.requestTimeout))
}

// setReadDeadlineLocked sets the conn's read deadline: in the past once the
// conn is closing; otherwise the earlier of the absolute read deadline
// (WithReadTimeout) and, while a PDU is arriving, the request deadline
// (WithRequestTimeout) or else, when no request is pending, the idle deadline
// (WithIdleTimeout).  The deadline is set while holding stateMu, so concurrent
// updates (e.g. a handler completing while a PDU arrives) can't apply a stale
// one.  Caller must hold stateMu.
func (c *conn) setReadDeadlineLocked() {
	if c.idleTimeout == 0 && c.requestTimeout == 0 && c.readDeadline.IsZero() && !c.closing && !c.draining {
		return // nothing to manage (don't touch deadlines set by others)
	}
	var d time.Time
	earliest := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	switch {
	case c.closing, c.draining:
		d = time.Unix(1, 0)
	default:
		d = c.readDeadline
		switch {
		case c.requestTimeout > 0 && !c.requestStart.IsZero():
			// the client is sending: not idle, but not forever either
			earliest(c.requestStart.Add(c.requestTimeout))
		case c.idleTimeout > 0 && c.pending == 0:
			earliest(c.lastActivity.Add(c.idleTimeout))
		}
	}
	if nc := c.currentNetConn(); nc != nil {
		_ = nc.SetReadDeadline(d)
	}
}

// setWriteDeadline gives the write about to happen its deadline: the write
// timeout from now (or the idle timeout without one: a client that reads
// nothing for that long is idle), so a client that doesn't read its answers
// can't block a handler, and so keep its request in flight and the idle
// timeout suspended, forever.  Once the conn is closing, terminate's bound
// stays.  Called with writerMu held, before each write; the deadline is set
// under stateMu, so it can't replace the one terminate sets.
func (c *conn) setWriteDeadline() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	d := c.writeTimeout
	if d == 0 {
		d = c.idleTimeout
	}
	if d == 0 || c.closing {
		return
	}
	if nc := c.currentNetConn(); nc != nil {
		_ = nc.SetWriteDeadline(time.Now().Add(d))
	}
}

// writeFailed ends the conn after a write to it failed: the client doesn't
// read (write timeout) or is gone, and the buffered writer is unusable
// anyway (its error is sticky, and the stream may end mid-PDU), so no
// notice is sent.
func (c *conn) writeFailed(err error) {
	const op = "gldap.(conn).writeFailed"
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() && !c.isClosing() {
		c.logger.Info("client is not reading its responses, disconnecting", "op", op, "conn", c.connID, "err", err.Error())
		c.closeBecause(ReasonWriteTimeout)
	}
	c.terminate(-1, "")
}

// closeBecause records why the server ends the conn (see ConnEvent.Reason),
// unless a reason was recorded already.
func (c *conn) closeBecause(reason string) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	c.closeBecauseLocked(reason)
}

func (c *conn) closeBecauseLocked(reason string) {
	if c.closeReason == "" {
		c.closeReason = reason
	}
}

// reason is the recorded close reason ("" when the client ended the conn).
func (c *conn) reason() string {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.closeReason
}

// readTimeoutReason tells which read deadline passed: WithReadTimeout's
// absolute one or else the idle timeout's.
func (c *conn) readTimeoutReason() string {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	switch {
	case !c.readDeadline.IsZero() && !time.Now().Before(c.readDeadline):
		return ReasonReadTimeout
	case c.idleTimeout > 0:
		return ReasonIdle
	}
	return ""
}

// abandon cancels the context of the in-flight request(s) with the LDAP
// message ID and stops their ResponseWriters from writing anything more (RFC
// 4511 4.11: no further entries and no SearchResultDone for an abandoned
// search, no response for an abandoned operation).  Bind and StartTLS
// requests cannot be abandoned and are left alone.
func (c *conn) abandon(messageID int64) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for reqID, ir := range c.inflight {
		if ir.messageID != messageID {
			continue
		}
		if !ir.abandonable {
			c.logger.Debug("ignoring abandon of a request that cannot be abandoned", "conn", c.connID, "requestID", reqID, "messageID", messageID)
			continue
		}
		c.logger.Debug("abandoning request", "conn", c.connID, "requestID", reqID, "messageID", messageID)
		ir.abandoned.Store(true)
		ir.cancel()
	}
}

// currentNetConn returns the conn's current net.Conn (which changes after a
// StartTLS) without waiting for the read loop.
func (c *conn) currentNetConn() net.Conn {
	c.netMu.RLock()
	defer c.netMu.RUnlock()
	return c.netConn
}

func (c *conn) readRequest(requestID int) (*Request, error) {
	const op = "gldap.(Conn).readRequest"

	p, err := c.readPacket(requestID)
	if err != nil {
		return nil, fmt.Errorf("%s: error reading packet for %d/%d: %w", op, c.connID, requestID, err)
	}
	r, err := parseRequest(requestID, c, p)
	if err != nil {
		return nil, fmt.Errorf("%s: unable to create new in-memory request for %d/%d: %w: %w", op, c.connID, requestID, errMalformedRequest, err)
	}

	return r, nil
}

// parseRequest is newRequest, turning a panic while decoding the PDU (e.g. a
// control with unexpected types) into an error.
func parseRequest(requestID int, c *conn, p *packet) (r *Request, err error) {
	const op = "gldap.parseRequest"
	defer func() {
		if rec := recover(); rec != nil {
			r, err = nil, fmt.Errorf("%s: panic decoding request: %v", op, rec)
		}
	}()
	return newRequest(requestID, c, p)
}

func (c *conn) readPacket(requestID int) (*packet, error) {
	const op = "gldap.readPacket"
	// read a request
	berPacket, err := func() (*ber.Packet, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		// An LDAPMessage is a universal constructed SEQUENCE (0x30): reject
		// anything else on its first byte instead of waiting for the rest
		// of what its "length" announces (e.g. an HTTP request).
		var berPacket *ber.Packet
		first, err := c.reader.Peek(1)
		if err == nil {
			c.requestArriving() // WithRequestTimeout (patch 26)
			if first[0] == 0x16 {
				return nil, fmt.Errorf("%s: not an LDAPMessage for %d/%d (possible attempt to use TLS with a non-TLS server): %w", op, c.connID, requestID, errMalformedRequest)
			}
			if first[0] != 0x30 {
				return nil, fmt.Errorf("%s: not an LDAPMessage (first byte 0x%02x) for %d/%d: %w", op, first[0], c.connID, requestID, errMalformedRequest)
			}
			berPacket, err = c.readLimitedPacket()
		}
		var netErr net.Error
		switch {
		case err == nil:
			return berPacket, nil
		case errors.Is(err, errMalformedRequest), errors.Is(err, errServerBusy):
			return nil, fmt.Errorf("%s: error reading ber packet for %d/%d: %w", op, c.connID, requestID, err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.As(err, &netErr):
			// the connection failed or was closed: not the client's PDU
			return nil, fmt.Errorf("%s: error reading ber packet for %d/%d: %w", op, c.connID, requestID, err)
		case strings.Contains(err.Error(), "invalid character for IA5String at pos 2"):
			return nil, fmt.Errorf("%s: error reading ber packet for %d/%d (possible attempt to use TLS with a non-TLS server): %w: %w", op, c.connID, requestID, errMalformedRequest, err)
		default:
			// anything else is a BER decoding error
			return nil, fmt.Errorf("%s: error reading ber packet for %d/%d: %w: %w", op, c.connID, requestID, errMalformedRequest, err)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}

	p := &packet{Packet: berPacket}
	if c.logger.IsDebug() {
		c.logger.Debug("packet read", "op", op, "conn", c.connID, "requestID", requestID)
		p.Log(c.logger.StandardWriter(&hclog.StandardLoggerOptions{}), 0, false)
	}
	// Simple header is first... let's make sure it's an ldap packet with 2
	// children containing:
	//		[0] is a message ID
	//		[1] is a request header
	if err := p.basicValidation(); err != nil {
		return nil, fmt.Errorf("%s: failed validation: %w: %w", op, errMalformedRequest, err)
	}
	return p, nil
}

func (c *conn) initConn(netConn net.Conn) error {
	const op = "gldap.(Conn).initConn"
	if netConn == nil {
		return fmt.Errorf("%s: missing net conn: %w", op, ErrInvalidParameter)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.netMu.Lock()
	c.netConn = netConn
	c.netMu.Unlock()
	c.reader = bufio.NewReaderSize(c.netConn, connReadBuffer)
	c.writer = bufio.NewWriterSize(c.netConn, connWriteBuffer)
	return nil
}

// Per-connection buffers (patch 32). Each response is flushed as soon as
// it is written, so a write buffer only costs memory: with an empty one,
// bufio writes a packet larger than the buffer straight to the socket.
// The read buffer holds a typical request (a bind, a search); a larger
// one is read straight into its packet. Upstream used 4 KiB for each,
// held by every connection for its whole life, idle or waiting.
const (
	connReadBuffer  = 1024
	connWriteBuffer = 16
)

// close waits for in-flight handlers, sends a pending Notice of
// Disconnection and closes the socket.  serveRequests has cancelled the
// connection context by the time it is called.
func (c *conn) close() error {
	const op = "gldap.(Conn).close"
	c.requestsWg.Wait()
	sent, err := c.writePendingNotice()
	if err != nil {
		c.logger.Debug("unable to send notice of disconnection", "op", op, "conn", c.connID, "err", err.Error())
	}
	closeFn := c.currentNetConn().Close
	if sent {
		closeFn = func() error { return lingerClose(c.currentNetConn()) }
	}
	if err := closeFn(); err != nil {
		return fmt.Errorf("%s: error closing conn: %w", op, err)
	}
	return nil
}
