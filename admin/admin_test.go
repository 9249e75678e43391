package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/primaryonly"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var sections = map[string]failmode.Mode{"ldap": failmode.Safe, "mail": failmode.Safe, "vpn": failmode.Secure}

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type harness struct {
	path string
	sw   *primaryonly.Switch
	srv  *Server
	log  *logBuf
	stop context.CancelFunc
	done chan error
}

// newHarness builds a server on a fresh socket path with a switch on a
// frozen clock; start runs it.
func newHarness(t *testing.T, path string) *harness {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "admin.sock")
	}
	sw := primaryonly.New(sections, func() time.Time { return t0 }, nil)
	lb := &logBuf{}
	return &harness{path: path, sw: sw, log: lb, srv: NewServer(path, sw, slog.New(slog.NewJSONHandler(lb, nil)))}
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.srv.Serve(ctx) }()
	t.Cleanup(func() { h.shutdown(t) })
	// The socket answers once Serve is listening; keep asking until it does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := Call(context.Background(), h.path, Request{Op: OpStatus})
		if err == nil {
			return
		}
		select {
		case err := <-h.done:
			t.Fatalf("Serve returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin socket not ready: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// shutdown cancels Serve and waits for it; safe to call twice.
func (h *harness) shutdown(t *testing.T) error {
	t.Helper()
	if h.stop == nil {
		return nil
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of cancel")
		return nil
	}
}

func call(t *testing.T, path string, req Request) (Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Call(ctx, path, req)
}

func TestSocketMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "ldapgate") // missing: Serve creates it
	h := newHarness(t, filepath.Join(dir, "admin.sock"))
	h.start(t)

	fi, err := os.Lstat(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := di.Mode().Perm(); p&^0o750 != 0 {
		t.Errorf("created parent dir mode = %v, want at most 0750", p)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "admin.sock" {
		t.Errorf("parent holds %v, want only admin.sock (temp dir left behind?)", ents)
	}
}

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)

	steps := []struct {
		name    string
		req     Request
		wantErr string // server's error text; "" = OK
		wantOn  map[string]time.Duration
		wantN   int // entries in the response
	}{
		{name: "status all off", req: Request{Op: OpStatus}, wantN: 3, wantOn: map[string]time.Duration{}},
		{name: "enable one for 30m", req: Request{Op: OpEnable, Servers: []string{"ldap"}, For: "30m"}, wantN: 1,
			wantOn: map[string]time.Duration{"ldap": 30 * time.Minute}},
		{name: "status filtered", req: Request{Op: OpStatus, Servers: []string{"ldap"}}, wantN: 1,
			wantOn: map[string]time.Duration{"ldap": 30 * time.Minute}},
		{name: "status unknown section", req: Request{Op: OpStatus, Servers: []string{"nope"}}, wantErr: `unknown section "nope"`},
		{name: "secure refused", req: Request{Op: OpEnable, Servers: []string{"vpn"}},
			wantErr: "section vpn is failmode secure; primary-only mode applies only to safe sections"},
		{name: "over 4h refused", req: Request{Op: OpEnable, For: "5h"}, wantErr: "refused: 5h exceeds the 4h maximum"},
		{name: "bad duration", req: Request{Op: OpEnable, For: "soon"}, wantErr: `bad duration "soon": want e.g. 30m or 2h`},
		{name: "for on disable", req: Request{Op: OpDisable, For: "1h"}, wantErr: `"for" applies only to primary-only.enable`},
		{name: "enable default scope and duration", req: Request{Op: OpEnable}, wantN: 2,
			wantOn: map[string]time.Duration{"ldap": time.Hour, "mail": time.Hour}},
		{name: "disable one", req: Request{Op: OpDisable, Servers: []string{"mail"}}, wantN: 1, wantOn: map[string]time.Duration{}},
		{name: "status after", req: Request{Op: OpStatus}, wantN: 3, wantOn: map[string]time.Duration{"ldap": time.Hour}},
		{name: "disable all", req: Request{Op: OpDisable}, wantN: 3, wantOn: map[string]time.Duration{}},
	}
	for _, st := range steps {
		resp, err := call(t, h.path, st.req)
		if st.wantErr != "" {
			if !errors.Is(err, ErrRefused) || resp.OK || resp.Error != st.wantErr {
				t.Errorf("%s: resp = %+v, err = %v; want refusal %q", st.name, resp, err, st.wantErr)
			}
			continue
		}
		if err != nil || !resp.OK {
			t.Errorf("%s: resp = %+v, err = %v", st.name, resp, err)
			continue
		}
		if len(resp.PrimaryOnly) != st.wantN {
			t.Errorf("%s: %d entries, want %d: %+v", st.name, len(resp.PrimaryOnly), st.wantN, resp.PrimaryOnly)
		}
		for _, e := range resp.PrimaryOnly {
			want, on := st.wantOn[e.Server]
			switch {
			case on && !e.Until.Equal(t0.Add(want)):
				t.Errorf("%s: %s until %v, want %v", st.name, e.Server, e.Until, t0.Add(want))
			case !on && !e.Until.IsZero():
				t.Errorf("%s: %s on until %v, want off", st.name, e.Server, e.Until)
			}
		}
	}

	recs := h.log.records(t)
	for _, want := range []map[string]any{
		{"msg": "admin request applied", "op": OpEnable, "servers": "ldap", "for": "30m", "peer_uid": float64(os.Getuid())},
		{"msg": "admin request refused", "op": OpEnable, "servers": "vpn", "level": "WARN"},
		{"msg": "admin request refused", "op": OpEnable, "servers": "all", "for": "5h"},
		{"msg": "admin request applied", "op": OpEnable, "servers": "all", "for": "1h"},
		{"msg": "admin request applied", "op": OpDisable, "servers": "mail"},
		{"msg": "admin request applied", "op": OpDisable, "servers": "all"},
	} {
		if !hasRecord(recs, want) {
			t.Errorf("no log record with %v\n%s", want, h.log.String())
		}
	}
	if hasRecord(recs, map[string]any{"op": OpStatus}) {
		t.Errorf("status requests should not be logged as changes:\n%s", h.log.String())
	}
}

// records parses the JSON log lines.
func (l *logBuf) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func hasRecord(recs []map[string]any, want map[string]any) bool {
	for _, r := range recs {
		match := true
		for k, v := range want {
			if r[k] != v {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// rawConn talks the line protocol directly.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{c, bufio.NewReader(c)}
}

func (c *rawConn) roundTrip(t *testing.T, line string) Response {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	return c.read(t)
}

func (c *rawConn) read(t *testing.T) Response {
	t.Helper()
	b, err := c.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	return resp
}

func TestBadRequestsKeepServing(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)
	c := dial(t, h.path)
	for _, tc := range []struct{ line, wantPrefix string }{
		{"not json", "bad request: "},
		{`{"op":"primary-only.status"} {"op":"x"}`, "bad request: trailing data"},
		{`{"op":"primary-only.enable","sever":["ldap"]}`, `bad request: json: unknown field "sever"`},
		{`{"op":"primary-only.nuke"}`, `unknown op "primary-only.nuke": want primary-only.enable, primary-only.disable, primary-only.status, status or reload`},
		{`{}`, `unknown op ""`},
	} {
		resp := c.roundTrip(t, tc.line)
		if resp.OK || !strings.HasPrefix(resp.Error, tc.wantPrefix) {
			t.Errorf("%s: resp = %+v, want error %q…", tc.line, resp, tc.wantPrefix)
		}
	}
	// Blank lines are skipped; the same connection still works.
	if _, err := c.Write([]byte("\n  \n")); err != nil {
		t.Fatal(err)
	}
	if resp := c.roundTrip(t, `{"op":"primary-only.status"}`); !resp.OK || len(resp.PrimaryOnly) != 3 {
		t.Errorf("status after bad requests = %+v", resp)
	}
	if h.sw.Active("ldap") {
		t.Error("a bad request changed state")
	}
}

func TestOversizeRequestRefused(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)
	c := dial(t, h.path)
	go c.Write(bytes.Repeat([]byte("a"), MaxRequestSize+1024)) // the server may close before all is written
	resp := c.read(t)
	if resp.OK || resp.Error != "request exceeds 65536 bytes" {
		t.Errorf("resp = %+v", resp)
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("connection still open after an oversize request")
	}
	if _, err := call(t, h.path, Request{Op: OpStatus}); err != nil {
		t.Errorf("server stopped serving: %v", err)
	}
	// Call refuses to send one at all.
	_, err := call(t, h.path, Request{Op: OpEnable, Servers: []string{strings.Repeat("x", MaxRequestSize)}})
	if err == nil || !strings.Contains(err.Error(), "at most 65536") {
		t.Errorf("Call with an oversize request: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	h := newHarness(t, "")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: h.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nothing listens: what a crash leaves
	if _, err := call(t, h.path, Request{Op: OpStatus}); err == nil || !strings.Contains(err.Error(), "is ldapgate running?") {
		t.Fatalf("Call on a stale socket: %v", err)
	}
	h.start(t)
	if fi, err := os.Lstat(h.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replacement socket: %v, %v", fi, err)
	}
}

func TestLiveSocketNotStolen(t *testing.T) {
	first := newHarness(t, "")
	first.start(t)
	second := newHarness(t, first.path)
	err := second.srv.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is another ldapgate running?") {
		t.Fatalf("second Serve: %v", err)
	}
	if _, err := call(t, first.path, Request{Op: OpStatus}); err != nil {
		t.Errorf("first server lost its socket: %v", err)
	}
}

func TestNonSocketRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, kind string
		make       func(path string) error
	}{
		{"regular file", "regular file", func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o644) }},
		{"directory", "directory", func(p string) error { return os.Mkdir(p, 0o755) }},
		{"symlink", "symbolic link", func(p string) error { return os.Symlink(filepath.Join(dir, "elsewhere"), p) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := tc.make(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(path)
			h := newHarness(t, path)
			err := h.srv.Serve(context.Background())
			want := "refusing to replace " + path + ": it is a " + tc.kind + ", not a socket"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Serve: %v, want %q", err, want)
			}
			after, err := os.Lstat(path)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("%s was touched: %v", path, err)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "regular-file")); string(b) != "keep me" {
		t.Errorf("regular file content = %q", b)
	}
}

func TestShutdownRemovesSocket(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)
	// An idle client must not hold shutdown up for the read deadline.
	idle := dial(t, h.path)
	start := time.Now()
	if err := h.shutdown(t); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if d := time.Since(start); d > IdleTimeout/2 {
		t.Errorf("shutdown took %v", d)
	}
	if _, err := os.Lstat(h.path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	if _, err := idle.r.ReadByte(); err == nil {
		t.Error("idle connection still open after shutdown")
	}
	if !strings.Contains(h.log.String(), "admin socket closed") {
		t.Errorf("no shutdown log:\n%s", h.log.String())
	}
}

func TestShutdownLeavesAForeignFile(t *testing.T) {
	h := newHarness(t, "")
	h.start(t)
	// Someone replaced our socket (e.g. a second instance after ours was
	// deleted by hand); shutdown must not delete theirs.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(h.path); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
}

func TestCallMissingSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.sock")
	_, err := call(t, path, Request{Op: OpStatus})
	want := "is ldapgate running? admin.socket is " + path
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
}

func TestCallHonoursDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := Call(ctx, path, Request{Op: OpStatus})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Call took %v", d)
			}
		})
	}
}

func TestPeerCredentials(t *testing.T) {
	h := newHarness(t, "")
	var mu sync.Mutex
	var seen []uint32
	refuse := false
	check := h.srv.allowed
	h.srv.allowed = func(uid uint32) bool {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, uid)
		return !refuse && check(uid)
	}
	h.start(t)
	mu.Lock()
	if len(seen) == 0 || seen[0] != uint32(os.Getuid()) {
		t.Errorf("peer uids seen = %v, want %d", seen, os.Getuid())
	}
	refuse = true
	mu.Unlock()

	resp, err := call(t, h.path, Request{Op: OpEnable})
	if !errors.Is(err, ErrRefused) || !strings.HasPrefix(resp.Error, "permission denied: only root") {
		t.Errorf("refused peer: resp = %+v, err = %v", resp, err)
	}
	if h.sw.Active("ldap") {
		t.Error("a refused peer changed state")
	}
	if !strings.Contains(h.log.String(), "admin socket refused a peer") {
		t.Errorf("refusal not logged:\n%s", h.log.String())
	}
}

func TestDefaultPeerPolicy(t *testing.T) {
	s := NewServer("x", nil, nil)
	self := uint32(os.Getuid())
	for uid, want := range map[uint32]bool{0: true, self: true, 65534: self == 65534} {
		if got := s.allowed(uid); got != want {
			t.Errorf("allowed(%d) = %v, want %v", uid, got, want)
		}
	}
}
