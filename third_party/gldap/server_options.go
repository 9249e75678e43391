// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"crypto/tls"
	"time"

	"github.com/hashicorp/go-hclog"
)

type configOptions struct {
	withTLSConfig            *tls.Config
	withLogger               hclog.Logger
	withReadTimeout          time.Duration
	withWriteTimeout         time.Duration
	withDisablePanicRecovery bool
	withOnClose              OnCloseHandler
	withIdleTimeout          time.Duration
	withMaxConnections       int
	withMaxRequestSize       int
	withMaxBufferedBytes     int
	withMaxPendingRequests   int
	withRequestTimeout       time.Duration
	withMaxConnectionsPerIP  int
	withConnectionEvents     func(ConnEvent)
}

func configDefaults() configOptions {
	return configOptions{}
}

// getConfigOpts gets the defaults and applies the opt overrides passed
// in.
func getConfigOpts(opt ...Option) configOptions {
	opts := configDefaults()
	applyOpts(&opts, opt...)
	return opts
}

// WithLogger provides the optional logger.
func WithLogger(l hclog.Logger) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withLogger = l
		}
	}
}

// WithTLSConfig provides an optional tls.Config
func WithTLSConfig(tc *tls.Config) Option {
	return func(o interface{}) {
		switch v := o.(type) {
		case *configOptions:
			v.withTLSConfig = tc
		}
	}
}

// WithReadTimeout will set a read time out per connection: a single read
// deadline of d after the connection is accepted (see WithIdleTimeout for an
// idle timeout)
func WithReadTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withReadTimeout = d
		}
	}
}

// WithIdleTimeout closes a connection once it has been idle for d: no request
// was read for d while none of its requests was in flight.  The clock restarts
// after every PDU read and when the last in-flight request of the connection
// completes, so a slow request (e.g. a bind waiting for an MFA push) is never
// cut short by it.  Zero (the default) disables it.  Unlike WithReadTimeout,
// which is a single deadline set when the connection is accepted, this is a
// real idle timeout; when both are set, the earlier deadline wins.
func WithIdleTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withIdleTimeout = d
		}
	}
}

// WithMaxConnections limits the number of concurrent client connections to
// n: a connection accepted while n are open gets a Notice of Disconnection
// with ResultBusy and is closed, without reaching any handler.  Zero or less
// (the default) means no limit.
func WithMaxConnections(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxConnections = n
		}
	}
}

// WithMaxConnectionsPerIP limits the concurrent connections from one client
// IP address to n: a connection accepted while n from its address are open
// gets a Notice of Disconnection with ResultBusy ("too many connections from
// your address") and is closed, like WithMaxConnections' refusals; other
// addresses are served.  Addresses are compared exactly (an IPv4-mapped IPv6
// address counts as its IPv4 address).  Zero or less (the default) means no
// limit.
func WithMaxConnectionsPerIP(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxConnectionsPerIP = n
		}
	}
}

// WithMaxRequestSize limits the size of a request PDU (its LDAPMessage
// content octets) to n bytes: the length is checked from the PDU's header
// before anything is read or allocated, and a larger request ends the
// connection with a Notice of Disconnection (protocolError, "request too
// large").  Zero or less (the default) keeps asn1-ber's limit
// (ber.MaxPacketLengthBytes, 2 GiB), where a client can make the server
// buffer that much per connection.
func WithMaxRequestSize(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxRequestSize = n
		}
	}
}

// WithMaxBufferedBytes bounds the bytes buffered for requests still being
// received, across all connections, to n (plus the first 4 KiB of each
// request, which every connection's reader holds anyway, so requests of
// that size never depend on it).  A connection whose request would need more
// while the budget is taken is sent a Notice of Disconnection with
// ResultBusy ("server busy") and closed: it doesn't wait for budget, since
// connections each holding part of it and waiting for more could wait for
// each other forever.  A request's bytes count until it has been read and
// decoded, or its connection ended.  Zero or less (the default) means no
// bound (each request is still bounded by WithMaxRequestSize).
func WithMaxBufferedBytes(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxBufferedBytes = n
		}
	}
}

// WithMaxPendingRequests limits the requests of one connection in flight at
// once (handlers running in their own goroutine) to n.  While n are in
// flight, the connection's next request waits for one of them to return and
// nothing more is read from the connection: the client is slowed down (TCP
// flow control) instead of the server starting a goroutine per request it
// sends.  Requests the read loop handles itself (abandon, unbind, StartTLS)
// don't take a slot, so an abandon read while n requests are in flight still
// cancels one of them.  Zero or less (the default) means no limit.
func WithMaxPendingRequests(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxPendingRequests = n
		}
	}
}

// WithRequestTimeout bounds how long a request may take to arrive: once the
// first byte of a request PDU has been read, the whole PDU must have arrived
// within d, else the connection is ended with a Notice of Disconnection
// (protocolError, "request not received in time").  It stops a client from
// holding a connection (and its buffer) by sending a request a byte at a
// time (slowloris).  The time before the first byte is the idle timeout's
// business.  Zero (the default) means no limit.
func WithRequestTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withRequestTimeout = d
		}
	}
}

// WithWriteTimeout gives every write to a connection (a response, a search
// entry) a deadline of d from when it starts.  A write that doesn't complete
// in time, because the client doesn't read its answers, ends the connection
// (without a notice: the client isn't reading).  Zero (the default) means no
// deadline, except that with WithIdleTimeout a write gets the idle timeout as
// its deadline.  (Upstream set a single deadline d after accept instead.)
func WithWriteTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withWriteTimeout = d
		}
	}
}

// WithDisablePanicRecovery will disable recovery from panics which occur when
// handling a request.  This is helpful for debugging since you'll get the
// panic's callstack.
func WithDisablePanicRecovery() Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withDisablePanicRecovery = true
		}
	}
}

// OnCloseHandler defines a function for a "on close" callback handler.  See:
// NewServer(...) and WithOnClose(...) option for more information
type OnCloseHandler func(connectionID int)

// WithOnClose defines a OnCloseHandler that the server will use as a callback
// every time a connection to the server is closed.   This allows callers to
// clean up resources for closed connections (using their ID to determine which
// one to clean up)
func WithOnClose(handler OnCloseHandler) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withOnClose = handler
		}
	}
}
