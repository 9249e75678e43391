// Package health serves /healthz, /readyz, /status and /metrics. Liveness is
// not readiness: /healthz answers while the process serves; /readyz answers
// 200 only when every section can authenticate correctly right now.
//
//   - GET /healthz: 200 "ok" while the process serves HTTP. Restart the
//     process only when this fails.
//   - GET /readyz: 200 when every server section is ready (see Ready), else
//     503; the JSON body says which section is not and why:
//     {"ready":false,"sections":[{"name":"corp","ready":false,"reason":"duo unreachable: check: connection refused","duo_state":"unreachable","directory_up":true}]}.
//     Load balancers should take a not-ready instance out of rotation; a
//     not-ready instance keeps answering binds by its failmode.
//     GET /readyz?server=NAME answers the same for that section alone (a
//     load balancer with one backend per section's port); an unknown NAME
//     is 404.
//   - GET /status: JSON for operators: version, uptime and every section's
//     Section (Duo state and its latest error, primary-only mode,
//     directory and each of its URLs, connections, bind counts by outcome).
//   - GET /metrics: the Prometheus handler given to New.
//
// Other methods get 405, other paths 404. The listener carries no secret, DN
// or username, but /status names the Duo integration keys and directories:
// bind it to loopback or a management network.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/duostate"
)

// Section is the live view of one server section, built by the wiring.
type Section struct {
	Name             string         `json:"name"`
	Failmode         string         `json:"failmode"`
	DuoIntegration   string         `json:"duo_integration"`
	DuoState         duostate.State `json:"duo_state"`
	DuoSince         time.Time      `json:"duo_since"`
	DuoLastError     string         `json:"duo_last_error,omitempty"`
	PrimaryOnlyUntil *time.Time     `json:"primary_only_until,omitempty"`
	Directory        string         `json:"directory"`
	DirectoryUp      bool           `json:"directory_up"`
	// DirectoryProblem says why DirectoryUp is false.
	DirectoryProblem string `json:"directory_problem,omitempty"`
	// DirectoryURLs is each URL of the directory with its own state:
	// DirectoryUp stays true while one of them serves.
	DirectoryURLs []DirectoryURL `json:"directory_urls"`
	// SecureGroups says why secure-group membership cannot be established
	// ("" when it can): every user then counts as privileged.
	SecureGroups string            `json:"secure_groups_problem,omitempty"`
	Listening    bool              `json:"listening"`
	Connections  int64             `json:"connections"`
	Binds        map[string]uint64 `json:"binds"`
	// StateStore is the shared state store's condition ("" with the
	// embedded one): "redis ok", or why it cannot be used. It does not
	// change readiness: without it the instance decides safely alone
	// (README "Running a fleet").
	StateStore string `json:"state_store,omitempty"`
}

// Source returns the current view of every section. It is called on every
// /readyz and /status request, so it must be cheap and must not block on the
// network.
type Source func() []Section

// Ready reports whether sec can authenticate correctly right now: its
// listener is up, its directory answers and its Duo integration is ok or
// degraded (degraded still asks Duo; failmode is not in play), and its
// secure groups can be read. Otherwise the
// reason says what is wrong, several causes joined by "; ":
// "duo unreachable: check: connection refused", "directory corp unreachable".
func Ready(sec Section) (bool, string) {
	var why []string
	if !sec.Listening {
		why = append(why, "not listening")
	}
	if !sec.DirectoryUp {
		problem := sec.DirectoryProblem
		if problem == "" {
			problem = "unreachable"
		}
		why = append(why, fmt.Sprintf("directory %s %s", sec.Directory, problem))
	}
	if sec.SecureGroups != "" {
		why = append(why, "secure groups: "+sec.SecureGroups)
	}
	switch {
	case sec.DuoState.Serving():
	case sec.DuoState == "":
		why = append(why, "duo state unknown")
	default:
		r := "duo " + string(sec.DuoState)
		if sec.DuoLastError != "" {
			r += ": " + sec.DuoLastError
		}
		why = append(why, r)
	}
	if len(why) > 0 {
		return false, strings.Join(why, "; ")
	}
	return true, ""
}

// Timeouts of the health listener. Probes and scrapes are small: a client
// that cannot send its headers in ReadHeaderTimeout is cut off.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 60 * time.Second
	ShutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Server is the health listener.
type Server struct {
	addr    string
	version string
	started time.Time
	src     Source
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler

	// LameDuck, when positive, is how long ListenAndServe keeps serving
	// after ctx is done, with /readyz answering 503 "shutting down", so
	// load balancers stop sending clients before the LDAP listeners close.
	// Set it before ListenAndServe.
	LameDuck time.Duration

	mu        sync.Mutex
	ln        net.Listener
	listening chan struct{}
	// drain is closed when the lame-duck period starts; cutDrain ends it
	// early (tests).
	drain, cutDrain chan struct{}
}

// New returns a Server for addr (host:port; port 0 picks one). src gives the
// sections; metricsHandler, when non-nil, is served at /metrics; log may be
// nil.
func New(addr string, version string, started time.Time, src Source, metricsHandler http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if src == nil {
		src = func() []Section { return nil }
	}
	s := &Server{addr: addr, version: version, started: started, src: src, log: log, now: time.Now,
		listening: make(chan struct{}), drain: make(chan struct{}), cutDrain: make(chan struct{})}
	mux := http.NewServeMux()
	// "GET" patterns also match HEAD; the mux answers 405 with an Allow
	// header for other methods and 404 for unknown paths.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /status", s.status)
	if metricsHandler != nil {
		mux.Handle("GET /metrics", metricsHandler)
	}
	s.handler = mux
	return s
}

// Handler returns the routes, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Listening is closed once ListenAndServe has bound its address.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// Addr is the bound address, nil before Listening is closed.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ListenAndServe serves until ctx is done, then (after LameDuck) shuts down
// gracefully within ShutdownTimeout. It returns nil after a shutdown, or
// the error that stopped it from listening or serving.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("health: listen: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	close(s.listening)

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("health listener up", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("health: serve: %w", err)
	case <-ctx.Done():
	}
	if s.LameDuck > 0 {
		close(s.drain)
		s.log.Info("health listener draining", "lame_duck", s.LameDuck.String())
		t := time.NewTimer(s.LameDuck)
		select {
		case <-t.C:
		case <-s.cutDrain:
			t.Stop()
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("health: serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		return fmt.Errorf("health: serve: %w", serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("health: shutdown: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// ReadyStatus is the body of /readyz.
type ReadyStatus struct {
	Ready    bool           `json:"ready"`
	Reason   string         `json:"reason,omitempty"`
	Sections []SectionReady `json:"sections"`
}

// SectionReady is one section's readiness in /readyz.
type SectionReady struct {
	Name        string         `json:"name"`
	Ready       bool           `json:"ready"`
	Reason      string         `json:"reason"`
	DuoState    duostate.State `json:"duo_state"`
	DirectoryUp bool           `json:"directory_up"`
	// StateStore is Section.StateStore.
	StateStore string `json:"state_store,omitempty"`
}

// Readiness computes the /readyz answer from sections. With no sections the
// answer is not ready: nothing can authenticate.
func Readiness(sections []Section) ReadyStatus {
	rs := ReadyStatus{Ready: len(sections) > 0, Sections: make([]SectionReady, 0, len(sections))}
	if len(sections) == 0 {
		rs.Reason = "no server sections"
	}
	for _, sec := range sections {
		ok, why := Ready(sec)
		rs.Ready = rs.Ready && ok
		rs.Sections = append(rs.Sections, SectionReady{
			Name: sec.Name, Ready: ok, Reason: why, DuoState: sec.DuoState, DirectoryUp: sec.DirectoryUp,
			StateStore: sec.StateStore,
		})
	}
	return rs
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	secs, err := pick(s.src(), r.URL.Query()["server"])
	if err != nil {
		writeJSON(w, http.StatusNotFound, ReadyStatus{Reason: err.Error(), Sections: []SectionReady{}})
		return
	}
	rs := Readiness(secs)
	select {
	case <-s.drain:
		rs.Ready, rs.Reason = false, "shutting down"
	default:
	}
	code := http.StatusOK
	if !rs.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rs)
}

// Status is the body of /status.
type Status struct {
	Version       string    `json:"version"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Started       time.Time `json:"started"`
	Sections      []Section `json:"sections"`
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, NewStatus(s.version, s.started, s.now(), s.src()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
