// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Server is an ldap server that you can add a mux (multiplexer) router to and
// then run it to accept and process requests.
type Server struct {
	mu     sync.RWMutex
	logger hclog.Logger
	connWg sync.WaitGroup
	// listeners are the listeners Run and Serve are serving now, in the
	// order they began (patch 29: one server, several listeners)
	listeners      []net.Listener
	router         *Mux
	readTimeout    time.Duration
	writeTimeout   time.Duration
	idleTimeout    time.Duration
	maxRequestSize int
	readBudget     *byteBudget // WithMaxBufferedBytes; nil: none
	maxPending     int
	requestTimeout time.Duration
	onCloseHandler OnCloseHandler
	connEvents     func(ConnEvent) // WithConnectionEvents; nil: none

	disablePanicRecovery bool
	shutdownCancel       context.CancelFunc
	shutdownCtx          context.Context
	// drainCtx is cancelled by Shutdown: every conn stops reading, lets its
	// in-flight handlers finish and closes (patch 30)
	drainCancel context.CancelFunc
	drainCtx    context.Context

	// connMu guards stopping, activeConns, perIP, refusing and connID: once
	// Stop set stopping, Run adds no conn to connWg
	connMu        sync.Mutex
	stopping      bool
	connID        int // the last connection ID given, across listeners
	activeConns   int
	maxConns      int                // WithMaxConnections; <= 0: no limit
	maxConnsPerIP int                // WithMaxConnectionsPerIP; <= 0: no limit
	perIP         map[netip.Addr]int // open conns by client address (with maxConnsPerIP)
	refusing      int                // refusals sending their notice now
	maxRefusals   int                // beyond it, refused conns are closed at once

	// listenFn replaces net.Listen (tests)
	listenFn func(network, address string) (net.Listener, error)
}

// NewServer creates a new ldap server
//
// Options supported:
// - WithLogger allows you pass a logger with whatever hclog.Level you wish including hclog.Off to turn off all logging
// - WithReadTimeout will set a read time out per connection
// - WithWriteTimeout will set a deadline for every write to a connection
// - WithOnClose will define a callback the server will call every time a connection is closed
// - WithIdleTimeout will close connections that are idle for a duration
// - WithDisablePanicRecovery will let a panicking handler crash the process
// - WithMaxPendingRequests bounds the requests of one connection in flight
// - WithRequestTimeout bounds how long a request may take to arrive
// - WithMaxConnections and WithMaxConnectionsPerIP refuse clients beyond them
// - WithConnectionEvents reports connections opened, closed and refused
func NewServer(opt ...Option) (*Server, error) {
	cancelCtx, cancel := context.WithCancel(context.Background())
	drainCtx, drainCancel := context.WithCancel(context.Background())
	opts := getConfigOpts(opt...)

	if opts.withLogger == nil {
		opts.withLogger = hclog.New(&hclog.LoggerOptions{
			Name:  "Server-logger",
			Level: hclog.Error,
		})
	}

	return &Server{
		router:               &Mux{}, // TODO: a better default router
		logger:               opts.withLogger,
		shutdownCancel:       cancel,
		shutdownCtx:          cancelCtx,
		drainCancel:          drainCancel,
		drainCtx:             drainCtx,
		writeTimeout:         opts.withWriteTimeout,
		readTimeout:          opts.withReadTimeout,
		idleTimeout:          opts.withIdleTimeout,
		maxRequestSize:       opts.withMaxRequestSize,
		readBudget:           newByteBudget(opts.withMaxBufferedBytes),
		maxPending:           opts.withMaxPendingRequests,
		requestTimeout:       opts.withRequestTimeout,
		disablePanicRecovery: opts.withDisablePanicRecovery,
		onCloseHandler:       opts.withOnClose,
		connEvents:           opts.withConnectionEvents,
		maxConns:             opts.withMaxConnections,
		maxConnsPerIP:        opts.withMaxConnectionsPerIP,
		perIP:                map[netip.Addr]int{},
		maxRefusals:          maxRefusals,
	}, nil
}

// maxRefusals bounds the refused connections (WithMaxConnections,
// WithMaxConnectionsPerIP) being sent their notice at once; each may take
// up to noticeWriteTimeout + lingerDelay.
const maxRefusals = 128

// Index of rightmost occurrence of b in s.
func last(s string, b byte) int {
	i := len(s)
	for i--; i >= 0; i-- {
		if s[i] == b {
			break
		}
	}
	return i
}

// validateAddrPort will not only validate the address+port, but if it's an ipv6
// literal without proper brackets, it will add them.
func validateAddrPort(addrPort string) (string, error) {
	const op = "gldap.parseAddr"

	lastColon := last(addrPort, ':')
	if lastColon < 0 {
		return "", fmt.Errorf("%s: missing port in addr \"%s\": %w", op, addrPort, ErrInvalidParameter)
	}
	rawHost := addrPort[0:lastColon]
	rawPort := addrPort[lastColon+1:]
	switch {
	case len(rawPort) == 0:
		return "", fmt.Errorf("%s: missing port in addr \"%s\": %w", op, addrPort, ErrInvalidParameter)
	case len(rawHost) == 0:
		return fmt.Sprintf(":%s", rawPort), nil
	case addrPort[0] == '[' && addrPort[len(addrPort)-1] == ']':
		return "", fmt.Errorf("%s: missing port in ipv6 addr : \"%s\": %w", op, addrPort, ErrInvalidParameter)
	}
	// ipv6 literal with proper brackets
	if rawHost[0] == '[' {
		// Expect the first ']' just before the last ':'.
		end := strings.IndexByte(rawHost, ']')
		if end < 0 {
			return "", fmt.Errorf("%s: missing ']' in ipv6 address \"%s\": %w", op, addrPort, ErrInvalidParameter)
		}
		// Note: netip.ParseAddr requires ipv6 addresses without brackets []
		trimmedIp := strings.Trim(rawHost, "[]")
		if _, err := netip.ParseAddr(trimmedIp); err != nil {
			// if net.ParseIP(trimmedIp) == nil {
			return "", fmt.Errorf("%s: invalid ipv6 address \"%s\": %w", op, rawHost, err)
		}
		// ipv6 literal has enclosing brackets, and it's a valid ipv6 address, so we're good
		return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
	}

	// see if we're dealing with a hostname
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	hostnames, _ := net.DefaultResolver.LookupHost(ctx, rawHost)
	if len(hostnames) > 0 {
		if rawHost == "::1" {
			// special case for localhost
			return fmt.Sprintf("[%s]:%s", rawHost, rawPort), nil
		}
		return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
	}

	lastColon = last(rawHost, ':')
	if lastColon >= 0 {
		// ipv6 literal without proper brackets.  Note: netip.ParseAddr requires
		// ipv6 addresses without brackets []
		if _, err := netip.ParseAddr(rawHost); err != nil {
			return "", fmt.Errorf("%s: invalid ipv6 address + port \"%s\": %w", op, addrPort, err)
		}
		return fmt.Sprintf("[%s]:%s", rawHost, rawPort), nil
	}
	// ipv4
	if net.ParseIP(rawHost) == nil {
		return "", fmt.Errorf("%s: invalid IP address \"%s\": %w", op, rawHost, ErrInvalidParameter)
	}
	return fmt.Sprintf("%s:%s", rawHost, rawPort), nil
}

// Run will run the server which will listen and serve requests.
//
// Run (like Serve) may be called more than once, concurrently, on one
// Server: each call serves its own listener (e.g. one plaintext with
// StartTLS, one with WithTLSConfig for LDAPS) with the server's router,
// options and limits; connection IDs are unique across them (patch 29).
//
// Options supported: WithTLSConfig
func (s *Server) Run(addr string, opt ...Option) error {
	const op = "gldap.(Server).Run"
	var err error
	addr, err = validateAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	listen := net.Listen
	if s.listenFn != nil {
		listen = s.listenFn
	}
	l, err := listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: unable to listen to addr %s: %w", op, addr, err)
	}
	return s.serve(op, l, opt...)
}

// Serve serves the listener l, which it closes when it returns, like Run
// serves the listener it opens (patch 29). It lets a caller open its
// listeners itself (and so know their addresses and report a failure to
// listen before serving anything), and serve several with one Server.
//
// Options supported: WithTLSConfig
func (s *Server) Serve(l net.Listener, opt ...Option) error {
	const op = "gldap.(Server).Serve"
	if l == nil {
		return fmt.Errorf("%s: missing listener: %w", op, ErrInvalidParameter)
	}
	return s.serve(op, l, opt...)
}

func (s *Server) serve(op string, l net.Listener, opt ...Option) error {
	opts := getConfigOpts(opt...)
	if opts.withTLSConfig != nil {
		s.logger.Debug("setting up TLS listener", "op", op)
		l = tls.NewListener(l, opts.withTLSConfig)
	}
	// only report Ready (and an Addr) once the listener is really listening,
	// TLS included.
	s.mu.Lock()
	if s.shutdownCtx.Err() != nil || s.drainCtx.Err() != nil {
		// Stop (or Shutdown) was called before we were listening
		s.mu.Unlock()
		_ = l.Close()
		return nil
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	defer func() {
		_ = l.Close()
		s.mu.Lock()
		s.listeners = slices.DeleteFunc(s.listeners, func(x net.Listener) bool { return x == l })
		s.mu.Unlock()
	}()
	s.logger.Info("listening", "op", op, "addr", l.Addr())

	var tempDelay time.Duration // how long to sleep on accept failure
	for {
		if s.shutdownCtx.Err() != nil {
			return nil
		}
		c, err := l.Accept()
		if err != nil {
			if s.shutdownCtx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.logger.Debug("accept on closed listener", "op", op)
				return nil
			}
			// Like net/http's Server.Serve: retry temporary errors (e.g.
			// EMFILE, ENFILE, ECONNABORTED) with a capped backoff instead of
			// giving up on every future client.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else {
					tempDelay *= 2
				}
				if maxDelay := 1 * time.Second; tempDelay > maxDelay {
					tempDelay = maxDelay
				}
				s.logger.Error("temporary error accepting connection, retrying", "op", op, "err", err.Error(), "retryIn", tempDelay)
				t := time.NewTimer(tempDelay)
				select {
				case <-t.C:
				case <-s.shutdownCtx.Done():
					t.Stop()
					return nil
				}
				continue
			}
			return fmt.Errorf("%s: error accepting conn: %w", op, err)
		}
		tempDelay = 0
		// register the conn unless Stop has begun waiting for conns
		s.connMu.Lock()
		if s.stopping {
			s.connMu.Unlock()
			_ = c.Close()
			return nil
		}
		s.connWg.Add(1)
		ip := remoteIP(c)
		var refusal, reason string
		switch {
		case s.maxConns > 0 && s.activeConns >= s.maxConns:
			refusal, reason = "too many connections", ReasonMaxConnections
			s.logger.Info("too many connections, rejecting client", "op", op, "remoteAddr", c.RemoteAddr().String(), "max", s.maxConns)
		case s.maxConnsPerIP > 0 && ip.IsValid() && s.perIP[ip] >= s.maxConnsPerIP:
			refusal, reason = "too many connections from your address", ReasonPerIP
			s.logger.Info("too many connections from one address, rejecting client", "op", op, "remoteAddr", c.RemoteAddr().String(), "max", s.maxConnsPerIP)
		}
		if refusal != "" {
			s.connEvent(ConnEvent{Kind: ConnRefused, Reason: reason, RemoteAddr: c.RemoteAddr()})
			// Refusals are bounded too: beyond maxRefusals at once (a
			// flood), the socket is closed without a notice, so a refusal
			// can't hold a descriptor and a goroutine for seconds.
			notify := s.refusing < s.maxRefusals
			if notify {
				s.refusing++
			}
			s.connMu.Unlock()
			if !notify {
				_ = c.Close()
				s.connWg.Done()
				continue
			}
			go func() {
				defer s.connWg.Done()
				rejectConn(c, ResultBusy, refusal)
				s.connMu.Lock()
				s.refusing--
				s.connMu.Unlock()
			}()
			continue
		}
		s.activeConns++
		if s.maxConnsPerIP > 0 && ip.IsValid() {
			s.perIP[ip]++
		} else {
			ip = netip.Addr{} // not counted per address
		}
		s.connID++
		connID := s.connID
		s.connMu.Unlock()

		s.logger.Debug("new connection accepted", "op", op, "conn", connID)
		conn, err := newConn(s.shutdownCtx, connID, c, s.logger, s.router)
		if err != nil {
			_ = c.Close()
			s.releaseConn(ip)
			return fmt.Errorf("%s: unable to create in-memory conn: %w", op, err)
		}
		s.connEvent(ConnEvent{Kind: ConnOpened, ConnID: connID, RemoteAddr: c.RemoteAddr()})
		conn.disablePanicRecovery = s.disablePanicRecovery
		conn.drainCtx = s.drainCtx
		if s.maxRequestSize > 0 {
			conn.maxRequestSize = s.maxRequestSize
		}
		conn.readBudget = s.readBudget
		if s.maxPending > 0 {
			conn.maxPending = s.maxPending
		}
		localConnID := connID
		go func() {
			// close order: serveRequests' read loop ended and cancelled the
			// conn context -> conn.close() waits for in-flight handlers, sends
			// a pending notice and closes the socket -> OnClose -> only then
			// is the conn done for Stop.
			defer func() {
				err := conn.close()
				if err != nil {
					s.logger.Error("error closing conn", "op", op, "conn", localConnID, "conn/req", "err", err)
					// we are intentionally not returning here; since we still
					// need to call the onCloseHandler if it's not nil
				}
				// the conn's slot (WithMaxConnections, WithMaxConnectionsPerIP)
				// is free once its socket is closed, before OnClose runs
				s.freeSlot(ip)
				s.connEvent(ConnEvent{Kind: ConnClosed, Reason: conn.reason(), ConnID: localConnID, RemoteAddr: c.RemoteAddr()})
				if s.onCloseHandler != nil {
					s.onCloseHandler(localConnID)
				}
				s.logger.Debug("connWg done", "op", op, "conn", localConnID)
				s.connWg.Done()
			}()

			if !s.disablePanicRecovery {
				// catch and report panics - we don't want it to crash the server if
				// handling a single conn causes a panic
				defer func() {
					if r := recover(); r != nil {
						s.logger.Error("Caught panic while serving request", "op", op, "conn", localConnID, "conn/req", fmt.Sprintf("%+v: %+v", c, r))
					}
				}()
			}
			// read deadlines (WithReadTimeout, WithIdleTimeout) are
			// managed by the conn, since they change with its activity
			if s.readTimeout != 0 {
				conn.readDeadline = time.Now().Add(s.readTimeout)
			}
			conn.idleTimeout = s.idleTimeout
			// each write gets its own deadline (WithWriteTimeout, patch 25)
			conn.writeTimeout = s.writeTimeout
			conn.requestTimeout = s.requestTimeout
			if err := conn.serveRequests(); err != nil {
				s.logger.Error("error handling conn", "op", op, "conn", localConnID, "err", err.Error())
			}
		}()
	}
}

// connEvent reports ev to WithConnectionEvents' func, if any.
func (s *Server) connEvent(ev ConnEvent) {
	if s.connEvents != nil {
		s.connEvents(ev)
	}
}

// releaseConn ends the accounting of an accepted conn.
func (s *Server) releaseConn(ip netip.Addr) {
	s.freeSlot(ip)
	s.connWg.Done()
}

// freeSlot gives back an accepted conn's slot, and its address's when it was
// counted per address (ip is then valid).
func (s *Server) freeSlot(ip netip.Addr) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.activeConns--
	if ip.IsValid() {
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
	}
}

// remoteIP is the IP address of the client of c (IPv4-mapped IPv6 addresses
// unmapped), or the zero Addr when it has none (e.g. a unix socket).
func remoteIP(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	case nil:
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Ready will return true when the server is ready to accept connection, i.e.
// Run (or Serve) is listening on its address.  It stays false if listening
// failed.
func (s *Server) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.listeners) > 0
}

// Addr returns the address the server is listening on, or nil until Run is
// listening.  It is useful when Run was given a port of 0.  With several
// listeners (patch 29) it is the first one's; see Addrs.
func (s *Server) Addr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

// Addrs returns the address of every listener Run and Serve are serving
// now, in the order they began (patch 29).
func (s *Server) Addrs() []net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Stop a running ldap server.  It stops accepting connections, cancels the
// context of every connection and request, unblocks every connection's read
// (so idle clients don't hold it up), and waits until every connection's
// in-flight handlers returned, its Notice of Disconnection ("server stopping",
// ResultUnavailable) was sent, its socket was closed and OnClose ran.
func (s *Server) Stop() error {
	const op = "gldap.(Server).Stop"
	s.mu.RLock()
	defer s.mu.RUnlock()

	s.logger.Debug("shutting down")
	if len(s.listeners) == 0 && s.shutdownCancel == nil {
		s.logger.Debug("nothing to do for shutdown")
		return nil
	}

	if s.shutdownCancel != nil {
		// every conn watches the shutdown context: it cancels the conn's
		// context and unblocks its read (see conn.serveRequests).  Cancelled
		// before the listener is closed, so Run returns nil.
		s.logger.Debug("shutdown cancel func")
		s.shutdownCancel()
	}
	closeErr := s.stopAccepting(op)
	s.logger.Debug("waiting on connections to close")
	s.connWg.Wait()
	s.logger.Debug("stopped")
	return closeErr
}

// stopAccepting marks the server as stopping, so Run adds no conn to connWg
// any more, and closes the listener.  The caller holds mu (read).
func (s *Server) stopAccepting(op string) error {
	// no conn may be added once we wait for them
	s.connMu.Lock()
	s.stopping = true
	s.connMu.Unlock()
	var closeErr error
	for _, l := range s.listeners { // every listener (patch 29)
		s.logger.Debug("closing listener")
		if err := l.Close(); err != nil {
			switch {
			case !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "use of closed network connection"):
				closeErr = errors.Join(closeErr, fmt.Errorf("%s: %w", op, err))
			default:
				s.logger.Debug("listener already closed")
			}
		}
	}
	return closeErr
}

// Shutdown stops the server gracefully (patch 30): it stops accepting
// connections (Run returns nil), and every connection stops reading
// requests, lets the handlers of the requests it already read run to the
// end with their contexts intact, then gets a Notice of Disconnection
// ("server stopping", ResultUnavailable) and is closed; an idle connection
// is closed at once.  When every connection is closed Shutdown returns nil
// (or the error closing the listener).  When ctx ends first, Shutdown does
// what Stop does to what is left — the contexts of the handlers still
// running are cancelled — waits for it, and returns ctx.Err().
//
// While a connection drains nothing is read from it, so a client that hangs
// up meanwhile is noticed only when its handler writes.  Shutdown after
// Stop, Stop after Shutdown and a second Shutdown are harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	const op = "gldap.(Server).Shutdown"
	s.mu.RLock()
	closeErr := s.stopAccepting(op)
	s.mu.RUnlock()
	s.logger.Debug("draining connections")
	s.drainCancel()

	done := make(chan struct{})
	go func() {
		s.connWg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.logger.Debug("drained")
		return closeErr
	case <-ctx.Done():
	}
	s.logger.Debug("shutdown deadline passed, stopping what is left")
	if err := s.Stop(); err != nil && closeErr == nil {
		closeErr = err
	}
	<-done
	return errors.Join(ctx.Err(), closeErr)
}

// Router sets the mux (multiplexer) router for matching inbound requests
// to handlers.
func (s *Server) Router(r *Mux) error {
	const op = "gldap.(Server).HandleRoutes"
	if r == nil {
		return fmt.Errorf("%s: missing router: %w", op, ErrInvalidParameter)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.router = r
	return nil
}
