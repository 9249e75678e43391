// Package admin serves ldapgate's run-time control socket: a unix socket, mode
// 0600, that only root or the process's own user may use. It is the only way
// to change state at run time.
//
// The protocol is one JSON Request per line, answered by one JSON Response
// per line, several per connection if the client likes:
//
//	{"op":"primary-only.enable","servers":["ldap"],"for":"30m"}
//	{"ok":true,"primary_only":[{"server":"ldap","failmode":"safe","until":"2026-03-01T12:30:00Z"}]}
//
// Call is the client side.
package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/health"
	"github.com/ldapgate/ldapgate/internal/human"
	"github.com/ldapgate/ldapgate/primaryonly"
)

// Ops understood by the server.
const (
	OpEnable  = "primary-only.enable"
	OpDisable = "primary-only.disable"
	OpStatus  = "primary-only.status"
)

const (
	// MaxRequestSize is the longest request line the server reads.
	MaxRequestSize = 64 << 10
	// IdleTimeout is how long the server waits for each request line.
	IdleTimeout = 10 * time.Second
	// writeTimeout bounds writing one response to a client that does not read.
	writeTimeout = 10 * time.Second
)

// Request is one command.
type Request struct {
	// Op is "primary-only.enable", "primary-only.disable", "primary-only.status"
	// or "status" (status.go).
	Op string `json:"op"`
	// Servers names server sections; empty means every safe section (enable)
	// or every section (disable, status).
	Servers []string `json:"servers,omitempty"`
	// For is a Go duration ("30m", "2h") for enable only; empty means
	// primaryonly.DefaultDuration.
	For string `json:"for,omitempty"`
}

// Response answers one Request. On failure OK is false and Error says why.
type Response struct {
	OK          bool                `json:"ok"`
	Error       string              `json:"error,omitempty"`
	PrimaryOnly []primaryonly.Entry `json:"primary_only,omitempty"`
	// Status answers OpProgramStatus (status.go).
	Status *health.Status `json:"status,omitempty"`
	// Reload answers OpReload: what changed, or the problems that kept
	// the running configuration.
	Reload *ReloadResult `json:"reload,omitempty"`
}

// Server serves the admin socket. Create it with NewServer.
type Server struct {
	path string
	sw   *primaryonly.Switch
	log  *slog.Logger
	// allowed reports whether a peer uid may use the socket; replaced in tests.
	allowed func(uid uint32) bool
	// statusFn answers OpProgramStatus; nil refuses it (WithStatus).
	statusFn StatusFunc
	// reloader serves OpReload; nil: the op is refused (see WithReloader).
	reloader Reloader
}

// NewServer returns a server for the socket at path that controls sw. log may
// be nil (logs are discarded).
func NewServer(path string, sw *primaryonly.Switch, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self := uint32(os.Getuid())
	return &Server{
		path:    path,
		sw:      sw,
		log:     log.With("admin_socket", path),
		allowed: func(uid uint32) bool { return uid == 0 || uid == self },
	}
}

// Serve listens on the socket and answers requests until ctx is done, then
// closes open connections, removes the socket file and returns nil.
//
// Before listening it creates the parent directory if missing (0750) and
// removes a stale socket left by an unclean exit; it refuses to remove a
// socket something still answers on, or anything that is not a socket. The
// socket appears at its path already mode 0600 (see listen). Each connection
// is checked with SO_PEERCRED: only uid 0 and the process's own uid are
// served. An error is returned only if the socket cannot be set up.
func (s *Server) Serve(ctx context.Context) error {
	ln, ours, err := listen(s.path)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", s.path, err)
	}
	s.log.Info("admin socket listening")
	stopClose := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopClose()

	var wg sync.WaitGroup
	backoff := time.Duration(0)
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				break // cannot happen unless ctx is done; do not spin
			}
			// Out of descriptors and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("admin socket accept failed", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		wg.Go(func() { s.serveConn(ctx, c) })
	}
	ln.Close()
	wg.Wait()
	if err := removeIfOurs(s.path, ours); err != nil {
		s.log.Warn("admin socket not removed", "err", err)
	}
	s.log.Info("admin socket closed")
	return nil
}

// peer is who is on the other end of a connection.
type peer struct {
	uid uint32
	pid int32
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	uid, pid, err := peerCred(c)
	if err != nil || !s.allowed(uid) {
		s.log.Warn("admin socket refused a peer", "peer_uid", uid, "peer_pid", pid, "err", err)
		who := "root"
		if self := os.Getuid(); self != 0 {
			who = fmt.Sprintf("root or uid %d", self)
		}
		s.write(c, Response{Error: "permission denied: only " + who + " may use this socket"})
		return
	}
	p := peer{uid: uid, pid: pid}

	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), MaxRequestSize)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		if !sc.Scan() {
			switch err := sc.Err(); {
			case errors.Is(err, bufio.ErrTooLong):
				s.log.Warn("admin socket request too large", "peer_uid", p.uid, "peer_pid", p.pid)
				s.write(c, Response{Error: fmt.Sprintf("request exceeds %d bytes", MaxRequestSize)})
			case err != nil && ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded):
				s.log.Debug("admin socket read failed", "peer_uid", p.uid, "err", err)
			}
			return
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !s.write(c, s.handle(ctx, line, p)) {
			return
		}
	}
}

func (s *Server) write(c net.Conn, resp Response) bool {
	b, err := json.Marshal(resp)
	if err != nil { // cannot happen with these types
		b = []byte(`{"ok":false,"error":"internal error encoding the response"}`)
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

// handle decodes and executes one request line.
func (s *Server) handle(ctx context.Context, line []byte, p peer) Response {
	var req Request
	if err := decodeStrict(line, &req); err != nil {
		s.log.Warn("admin socket bad request", "peer_uid", p.uid, "peer_pid", p.pid, "err", err)
		return fail(fmt.Errorf("bad request: %w", err))
	}
	switch req.Op {
	case OpProgramStatus:
		return s.programStatus(req)
	case OpStatus:
		if req.For != "" {
			return fail(errors.New(`"for" applies only to ` + OpEnable))
		}
		return s.status(req.Servers)
	case OpEnable:
		d := primaryonly.DefaultDuration
		if req.For != "" {
			var err error
			if d, err = time.ParseDuration(req.For); err != nil {
				s.logChange(req, p, 0, err)
				return fail(fmt.Errorf("bad duration %q: want e.g. 30m or 2h", req.For))
			}
		}
		entries, err := s.sw.Enable(req.Servers, d)
		s.logChange(req, p, d, err)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, PrimaryOnly: entries}
	case OpDisable:
		if req.For != "" {
			err := errors.New(`"for" applies only to ` + OpEnable)
			s.logChange(req, p, 0, err)
			return fail(err)
		}
		entries, err := s.sw.Disable(req.Servers)
		s.logChange(req, p, 0, err)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, PrimaryOnly: entries}
	case OpReload:
		return s.reload(ctx, req, p)
	}
	s.log.Warn("admin socket unknown op", "op", req.Op, "peer_uid", p.uid, "peer_pid", p.pid)
	return fail(fmt.Errorf("unknown op %q: want %s, %s, %s, %s or %s", req.Op, OpEnable, OpDisable, OpStatus, OpProgramStatus, OpReload))
}

func (s *Server) status(servers []string) Response {
	all := s.sw.Status()
	if len(servers) == 0 {
		return Response{OK: true, PrimaryOnly: all}
	}
	var out []primaryonly.Entry
	var unknown []string
	for _, name := range slices.Compact(slices.Sorted(slices.Values(servers))) {
		i := slices.IndexFunc(all, func(e primaryonly.Entry) bool { return e.Server == name })
		if i < 0 {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		out = append(out, all[i])
	}
	if len(unknown) > 0 {
		return fail(fmt.Errorf("unknown section %s", strings.Join(unknown, ", ")))
	}
	return Response{OK: true, PrimaryOnly: out}
}

// logChange records a state-changing request, whether it succeeded or not.
func (s *Server) logChange(req Request, p peer, d time.Duration, err error) {
	servers := "all"
	if len(req.Servers) > 0 {
		servers = strings.Join(req.Servers, ",")
	}
	attrs := []any{"op", req.Op, "servers", servers, "peer_uid", p.uid, "peer_pid", p.pid}
	if req.Op == OpEnable && d > 0 {
		attrs = append(attrs, "for", human.Duration(d))
	}
	if err != nil {
		s.log.Warn("admin request refused", append(attrs, "err", err)...)
		return
	}
	s.log.Info("admin request applied", attrs...)
}

func fail(err error) Response { return Response{Error: err.Error()} }

// decodeStrict decodes exactly one JSON object with no unknown fields, so a
// misspelt "sever" is an error rather than "every section".
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
