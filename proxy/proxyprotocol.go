package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/pires/go-proxyproto"
)

// ProxyProtocol is a section behind a load balancer: the client address
// of a connection is the one the PROXY protocol header (v1 or v2) carries,
// and only Trusted sources may send one.
//
//   - From a trusted source the header is required, within HeaderTimeout
//     of the connection; a connection without one (or with one that does
//     not name a TCP client) is closed before anything is read from it.
//     A LOCAL header (a balancer's own connection) keeps the balancer's
//     address.
//   - From any other source a header is refused: the connection is closed
//     at its first read. Other clients are served as usual, with their own
//     address.
//
// The header is read before TLS (ldaps_listen and StartTLS are under it)
// and before gldap sees the connection, so every reader of the client
// address — the auth log, Duo's ipaddr, the throttles, the per-address
// connection limit — gets the proxied one.
type ProxyProtocol struct {
	Trusted       []netip.Prefix
	HeaderTimeout time.Duration
}

// errHeaderNoClient refuses a header that names no TCP client.
var errHeaderNoClient = errors.New("PROXY header names no TCP client address")

func (pp ProxyProtocol) check() error {
	if len(pp.Trusted) == 0 {
		return errors.New("proxy: the PROXY protocol needs trusted sources")
	}
	if pp.HeaderTimeout <= 0 {
		return errors.New("proxy: the PROXY protocol needs a header timeout")
	}
	return nil
}

func (pp ProxyProtocol) trusts(a net.Addr) (bool, error) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", proxyproto.ErrInvalidUpstream, a, err)
	}
	ip := ap.Addr().Unmap()
	for _, p := range pp.Trusted {
		if p.Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// validHeader accepts a LOCAL header and a PROXY header over TCP with a
// source address; anything else (UDP, unix sockets) is refused.
func validHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() {
		return nil
	}
	if h.TransportProtocol != proxyproto.TCPv4 && h.TransportProtocol != proxyproto.TCPv6 {
		return fmt.Errorf("%w (transport %#x)", errHeaderNoClient, byte(h.TransportProtocol))
	}
	if a, ok := h.SourceAddr.(*net.TCPAddr); !ok || a.IP == nil {
		return errHeaderNoClient
	}
	return nil
}

// proxyListener wraps a section's listener. It hands gldap only
// connections whose client address is settled: gldap reads RemoteAddr in
// its accept loop (the per-address limit), and go-proxyproto reads the
// header lazily, at the first Read or RemoteAddr. So the header of a
// trusted source is read here, in a goroutine of its own bounded by
// HeaderTimeout, and at most maxPending at once: one balancer that is slow
// to send a header holds neither the accept loop nor other clients.
type proxyListener struct {
	pl  *proxyproto.Listener
	log *slog.Logger
	// onEvent is told of the connections refused here (the section's
	// OnConnEvent); nil: none.
	onEvent func(gldap.ConnEvent)
	out     chan accepted
	done    chan struct{}
	// slots bounds the headers being read at once; beyond it a trusted
	// source's new connection is closed.
	slots chan struct{}

	closeOnce sync.Once
	mu        sync.Mutex
	closed    bool
	pending   map[net.Conn]struct{} // headers being read now
	wg        sync.WaitGroup
}

type accepted struct {
	c   net.Conn
	err error
}

// ReasonProxyProtocol is the ConnRefused reason of a connection from a
// trusted source refused for its PROXY header (missing, late, invalid, or
// beyond the headers read at once).
const ReasonProxyProtocol = "proxy_protocol"

func newProxyListener(nl net.Listener, pp ProxyProtocol, maxPending int, onEvent func(gldap.ConnEvent), log *slog.Logger) *proxyListener {
	l := &proxyListener{
		log:     log,
		onEvent: onEvent,
		out:     make(chan accepted),
		done:    make(chan struct{}),
		slots:   make(chan struct{}, maxPending),
		pending: map[net.Conn]struct{}{},
	}
	l.pl = &proxyproto.Listener{
		Listener: nl,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			switch ok, err := pp.trusts(o.Upstream); {
			case err != nil:
				return proxyproto.REJECT, err // closed; the listener goes on
			case ok:
				return proxyproto.REQUIRE, nil
			default:
				return proxyproto.REJECT, nil
			}
		},
		ValidateHeader:    validHeader,
		ReadHeaderTimeout: pp.HeaderTimeout,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *proxyListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.pl.Accept()
		if err != nil {
			if !l.deliver(accepted{err: err}) {
				return
			}
			// gldap retries temporary errors (with its backoff, since this
			// waits for it to take the next one); any other ends its loop.
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return
			}
			continue
		}
		pc, ok := c.(*proxyproto.Conn)
		if !ok { // not a policy of ours (SKIP); served as it is
			if !l.deliver(accepted{c: c}) {
				return
			}
			continue
		}
		if pc.ProxyHeaderPolicy != proxyproto.REQUIRE {
			// Not trusted: its own address, read without waiting; a header
			// fails its first read (ErrSuperfluousProxyHeader).
			if !l.deliver(accepted{c: &proxiedConn{Conn: pc, remote: pc.Raw().RemoteAddr(), log: l.log}}) {
				return
			}
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			l.log.Warn("PROXY protocol: too many headers being read at once; connection closed",
				"source", pc.Raw().RemoteAddr().String(), "max", cap(l.slots))
			l.refused(pc)
			continue
		}
		if !l.track(pc) {
			<-l.slots
			_ = pc.Close()
			return
		}
		l.wg.Add(1)
		go l.settle(pc)
	}
}

// settle reads the header of a trusted source's connection and hands the
// connection on, with the client address the header names, or closes it.
func (l *proxyListener) settle(pc *proxyproto.Conn) {
	defer l.wg.Done()
	// A zero-length read reads the header (bounded by ReadHeaderTimeout)
	// and returns its error; no byte of the stream is consumed.
	_, err := pc.Read(nil)
	l.untrack(pc)
	<-l.slots
	if err != nil {
		if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
			err = fmt.Errorf("no PROXY header (within the header timeout): %w", err)
		}
		l.log.Warn("PROXY protocol: connection from a trusted source refused", "source", pc.Raw().RemoteAddr().String(), "err", err)
		l.refused(pc)
		return
	}
	if !l.deliver(accepted{c: &proxiedConn{Conn: pc, remote: pc.RemoteAddr(), log: l.log}}) {
		_ = pc.Close()
	}
}

// refused closes a trusted source's connection refused here and says so.
func (l *proxyListener) refused(pc *proxyproto.Conn) {
	_ = pc.Close()
	if l.onEvent != nil {
		l.onEvent(gldap.ConnEvent{Kind: gldap.ConnRefused, Reason: ReasonProxyProtocol, RemoteAddr: pc.Raw().RemoteAddr()})
	}
}

// deliver hands a to Accept; false when the listener closed first (a's
// connection is then closed).
func (l *proxyListener) deliver(a accepted) bool {
	select {
	case l.out <- a:
		return true
	case <-l.done:
		if a.c != nil {
			_ = a.c.Close()
		}
		return false
	}
}

func (l *proxyListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *proxyListener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// Accept returns the next connection with its client address settled.
func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case a := <-l.out:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, closes the connections whose header is being
// read, and returns once every goroutine of the listener has ended.
func (l *proxyListener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.pl.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *proxyListener) Addr() net.Addr { return l.pl.Addr() }

// proxiedConn is a connection whose client address is settled: the header's
// (trusted source) or the socket's (any other), so RemoteAddr never blocks.
type proxiedConn struct {
	*proxyproto.Conn
	remote net.Addr
	log    *slog.Logger
	once   sync.Once
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the socket's: the header's destination is the balancer's.
func (c *proxiedConn) LocalAddr() net.Addr { return c.Raw().LocalAddr() }

func (c *proxiedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) {
		c.once.Do(func() {
			c.log.Warn("PROXY protocol: header from an untrusted source refused; connection closed", "source", c.remote.String())
		})
	}
	return n, err
}

// CloseWrite lets gldap linger after a notice of disconnection as it does on
// a plain TCP connection.
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Raw().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
