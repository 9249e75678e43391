// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import "net"

// ConnEventKind is what happened to a client connection (see
// WithConnectionEvents).
type ConnEventKind int

const (
	// ConnOpened: a connection was accepted and will be served (it counts
	// against WithMaxConnections), before anything was read from it.
	ConnOpened ConnEventKind = iota + 1
	// ConnClosed: a served connection's socket was closed (before
	// OnClose).  Reason says why the server closed it, or is empty when
	// the client ended it (EOF, unbind, reset).
	ConnClosed
	// ConnRefused: a connection was refused when accepted (Reason is
	// ReasonMaxConnections or ReasonPerIP); it is never served, and no
	// ConnOpened or ConnClosed is reported for it.
	ConnRefused
)

// String returns "opened", "closed" or "refused".
func (k ConnEventKind) String() string {
	switch k {
	case ConnOpened:
		return "opened"
	case ConnClosed:
		return "closed"
	case ConnRefused:
		return "refused"
	}
	return "unknown"
}

// Reasons of ConnRefused and ConnClosed events.
const (
	ReasonMaxConnections = "max_connections" // refused: WithMaxConnections
	ReasonPerIP          = "per_ip"          // refused: WithMaxConnectionsPerIP
	ReasonIdle           = "idle"            // closed: WithIdleTimeout
	ReasonReadTimeout    = "read_timeout"    // closed: WithReadTimeout's deadline
	ReasonRequestTimeout = "request_timeout" // closed: WithRequestTimeout
	ReasonWriteTimeout   = "write_timeout"   // closed: a write timed out (WithWriteTimeout)
	ReasonProtocolError  = "protocol_error"  // closed: malformed, unknown or oversized request
	ReasonInternalError  = "internal_error"  // closed: a handler panicked
	ReasonStopping       = "stopping"        // closed: Server.Stop
)

// ConnEvent reports a client connection being opened, closed or refused.
type ConnEvent struct {
	Kind   ConnEventKind
	Reason string // see the Reason constants; empty for ConnOpened
	// ConnID is the connection's ID (as in OnClose); 0 for ConnRefused.
	ConnID     int
	RemoteAddr net.Addr
}

// WithConnectionEvents makes the server call f for every connection it
// accepts, closes or refuses (see ConnEvent): e.g. to count the TCP
// connections open from accept to close, including those that never send
// a byte, and why connections were refused or dropped.  f is called
// synchronously from the accept loop and the connections' goroutines,
// possibly concurrently: it must be cheap and must not block.
func WithConnectionEvents(f func(ConnEvent)) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withConnectionEvents = f
		}
	}
}
