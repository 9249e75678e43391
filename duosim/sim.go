package duosim

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault is a failure mode the simulator can be driven into.
type Fault string

const (
	// FaultNone: behave like Duo.
	FaultNone Fault = ""
	// FaultRefuse: stop listening, so TCP connections are refused, and close
	// every open connection. Clearing it listens again on the same port.
	FaultRefuse Fault = "refuse"
	// FaultHang: accept, read the request, never answer until the fault is
	// changed (the request then gets a 503 FAIL 50301), the client goes away
	// or the simulator is closed (the connection is dropped).
	FaultHang Fault = "hang"
	// FaultServerError: HTTP 503 with an HTML body, like a load balancer.
	FaultServerError Fault = "server_error"
	// FaultUnauthorized: HTTP 401 FAIL 40103 whatever the signature; the
	// unsigned /auth/v2/ping still answers.
	FaultUnauthorized Fault = "unauthorized"
	// FaultBadCert: TLS handshakes present a certificate from a different,
	// untrusted CA. Open connections are closed when it is set.
	FaultBadCert Fault = "bad_cert"
	// FaultRateLimit: HTTP 429 FAIL 42901.
	FaultRateLimit Fault = "rate_limit"
	// FaultAuthHang: ping, check, preauth and auth_status answer normally;
	// /auth/v2/auth hangs as with FaultHang.
	FaultAuthHang Fault = "auth_hang"
	// FaultAuthError: everything answers normally but /auth/v2/auth, which
	// answers 503 with an HTML body.
	FaultAuthError Fault = "auth_error"
	// FaultSlow: every answer, on every endpoint (ping, check, preauth,
	// auth, auth_status), is delayed by the slow delay (Options.SlowDelay or
	// SetSlow, DefaultSlowDelay if neither).
	FaultSlow Fault = "slow"
	// FaultCheckHang: only /auth/v2/check hangs as with FaultHang; ping,
	// preauth, auth and auth_status answer normally. A health probe sees an
	// outage that logins do not.
	FaultCheckHang Fault = "check_hang"
	// FaultPreauthError: only /auth/v2/preauth answers 503 with an HTML
	// body; ping, check (signed), auth and auth_status answer normally. The
	// probe says Duo is fine while every login fails before it starts.
	FaultPreauthError Fault = "preauth_error"
)

var faults = []Fault{FaultNone, FaultRefuse, FaultHang, FaultServerError, FaultUnauthorized, FaultBadCert, FaultRateLimit, FaultAuthHang, FaultAuthError, FaultSlow, FaultCheckHang, FaultPreauthError}

// Valid reports whether f is one of the Fault constants.
func (f Fault) Valid() bool { return slices.Contains(faults, f) }

// ParseFault accepts a fault name; "", "none" and "clear" mean FaultNone.
func ParseFault(s string) (Fault, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "none", "clear":
		return FaultNone, nil
	}
	if f := Fault(s); f.Valid() {
		return f, nil
	}
	return "", unknownFault(s)
}

func unknownFault(s string) error {
	names := make([]string, 0, len(faults))
	for _, f := range faults[1:] {
		names = append(names, string(f))
	}
	return fmt.Errorf("duosim: unknown fault %q (want none or one of %s)", s, strings.Join(names, ", "))
}

// DefaultSlowDelay is the FaultSlow delay when none was configured.
const DefaultSlowDelay = 2 * time.Second

// ErrClosed is returned by SetFault after Close.
var ErrClosed = errors.New("duosim: simulator closed")

// Options configures New.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// IntegrationKey and SecretKey are the credentials requests must be
	// signed with. Random ones are generated when empty (see
	// Sim.IntegrationKey and Sim.SecretKey).
	IntegrationKey, SecretKey string
	// Users known to the simulator; see SetUsers.
	Users []User
	// Hostnames are extra certificate SANs (DNS names or IPs); 127.0.0.1, ::1
	// and localhost are always included.
	Hostnames []string
	// PushDelay is how long a push or phone call "takes" before the user
	// answers; default 0.
	PushDelay time.Duration
	// SlowDelay is the FaultSlow delay; default DefaultSlowDelay.
	SlowDelay time.Duration
	// ClockOffset sets the simulator's clock this far from the machine's:
	// the time /ping and /check report and the clock signatures' Date
	// headers are checked against (beyond MaxClockSkew, as with Duo,
	// requests fail). For testing clock-skew reports; default 0.
	ClockOffset time.Duration
	// HTTP1Only serves HTTP/1.1 alone, like an endpoint that offers no
	// HTTP/2 through ALPN; by default both are offered, HTTP/2 first, as
	// Duo's API hosts do.
	HTTP1Only bool
	// MaxConcurrentStreams bounds the requests in flight on one HTTP/2
	// connection (a client opens another past it); default 250, Go's.
	MaxConcurrentStreams int
	// Logger receives a start-up line, fault changes (Info) and one line per
	// request (Debug). Nil discards.
	Logger *slog.Logger
}

// Connections is how many connections the simulator has accepted since it
// started (refused ones not counted): with HTTP/2 a client's calls share
// one, with HTTP/1.1 each call in flight holds its own.
func (s *Sim) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Calls counts the requests that reached each endpoint, whatever the answer
// (faults, bad signatures and errors included; refused connections and
// failed TLS handshakes never reach an endpoint). BadSignature counts signed
// requests whose credentials failed VerifySignature.
type Calls struct {
	Ping         int `json:"ping"`
	Check        int `json:"check"`
	Preauth      int `json:"preauth"`
	Auth         int `json:"auth"`
	AuthStatus   int `json:"auth_status"`
	BadSignature int `json:"bad_signature"`
}

// Request is what the simulator remembers of a request. Passcodes and the
// Authorization header are never stored.
type Request struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	// Proto is the protocol the request came over: "HTTP/2.0" or "HTTP/1.1".
	Proto string `json:"proto"`
	Path  string `json:"path"`
	// Username is the username parameter, or user_id when no username was sent.
	Username string `json:"username,omitempty"`
	Factor   string `json:"factor,omitempty"`
	IPAddr   string `json:"ipaddr,omitempty"`
	// Pushinfo is the pushinfo parameter as sent (form-encoded key=value
	// pairs the user's device shows with the push).
	Pushinfo string `json:"pushinfo,omitempty"`
	// SignatureOK is false for bad credentials and for the unsigned ping.
	SignatureOK bool `json:"signature_ok"`
	// Fault is the fault in effect when the request arrived.
	Fault Fault `json:"fault,omitempty"`
}

const maxRequests = 256

// Sim is a running simulator. Create it with New and stop it with Close.
type Sim struct {
	log        *slog.Logger
	ikey, skey string
	listenAddr string // resolved address, reused when "refuse" is cleared
	apiHost    string
	good, bad  *authority
	srv        *http.Server
	tlsConfig  *tls.Config

	ctlMu sync.Mutex // serializes listener changes: SetFault and Close

	mu        sync.Mutex
	closed    bool
	closing   chan struct{} // closed by Close
	ln        net.Listener  // nil while refusing or closed
	fault     Fault
	release   chan struct{} // closed (and replaced) whenever the fault changes
	held      int
	active    int
	slowDelay time.Duration
	pushDelay time.Duration
	// offset is Options.ClockOffset: now() is the simulator's clock.
	offset time.Duration
	users  []User
	byName map[string]User
	byID   map[string]User
	conns  map[*trackedConn]struct{}
	// accepted counts the connections ever accepted (Connections).
	accepted int
	calls    Calls
	reqs     []Request // ring buffer
	reqNext  int
	txns     map[string]*txn

	serveWG   sync.WaitGroup
	handlerWG sync.WaitGroup
}

// New generates an in-memory CA and leaf certificate, starts listening and
// serves the Auth API over HTTPS until Close.
func New(opts Options) (*Sim, error) {
	if err := ValidateUsers(opts.Users); err != nil {
		return nil, fmt.Errorf("duosim: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		log:       log,
		ikey:      opts.IntegrationKey,
		skey:      opts.SecretKey,
		closing:   make(chan struct{}),
		release:   make(chan struct{}),
		slowDelay: opts.SlowDelay,
		pushDelay: opts.PushDelay,
		offset:    opts.ClockOffset,
		conns:     make(map[*trackedConn]struct{}),
		txns:      make(map[string]*txn),
	}
	var err error
	if s.ikey == "" {
		if s.ikey, err = randomKey("DI", 18); err != nil {
			return nil, err
		}
	}
	if s.skey == "" {
		if s.skey, err = randomKey("", 40); err != nil {
			return nil, err
		}
	}
	s.setUsers(opts.Users)
	if s.good, err = newAuthority("trusted", opts.Hostnames); err != nil {
		return nil, fmt.Errorf("duosim: certificate: %w", err)
	}
	if s.bad, err = newAuthority("UNTRUSTED", opts.Hostnames); err != nil {
		return nil, fmt.Errorf("duosim: certificate: %w", err)
	}
	protos := []string{"h2", "http/1.1"}
	if opts.HTTP1Only {
		protos = []string{"http/1.1"}
	}
	s.tlsConfig = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: s.getCertificate,
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveAPI),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: opts.MaxConcurrentStreams},
	}

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("duosim: listen: %w", err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	s.listenAddr = ln.Addr().String()
	s.apiHost = s.listenAddr
	if tcp.IP.IsUnspecified() {
		s.apiHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	s.mu.Lock()
	s.serveLocked(ln)
	s.mu.Unlock()
	log.Warn("duosim: Duo Auth API v2 SIMULATOR started; this is NOT Duo and must never be used in production",
		"api_host", s.apiHost, "listen", s.listenAddr, "integration_key", s.ikey, "users", len(opts.Users))
	return s, nil
}

func randomKey(prefix string, n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b), nil
}

// serveLocked starts serving ln. s.mu must be held.
func (s *Sim) serveLocked(ln net.Listener) {
	s.ln = ln
	tl := tls.NewListener(&trackingListener{Listener: ln, s: s}, s.tlsConfig)
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.srv.Serve(tl) // returns when ln is closed (refuse) or on Close
	}()
}

func (s *Sim) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f == FaultBadCert {
		return &s.bad.leaf, nil
	}
	return &s.good.leaf, nil
}

// APIHost is "127.0.0.1:PORT" (or the host:port listened on), exactly what
// to give a Duo client as its API host. It does not change when FaultRefuse
// is set and cleared.
func (s *Sim) APIHost() string { return s.apiHost }

// CAPEM is the PEM certificate of the CA that signed the good leaf. Trust it
// (and only it) in the client; FaultBadCert uses another CA.
func (s *Sim) CAPEM() []byte { return append([]byte(nil), s.good.caPEM...) }

// IntegrationKey is the ikey requests must carry (generated if not given).
func (s *Sim) IntegrationKey() string { return s.ikey }

// SecretKey is the skey requests must be signed with (generated if not given).
func (s *Sim) SecretKey() string { return s.skey }

// Fault is the fault in effect.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// SetFault switches the simulator into f (FaultNone clears). Setting
// FaultRefuse closes the listener and every open connection; leaving it
// listens again on the same port (an error if the port was taken meanwhile,
// and the simulator stays in FaultRefuse). Setting FaultBadCert closes open
// connections so the next request needs a handshake. Any change releases the
// requests held by FaultHang, FaultAuthHang or FaultCheckHang with a 503
// FAIL 50301.
func (s *Sim) SetFault(f Fault) error {
	if !f.Valid() {
		return unknownFault(string(f))
	}
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	old := s.fault
	if old == f {
		s.mu.Unlock()
		return nil
	}
	if old == FaultRefuse {
		ln, err := net.Listen("tcp", s.listenAddr)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("duosim: listen again on %s: %w", s.listenAddr, err)
		}
		s.serveLocked(ln)
	}
	s.fault = f
	close(s.release)
	s.release = make(chan struct{})
	var conns []*trackedConn
	if f == FaultRefuse {
		_ = s.ln.Close()
		s.ln = nil
	}
	if f == FaultRefuse || f == FaultBadCert {
		conns = s.connsLocked()
	}
	s.mu.Unlock()

	for _, c := range conns {
		_ = c.Close()
	}
	s.log.Info("duosim: fault changed", "from", string(old), "to", string(f))
	return nil
}

// SetSlow sets the FaultSlow delay (d <= 0 restores DefaultSlowDelay). It
// does not set the fault.
func (s *Sim) SetSlow(d time.Duration) {
	s.mu.Lock()
	s.slowDelay = d
	s.mu.Unlock()
}

// SetPushDelay changes Options.PushDelay for the pushes and calls that start
// afterwards.
func (s *Sim) SetPushDelay(d time.Duration) {
	s.mu.Lock()
	s.pushDelay = d
	s.mu.Unlock()
}

// Held is the number of requests currently held by FaultHang,
// FaultAuthHang or FaultCheckHang, so tests can wait for a request to be
// stuck.
func (s *Sim) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// SetUsers replaces the user list. Users that ValidateUsers would reject
// (empty name, unknown behavior, a name already seen) are skipped with an
// error log, so they behave as unknown users (preauth "enroll").
func (s *Sim) SetUsers(users []User) {
	s.setUsers(users)
}

func (s *Sim) setUsers(users []User) {
	list := make([]User, 0, len(users))
	byName := make(map[string]User, len(users))
	byID := make(map[string]User, len(users))
	for i, u := range users {
		key := strings.ToLower(u.Name)
		if err := ValidateUsers([]User{u}); err != nil {
			s.log.Error("duosim: user skipped", "index", i, "err", err)
			continue
		}
		if _, dup := byName[key]; dup {
			s.log.Error("duosim: user skipped: duplicate name", "index", i, "name", u.Name)
			continue
		}
		u.Behavior = u.Behavior.orDefault()
		u.Passcodes = append([]string(nil), u.Passcodes...)
		list = append(list, u)
		byName[key] = u
		byID[userID(u.Name)] = u
	}
	s.mu.Lock()
	s.users, s.byName, s.byID = list, byName, byID
	s.mu.Unlock()
}

// Users returns a copy of the user list (behaviors defaulted).
func (s *Sim) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, len(s.users))
	for i, u := range s.users {
		u.Passcodes = append([]string(nil), u.Passcodes...)
		out[i] = u
	}
	return out
}

// Calls returns the counters since start or the last ResetCalls.
func (s *Sim) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// ResetCalls zeroes the counters and forgets the recorded requests.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = Calls{}
	s.reqs = nil
	s.reqNext = 0
}

// Requests returns the most recent requests (up to 256), oldest first.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) < maxRequests {
		return append([]Request(nil), s.reqs...)
	}
	out := make([]Request, 0, maxRequests)
	out = append(out, s.reqs[s.reqNext:]...)
	return append(out, s.reqs[:s.reqNext]...)
}

func (s *Sim) recordLocked(r Request) {
	if len(s.reqs) < maxRequests {
		s.reqs = append(s.reqs, r)
		return
	}
	s.reqs[s.reqNext] = r
	s.reqNext = (s.reqNext + 1) % maxRequests
}

// Close stops listening, drops every connection, releases held requests and
// waits for every goroutine the simulator started. It is idempotent.
func (s *Sim) Close() error {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	ln := s.ln
	s.ln = nil
	conns := s.connsLocked()
	s.mu.Unlock()

	err := s.srv.Close() // closes the listener it serves and its connections
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if ln != nil {
		_ = ln.Close() // in case Serve had not registered it yet
	}
	for _, c := range conns {
		_ = c.Close()
	}
	s.serveWG.Wait()
	s.handlerWG.Wait()
	s.log.Info("duosim: simulator closed", "api_host", s.apiHost)
	return err
}

func (s *Sim) connsLocked() []*trackedConn {
	out := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// trackingListener records raw TCP connections so that refuse, bad_cert and
// Close can drop them, keep-alive ones included.
type trackingListener struct {
	net.Listener
	s *Sim
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	dead := l.s.closed || l.s.fault == FaultRefuse
	if !dead {
		l.s.conns[tc] = struct{}{}
		l.s.accepted++
	}
	l.s.mu.Unlock()
	if dead {
		_ = c.Close()
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *Sim
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// now is the simulator's clock: the machine's, moved by Options.ClockOffset.
func (s *Sim) now() time.Time { return time.Now().Add(s.offset) }
