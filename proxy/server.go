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
	Name   string
	Listen string
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
	// TLS enables StartTLS; nil disables it.
	TLS        *tls.Config
	RequireTLS bool
	// MaxRequestSize bounds one client request, in bytes (required:
	// servers[].max_request_size).
	MaxRequestSize int
	// MaxBufferedBytes bounds the bytes of requests still arriving, all
	// connections together (required: config.Server.MaxBufferedBytes).
	MaxBufferedBytes int
	// Guards are the section's abuse guards (guards.go); zero: none.
	Guards Guards
}

// Server is one listening section.
type Server struct {
	cfg    Config
	dir    Directory
	sf     SecondFactor
	rec    failmode.Recorder
	log    *slog.Logger
	secure []dn.DN
	exempt []dn.DN

	srv atomic.Pointer[gldap.Server] // set once ListenAndServe built it
	// groupCheck is the latest CheckSecureGroups outcome; nil before one.
	groupCheck atomic.Pointer[groupCheck]

	mu       sync.Mutex
	sessions map[int]*session
}

// New builds a server section. rec may be nil.
func New(cfg Config, dir Directory, sf SecondFactor, rec failmode.Recorder, log *slog.Logger) (*Server, error) {
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
	if cfg.MaxRequestSize <= 0 || cfg.MaxBufferedBytes < cfg.MaxRequestSize {
		// Bounds come from config, their one home; none here to drift.
		return nil, errors.New("proxy: max request size and buffered bytes are required (buffered at least one request)")
	}
	if rec == nil {
		rec = failmode.RecorderFunc(func(failmode.BindEvent) {})
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, dir: dir, sf: sf, rec: rec, log: log.With("server", cfg.Name), sessions: map[int]*session{}}
	var err error
	if s.secure, err = parseDNs(cfg.SecureGroups); err != nil {
		return nil, fmt.Errorf("proxy: secure groups: %w", err)
	}
	if s.exempt, err = parseDNs(cfg.ExemptDNs); err != nil {
		return nil, fmt.Errorf("proxy: exempt DNs: %w", err)
	}
	return s, nil
}

// ListenAndServe serves until ctx is cancelled, then stops: open client
// connections are closed and their upstream connections with them.
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
	s.srv.Store(srv)

	errc := make(chan error, 1)
	go func() { errc <- srv.Run(s.cfg.Listen) }()
	// Report the address actually bound (a listen address with port 0 gets
	// one from the kernel), once the listener is up.
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for srv.Addr() == nil {
		select {
		case err := <-errc:
			return fmt.Errorf("proxy %s: listen %s: %w", s.cfg.Name, s.cfg.Listen, err)
		case <-ctx.Done():
			_ = srv.Stop()
			<-errc
			return nil
		case <-poll.C:
		}
	}
	s.log.Info("listening", "addr", srv.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("proxy %s: listen %s: %w", s.cfg.Name, s.cfg.Listen, err)
	case <-ctx.Done():
	}
	if err := srv.Stop(); err != nil {
		s.log.Warn("stop", "err", err)
	}
	<-errc
	return nil
}

// Addr is the address the listener is bound to, nil before it is.
func (s *Server) Addr() net.Addr {
	if srv := s.srv.Load(); srv != nil {
		return srv.Addr()
	}
	return nil
}

// Ready reports whether the listener is up.
func (s *Server) Ready() bool {
	srv := s.srv.Load()
	return srv != nil && srv.Ready()
}

func (s *Server) routes() (*gldap.Mux, error) {
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	for _, err := range []error{
		mux.Bind(s.handleBind),
		mux.Search(s.handleSearch),
		mux.Modify(s.handleModify),
		mux.Add(s.handleAdd),
		mux.Delete(s.handleDelete),
		mux.Compare(s.handleCompare),
		mux.ModifyDN(s.handleModifyDN),
		mux.ExtendedOperation(s.handleStartTLS, gldap.ExtendedOperationStartTLS),
		mux.Abandon(func(*gldap.ResponseWriter, *gldap.Request) {}), // gldap cancels the request's context
		mux.DefaultRoute(s.handleDefault),
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
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		sess = newSession(id, r.RemoteAddr())
		s.sessions[id] = sess
	}
	return sess
}

// closeSession runs after gldap closed the client connection and every
// handler of it returned: the upstream connection goes with it.
func (s *Server) closeSession(id int) {
	s.mu.Lock()
	sess, ok := s.sessions[id]
	delete(s.sessions, id)
	s.mu.Unlock()
	if !ok {
		return
	}
	sess.mu.Lock()
	sess.closeUpstream()
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
