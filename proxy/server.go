package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// Config is one server section as the proxy needs it.
type Config struct {
	Name string
	// Listen is the plaintext listener (StartTLS when TLS is set), and
	// LDAPSListen the implicit-TLS one (it needs TLS); either may be
	// empty, not both. Both serve this one section.
	Listen      string
	LDAPSListen string
	// Policy returns the section's policy at the moment of a bind; it may
	// change at run time (primary-only mode).
	Policy            func() failmode.Policy
	SecureGroups      []string
	ExemptDNs         []string
	ExemptPrimaryBind bool
	Factor            failmode.Factor
	PasscodeDelimiter string
	AllowAnonymous    bool
	IdleTimeout       time.Duration
	// MaxConnections caps concurrent client connections; 0 means no cap.
	MaxConnections int
	// MaxConnectionsPerIP caps the connections of one client address; 0
	// means no cap.
	MaxConnectionsPerIP int
	// MaxPendingRequests bounds the requests of one connection in flight;
	// beyond it the connection is not read from. 0 means no bound.
	MaxPendingRequests int
	// WriteTimeout bounds each write to a client (one that does not read
	// its answers is disconnected); 0: the idle timeout bounds it.
	WriteTimeout time.Duration
	// RequestTimeout bounds how long a request may take to arrive once its
	// first byte has; 0 means no bound.
	RequestTimeout time.Duration
	// OnConnEvent, if set, is told of every client connection accepted,
	// closed or refused (gldap.WithConnectionEvents); it must not block.
	OnConnEvent func(gldap.ConnEvent)
	// TLS enables StartTLS on Listen and serves LDAPSListen; nil disables
	// StartTLS. Its GetCertificate may change the certificate at any time
	// (certfile.Reloader).
	TLS        *tls.Config
	RequireTLS bool
	// MaxRequestSize bounds one client request, in bytes (required:
	// servers[].max_request_size).
	MaxRequestSize int
	// MaxBufferedBytes bounds the bytes of requests still arriving, all
	// connections together (required: config.Server.MaxBufferedBytes).
	MaxBufferedBytes int
	// ShutdownTimeout is how long, once ListenAndServe's ctx ends, the
	// operations in flight may run (no new connection or request is taken)
	// before they are cut; 0 cuts them at once.
	ShutdownTimeout time.Duration
	// BreakGlass, when set, accepts break-glass codes after the password
	// (breakglass.go); DuoUnreachable (required with it) reports whether
	// the section's Duo integration is known unreachable right now.
	BreakGlass     BreakGlass
	DuoUnreachable func() bool
	// Guards are the section's abuse guards (guards.go); zero: none.
	Guards Guards
	// ReleaseUpstreamAfter, when positive, closes the directory connection
	// of a bind that has waited this long on its second factor; it is
	// dialled and bound again (as the entry's DN) if the bind is allowed.
	// Only with a lookup account, where that bind names the entry found.
	ReleaseUpstreamAfter time.Duration
	// ProxyProtocol, when set, takes each client's address from the PROXY
	// protocol header of trusted load balancers (proxyprotocol.go). It
	// needs MaxConnections, which also bounds the headers read at once.
	ProxyProtocol *ProxyProtocol
}

// Server is one listening section. New returns its handle; the handle's
// settings can be replaced at run time (Reconfigure), each replacement being
// a new generation of the section: a *Server with the new settings that
// shares the handle's listener and client sessions. A request runs with the
// generation current when it began, from start to end.
type Server struct {
	cfg    Config
	dir    Directory
	sf     SecondFactor
	rec    failmode.Recorder
	log    *slog.Logger
	secure []dn.DN
	exempt []dn.DN
	// dirEpoch names the directory of this generation: a session whose
	// upstream connection is of another epoch re-checks a password on a
	// new connection to this one (see checkPassword).
	dirEpoch uint64

	// groupCheck is the latest CheckSecureGroups outcome; nil before one.
	groupCheck atomic.Pointer[groupCheck]

	l *listener // shared by every generation
}

// listener is what the generations of a section share: the listener, the
// client sessions, and which generation new requests run with.
type listener struct {
	cur    atomic.Pointer[Server]
	srv    atomic.Pointer[gldap.Server] // set once ListenAndServe built it
	epochs atomic.Uint64
	// addr and ldapsAddr are the bound addresses of Listen and LDAPSListen;
	// count is how many of the two the section has.
	addr, ldapsAddr atomic.Pointer[net.Addr]
	count           int

	mu       sync.Mutex
	sessions map[int]*session
}

// current is the generation new requests run with.
func (s *Server) current() *Server { return s.l.cur.Load() }

// New builds a server section. rec may be nil.
func New(cfg Config, dir Directory, sf SecondFactor, rec failmode.Recorder, log *slog.Logger) (*Server, error) {
	if dir == nil || sf == nil {
		return nil, errors.New("proxy: a directory and a second factor are required")
	}
	l := &listener{sessions: map[int]*session{}}
	for _, addr := range []string{cfg.Listen, cfg.LDAPSListen} {
		if addr != "" {
			l.count++
		}
	}
	s, err := newGeneration(cfg, dir, sf, rec, log, l)
	if err != nil {
		return nil, err
	}
	s.dirEpoch = l.epochs.Add(1)
	l.cur.Store(s)
	return s, nil
}

// newGeneration checks and builds a section's settings, sharing l.
func newGeneration(cfg Config, dir Directory, sf SecondFactor, rec failmode.Recorder, log *slog.Logger, l *listener) (*Server, error) {
	if dir == nil || sf == nil {
		return nil, errors.New("proxy: a directory and a second factor are required")
	}
	if cfg.Policy == nil {
		return nil, errors.New("proxy: a policy is required")
	}
	if cfg.Factor == "" {
		cfg.Factor = failmode.FactorAuto
	}
	if cfg.RequireTLS && cfg.TLS == nil {
		return nil, errors.New("proxy: require TLS needs a TLS configuration")
	}
	if cfg.LDAPSListen != "" && cfg.TLS == nil {
		return nil, errors.New("proxy: an LDAPS listener needs a TLS configuration")
	}
	if cfg.Listen == "" && cfg.LDAPSListen == "" {
		return nil, errors.New("proxy: a listen address is required")
	}
	if cfg.MaxRequestSize <= 0 || cfg.MaxBufferedBytes < cfg.MaxRequestSize {
		// Bounds come from config, their one home; none here to drift.
		return nil, errors.New("proxy: max request size and buffered bytes are required (buffered at least one request)")
	}
	if cfg.BreakGlass != nil && cfg.DuoUnreachable == nil {
		return nil, errors.New("proxy: break-glass codes need the Duo state (DuoUnreachable)")
	}
	if pp := cfg.ProxyProtocol; pp != nil {
		if err := pp.check(); err != nil {
			return nil, err
		}
		if cfg.MaxConnections <= 0 {
			return nil, errors.New("proxy: the PROXY protocol needs max connections (it bounds the headers read at once)")
		}
	}
	if rec == nil {
		rec = failmode.RecorderFunc(func(failmode.BindEvent) {})
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, dir: dir, sf: sf, rec: rec, log: log.With("server", cfg.Name), l: l}
	var err error
	if s.secure, err = parseDNs(cfg.SecureGroups); err != nil {
		return nil, fmt.Errorf("proxy: secure groups: %w", err)
	}
	if s.exempt, err = parseDNs(cfg.ExemptDNs); err != nil {
		return nil, fmt.Errorf("proxy: exempt DNs: %w", err)
	}
	return s, nil
}

// ListenAndServe serves until ctx is cancelled, then stops: it takes no new
// connection or request, lets the operations in flight (a bind waiting for
// a push) run for up to the current ShutdownTimeout with their contexts
// intact, then closes the client connections, and their upstream
// connections with them. Call it once, on the handle New returned; the
// listener settings are the handle's (see ListenerChanges).
func (s *Server) ListenAndServe(ctx context.Context) error {
	opts := []gldap.Option{
		gldap.WithLogger(hclog.NewNullLogger()),
		gldap.WithOnClose(s.closeSession),
		// A client request larger than this is refused with a notice of
		// disconnection before it is buffered.
		gldap.WithMaxRequestSize(s.cfg.MaxRequestSize),
		gldap.WithMaxBufferedBytes(s.cfg.MaxBufferedBytes),
	}
	// The bounds a section leaves at zero are not set (gldap's own default).
	for _, o := range []struct {
		set bool
		opt gldap.Option
	}{
		{s.cfg.IdleTimeout > 0, gldap.WithIdleTimeout(s.cfg.IdleTimeout)},
		{s.cfg.MaxConnections > 0, gldap.WithMaxConnections(s.cfg.MaxConnections)},
		{s.cfg.MaxConnectionsPerIP > 0, gldap.WithMaxConnectionsPerIP(s.cfg.MaxConnectionsPerIP)},
		{s.cfg.MaxPendingRequests > 0, gldap.WithMaxPendingRequests(s.cfg.MaxPendingRequests)},
		{s.cfg.WriteTimeout > 0, gldap.WithWriteTimeout(s.cfg.WriteTimeout)},
		{s.cfg.RequestTimeout > 0, gldap.WithRequestTimeout(s.cfg.RequestTimeout)},
		{s.cfg.OnConnEvent != nil, gldap.WithConnectionEvents(s.cfg.OnConnEvent)},
	} {
		if o.set {
			opts = append(opts, o.opt)
		}
	}
	srv, err := gldap.NewServer(opts...)
	if err != nil {
		return fmt.Errorf("proxy %s: %w", s.cfg.Name, err)
	}
	mux, err := s.routes()
	if err != nil {
		return fmt.Errorf("proxy %s: %w", s.cfg.Name, err)
	}
	if err := srv.Router(mux); err != nil {
		return fmt.Errorf("proxy %s: %w", s.cfg.Name, err)
	}

	// Both listeners are open before either is served, so a section that
	// cannot have both serves neither.
	type bind struct {
		addr  string
		bound *atomic.Pointer[net.Addr]
		opts  []gldap.Option
		attrs []any
	}
	var want []bind
	if s.cfg.Listen != "" {
		want = append(want, bind{addr: s.cfg.Listen, bound: &s.l.addr})
	}
	if s.cfg.LDAPSListen != "" {
		want = append(want, bind{addr: s.cfg.LDAPSListen, bound: &s.l.ldapsAddr,
			opts: []gldap.Option{gldap.WithTLSConfig(s.cfg.TLS)}, attrs: []any{"tls", "ldaps"}})
	}
	var lc net.ListenConfig
	opened := make([]net.Listener, 0, len(want))
	for _, l := range want {
		nl, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
			if ctx.Err() != nil {
				return nil // stopped before it was listening
			}
			return fmt.Errorf("proxy %s: listen %s: %w", s.cfg.Name, l.addr, err)
		}
		opened = append(opened, nl)
	}
	s.l.srv.Store(srv)
	if pp := s.cfg.ProxyProtocol; pp != nil {
		// Under TLS: gldap's LDAPS listener wraps this one, so the header
		// comes first on the wire, as balancers send it.
		for i, nl := range opened {
			opened[i] = newProxyListener(nl, *pp, s.cfg.MaxConnections, s.cfg.OnConnEvent, s.log)
		}
	}
	errc := make(chan error, len(opened))
	for i, nl := range opened {
		go func() { errc <- srv.Serve(nl, want[i].opts...) }()
		addr := nl.Addr()
		want[i].bound.Store(&addr)
		// The address actually bound (a listen address with port 0 gets
		// one from the kernel): tests and operators read it here.
		attrs := append([]any{"addr", addr.String()}, want[i].attrs...)
		if s.cfg.ProxyProtocol != nil {
			attrs = append(attrs, "proxy_protocol", "required from trusted sources")
		}
		s.log.Info("listening", attrs...)
	}
	var served error
	select {
	case served = <-errc:
		// A listener failed: the section stops, and ListenAndServe says why.
		if served == nil {
			served = errors.New("listener closed")
		}
	case <-ctx.Done():
	}
	s.shutdown(srv)
	for range len(opened) - btoi(served != nil) {
		<-errc
	}
	if served != nil {
		return fmt.Errorf("proxy %s: %w", s.cfg.Name, served)
	}
	return nil
}

// shutdown stops srv gracefully, bounded by the current ShutdownTimeout.
func (s *Server) shutdown(srv *gldap.Server) {
	timeout := s.current().cfg.ShutdownTimeout
	s.log.Info("stopping: no new connections; operations in flight may finish", "shutdown_timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	begin := time.Now()
	switch err := srv.Shutdown(ctx); {
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("stopped: operations still in flight at shutdown_timeout were cut", "shutdown_timeout", timeout.String())
	case err != nil:
		s.log.Warn("stop", "err", err)
	default:
		s.log.Info("stopped", "took", time.Since(begin).Round(time.Millisecond).String())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Addr is the address the plaintext (listen) listener is bound to, nil
// before it is or when the section has none.
func (s *Server) Addr() net.Addr {
	if a := s.l.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// LDAPSAddr is the address the LDAPS (ldaps_listen) listener is bound
// to, nil before it is or when the section has none.
func (s *Server) LDAPSAddr() net.Addr {
	if a := s.l.ldapsAddr.Load(); a != nil {
		return *a
	}
	return nil
}

// Ready reports whether every listener of the section is up.
func (s *Server) Ready() bool {
	srv := s.l.srv.Load()
	return srv != nil && len(srv.Addrs()) == s.l.count
}

func (s *Server) routes() (*gldap.Mux, error) {
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	// Every request runs with the generation current when it arrives.
	live := func(h func(*Server, *gldap.ResponseWriter, *gldap.Request)) gldap.HandlerFunc {
		return func(w *gldap.ResponseWriter, r *gldap.Request) { h(s.current(), w, r) }
	}
	for _, err := range []error{
		mux.Bind(live((*Server).handleBind)),
		mux.Search(live((*Server).handleSearch)),
		mux.Modify(live((*Server).handleModify)),
		mux.Add(live((*Server).handleAdd)),
		mux.Delete(live((*Server).handleDelete)),
		mux.Compare(live((*Server).handleCompare)),
		mux.ModifyDN(live((*Server).handleModifyDN)),
		mux.ExtendedOperation(live((*Server).handleStartTLS), gldap.ExtendedOperationStartTLS),
		mux.Abandon(func(*gldap.ResponseWriter, *gldap.Request) {}), // gldap cancels the request's context
		mux.DefaultRoute(live((*Server).handleDefault)),
	} {
		if err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// session returns the state of r's connection, creating it on first use.
func (s *Server) session(r *gldap.Request) *session {
	id := r.ConnectionID()
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	sess, ok := s.l.sessions[id]
	if !ok {
		sess = newSession(id, r.RemoteAddr())
		s.l.sessions[id] = sess
	}
	return sess
}

// closeSession runs after gldap closed the client connection and every
// handler of it returned: the upstream connection goes with it, back to
// the current generation's pool when only binds ran on it.
func (s *Server) closeSession(id int) {
	s.l.mu.Lock()
	sess, ok := s.l.sessions[id]
	delete(s.l.sessions, id)
	s.l.mu.Unlock()
	if !ok {
		return
	}
	cur := s.current()
	sess.mu.Lock()
	sess.release(cur.dir, cur.dirEpoch)
	sess.mu.Unlock()
}

// isExempt reports whether the entry is an exempt DN or under one.
func (s *Server) isExempt(entry dn.DN) bool {
	for _, e := range s.exempt {
		if entry.Under(e) {
			return true
		}
	}
	return false
}

func (s *Server) inSecureGroup(groups []string) bool {
	for _, g := range groups {
		gdn, err := dn.Parse(g)
		if err != nil {
			return true // unparseable: count as privileged
		}
		for _, sg := range s.secure {
			if sg.Equal(gdn) {
				return true
			}
		}
	}
	return false
}

func parseDNs(in []string) ([]dn.DN, error) {
	out := make([]dn.DN, 0, len(in))
	for _, raw := range in {
		d, err := dn.Parse(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		out = append(out, d)
	}
	return out, nil
}
