package health

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

func okSection(name string) Section {
	return Section{
		Name: name, Failmode: "safe", DuoIntegration: "api-x.duosecurity.com/DIXXXX", DuoState: "ok",
		DuoSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Directory: "corp", DirectoryUp: true,
		Listening: true, Connections: 4, Binds: map[string]uint64{"second_factor": 3},
	}
}

// sections is a Source the test can change between requests.
type sections struct {
	mu  sync.Mutex
	all []Section
}

func (s *sections) set(all ...Section) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = all
}

func (s *sections) get() []Section {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Section(nil), s.all...)
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestReady(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Section)
		ready  bool
		reason string
	}{
		{"ok", func(*Section) {}, true, ""},
		{"degraded still asks duo", func(s *Section) { s.DuoState = "degraded" }, true, ""},
		{"duo unreachable", func(s *Section) { s.DuoState, s.DuoLastError = "unreachable", "connection refused" },
			false, "duo unreachable: connection refused"},
		{"duo misconfigured", func(s *Section) { s.DuoState, s.DuoLastError = "misconfigured", "check: HTTP 401" },
			false, "duo misconfigured: check: HTTP 401"},
		{"duo state unknown", func(s *Section) { s.DuoState = "" }, false, "duo state unknown"},
		{"directory down", func(s *Section) { s.DirectoryUp = false }, false, "directory corp unreachable"},
		{"not listening", func(s *Section) { s.Listening = false }, false, "not listening"},
		{"everything", func(s *Section) { s.Listening, s.DirectoryUp, s.DuoState = false, false, "unreachable" },
			false, "not listening; directory corp unreachable; duo unreachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := okSection("corp")
			tt.change(&s)
			ready, reason := Ready(s)
			if ready != tt.ready || reason != tt.reason {
				t.Fatalf("Ready = %v %q, want %v %q", ready, reason, tt.ready, tt.reason)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	src := &sections{}
	src.set(okSection("corp"), okSection("vpn"))
	metricsHit := make(chan struct{}, 1)
	mh := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metricsHit <- struct{}{}
		io.WriteString(w, "ldapgate_build_info 1\n")
	})
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New("127.0.0.1:0", "1.2.3", started, src.get, mh, nil)
	s.now = func() time.Time { return started.Add(90 * time.Second) }
	h := s.Handler()

	t.Run("healthz", func(t *testing.T) {
		resp, body := get(t, h, "GET", "/healthz")
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		// Liveness does not depend on the sections.
		src.set()
		defer src.set(okSection("corp"), okSection("vpn"))
		if resp, _ := get(t, h, "GET", "/healthz"); resp.StatusCode != 200 {
			t.Fatalf("healthz %d with no sections", resp.StatusCode)
		}
	})

	readyz := func(t *testing.T) (int, ReadyStatus, map[string]any) {
		t.Helper()
		resp, body := get(t, h, "GET", "/readyz")
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		var rs ReadyStatus
		if err := json.Unmarshal(body, &rs); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var raw map[string]any
		json.Unmarshal(body, &raw)
		return resp.StatusCode, rs, raw
	}

	t.Run("readyz ready", func(t *testing.T) {
		deg := okSection("vpn")
		deg.DuoState = "degraded"
		src.set(okSection("corp"), deg)
		defer src.set(okSection("corp"), okSection("vpn"))
		code, rs, raw := readyz(t)
		if code != 200 || !rs.Ready || len(rs.Sections) != 2 {
			t.Fatalf("%d %+v", code, rs)
		}
		secs := raw["sections"].([]any)
		for _, k := range []string{"name", "ready", "reason", "duo_state", "directory_up"} {
			if _, ok := secs[0].(map[string]any)[k]; !ok {
				t.Errorf("readyz section has no %q: %v", k, secs[0])
			}
		}
		if rs.Sections[1].DuoState != "degraded" || !rs.Sections[1].Ready {
			t.Errorf("degraded section: %+v", rs.Sections[1])
		}
	})

	t.Run("readyz not ready", func(t *testing.T) {
		down := okSection("vpn")
		down.DuoState, down.DuoLastError = "unreachable", "connection refused"
		nodir := okSection("partners")
		nodir.DirectoryUp, nodir.Directory = false, "partners-ad"
		src.set(okSection("corp"), down, nodir)
		defer src.set(okSection("corp"), okSection("vpn"))
		code, rs, _ := readyz(t)
		if code != 503 || rs.Ready {
			t.Fatalf("%d %+v", code, rs)
		}
		want := []SectionReady{
			{Name: "corp", Ready: true, DuoState: "ok", DirectoryUp: true},
			{Name: "vpn", Ready: false, Reason: "duo unreachable: connection refused", DuoState: "unreachable", DirectoryUp: true},
			{Name: "partners", Ready: false, Reason: "directory partners-ad unreachable", DuoState: "ok", DirectoryUp: false},
		}
		for i := range want {
			if rs.Sections[i] != want[i] {
				t.Errorf("section %d: %+v, want %+v", i, rs.Sections[i], want[i])
			}
		}
	})

	t.Run("readyz no sections", func(t *testing.T) {
		src.set()
		defer src.set(okSection("corp"), okSection("vpn"))
		code, rs, raw := readyz(t)
		if code != 503 || rs.Reason != "no server sections" {
			t.Fatalf("%d %+v", code, rs)
		}
		if _, ok := raw["sections"].([]any); !ok {
			t.Errorf("sections must be a list, got %v", raw["sections"])
		}
	})

	t.Run("status", func(t *testing.T) {
		po := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
		sec := okSection("corp")
		sec.PrimaryOnlyUntil = &po
		sec.DuoLastError = "check: timeout"
		src.set(sec, okSection("vpn"))
		defer src.set(okSection("corp"), okSection("vpn"))
		resp, body := get(t, h, "GET", "/status")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["version"] != "1.2.3" || raw["uptime_seconds"] != 90.0 || raw["started"] != "2026-01-01T00:00:00Z" {
			t.Errorf("header fields: %v", raw)
		}
		secs := raw["sections"].([]any)
		if len(secs) != 2 {
			t.Fatalf("sections %v", secs)
		}
		first := secs[0].(map[string]any)
		for _, k := range []string{"name", "failmode", "duo_integration", "duo_state", "duo_since", "duo_last_error",
			"primary_only_until", "directory", "directory_up", "listening", "connections", "binds"} {
			if _, ok := first[k]; !ok {
				t.Errorf("status section has no %q", k)
			}
		}
		if first["primary_only_until"] != "2026-01-01T01:00:00Z" || first["binds"].(map[string]any)["second_factor"] != 3.0 {
			t.Errorf("section: %v", first)
		}
		second := secs[1].(map[string]any)
		if _, ok := second["primary_only_until"]; ok {
			t.Errorf("primary_only_until must be omitted when off: %v", second)
		}
		if _, ok := second["duo_last_error"]; ok {
			t.Errorf("duo_last_error must be omitted when empty: %v", second)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, body := get(t, h, "GET", "/metrics")
		if resp.StatusCode != 200 || !strings.Contains(string(body), "ldapgate_build_info 1") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		<-metricsHit
	})

	t.Run("methods and paths", func(t *testing.T) {
		for _, tt := range []struct {
			method, path string
			want         int
		}{
			{"POST", "/healthz", 405},
			{"PUT", "/readyz", 405},
			{"DELETE", "/status", 405},
			{"POST", "/metrics", 405},
			{"HEAD", "/healthz", 200},
			{"GET", "/", 404},
			{"GET", "/admin", 404},
			{"GET", "/healthz/x", 404},
		} {
			if resp, _ := get(t, h, tt.method, tt.path); resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		}
	})
}

func TestNoMetricsHandler(t *testing.T) {
	s := New("127.0.0.1:0", "v", time.Now(), nil, nil, nil)
	if resp, _ := get(t, s.Handler(), "GET", "/metrics"); resp.StatusCode != 404 {
		t.Fatalf("/metrics without a handler: %d", resp.StatusCode)
	}
	if resp, _ := get(t, s.Handler(), "GET", "/readyz"); resp.StatusCode != 503 {
		t.Fatalf("/readyz with a nil source: %d", resp.StatusCode)
	}
}

func TestListenAndServe(t *testing.T) {
	src := func() []Section { return []Section{okSection("corp")} }
	s := New("127.0.0.1:0", "v", time.Now(), src, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()

	select {
	case <-s.Listening():
	case err := <-done:
		t.Fatalf("ListenAndServe: %v", err)
	}
	url := "http://" + s.Addr().String()
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after ctx was cancelled")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestListenAndServeLameDuck(t *testing.T) {
	src := func() []Section { return []Section{okSection("corp")} }
	s := New("127.0.0.1:0", "v", time.Now(), src, nil, nil)
	s.LameDuck = time.Hour // cut short by the test
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	<-s.Listening()
	cancel()
	select {
	case <-s.drain:
	case err := <-done:
		t.Fatalf("returned before lame duck: %v", err)
	}
	url := "http://" + s.Addr().String()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "shutting down") {
		t.Fatalf("readyz while draining: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz while draining: %v %v", resp, err)
	}
	resp.Body.Close()
	close(s.cutDrain)
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe: %v", err)
	}
}

func TestListenError(t *testing.T) {
	s := New("127.0.0.1:-1", "v", time.Now(), nil, nil, nil)
	if err := s.ListenAndServe(context.Background()); err == nil {
		t.Fatal("want a listen error")
	}
}

func TestBindCounter(t *testing.T) {
	c := NewBindCounter()
	var _ failmode.Recorder = c
	if got := c.Snapshot("corp"); got == nil || len(got) != 0 {
		t.Fatalf("empty snapshot %v", got)
	}
	var wg sync.WaitGroup
	var n atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				rule := string(failmode.RuleSecondFactor)
				if i%5 == 0 {
					rule = string(failmode.RuleFailmodeSafe)
				}
				c.RecordBind(failmode.BindEvent{Server: "corp", Rule: failmode.Rule(rule), DN: "uid=a,dc=x", Username: "a"})
				n.Add(1)
				_ = c.Snapshot("corp")
			}
		}()
	}
	wg.Wait()
	c.RecordBind(failmode.BindEvent{Server: "vpn", Rule: "invalid_credentials"})
	c.RecordBind(failmode.BindEvent{Server: "vpn"})
	got := c.Snapshot("corp")
	if got["second_factor"] != 1600 || got["failmode_safe"] != 400 || len(got) != 2 {
		t.Fatalf("corp %v", got)
	}
	vpn := c.Snapshot("vpn")
	if vpn["invalid_credentials"] != 1 || vpn["unknown"] != 1 || len(vpn) != 2 {
		t.Fatalf("vpn %v", vpn)
	}
	got["second_factor"] = 0
	if c.Snapshot("corp")["second_factor"] != 1600 {
		t.Fatal("Snapshot must return a copy")
	}
}
