package duoclient

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// failCase is one way a Duo call can fail, and what it must be classified as.
type failCase struct {
	name string
	// serve answers the stage's endpoint on a trusted fake Duo.
	serve http.HandlerFunc
	// server, when set, replaces the default fake (e.g. an untrusted cert).
	server func(t *testing.T) *fakeDuo
	// host, when set, is dialled instead of any fake (refused, DNS).
	host   func(t *testing.T) string
	mods   []func(*Config)
	class  failmode.Class
	detail string
	// calls, when > 0, is how many requests the endpoint must have seen.
	calls int
	// firstCall: the failure hits whichever call comes first (certificate,
	// keys), so it cannot be staged at auth.
	firstCall bool
}

const hangFor = 3 * time.Second

// fastBound is how quickly a call against a server hanging for hangFor must
// give up: generous against the short timeouts, well under the hang.
const fastBound = 2 * time.Second

func withTimeout(d time.Duration) func(*Config)     { return func(c *Config) { c.Timeout = d } }
func withPushTimeout(d time.Duration) func(*Config) { return func(c *Config) { c.PushTimeout = d } }

func untrustedServer(t *testing.T) *fakeDuo {
	_, o := cas(t)
	return newFakeDuo(t, o.goodLeaf(t))
}

func wrongHostServer(t *testing.T) *fakeDuo {
	ca, _ := cas(t)
	return newFakeDuo(t, ca.leaf(t, nil, []string{"api-other.duosecurity.example"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
}

func expiredServer(t *testing.T) *fakeDuo {
	ca, _ := cas(t)
	return newFakeDuo(t, ca.leaf(t, loopback, nil, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
}

func plainHTTPHost(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// commonFailures are the rows every stage shares; the transient class
// (Unreachable or Degraded) and the class of a bad request (Rejected at
// preauth and auth, which carry the user's input; Misconfigured at check,
// which carries none) are filled in per stage.
func commonFailures(transientClass, badRequestClass failmode.Class) []failCase {
	return []failCase{
		{name: "HTTP 503 HTML", serve: raw(503, "text/html", "<html><body>Service Unavailable</body></html>"), class: transientClass, detail: "HTTP 503", calls: 1},
		{name: "HTTP 502 empty", serve: raw(502, "text/plain", ""), class: transientClass, detail: "HTTP 502", calls: 1},
		{name: "HTTP 500 FAIL 50001", serve: fail(500, 50001, "Internal error"), class: transientClass, detail: "duo 50001: Internal error"},
		{name: "HTTP 200 FAIL 50001", serve: fail(200, 50001, "Internal error"), class: transientClass, detail: "duo 50001"},
		{name: "redirect", serve: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://example.com/", http.StatusFound)
		}, class: transientClass, detail: "HTTP 302", calls: 1},
		{name: "non-JSON 200", serve: raw(200, "text/html", "<html>hello</html>"), class: transientClass, detail: "unparseable response"},
		{name: "JSON that is not a Duo answer", serve: raw(200, "application/json", `{"hello":"world"}`), class: transientClass, detail: "unparseable response"},
		{name: "truncated body", serve: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write([]byte(`{"stat":"OK",`))
		}, class: transientClass, detail: "connection closed by server"},
		{name: "response too large", serve: raw(200, "application/json", `{"stat":"OK","response":{"x":"`+strings.Repeat("a", maxBody)+`"}}`), class: transientClass, detail: "response too large"},
		{name: "hang beyond timeout", serve: hang(hangFor), mods: []func(*Config){withTimeout(200 * time.Millisecond), withPushTimeout(200 * time.Millisecond)}, class: transientClass, detail: "no answer within 200ms", calls: 1},
		{name: "body stalls after the headers", serve: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"stat":"OK","response":`))
			_ = http.NewResponseController(w).Flush()
			hang(hangFor)(w, r)
		}, mods: []func(*Config){withTimeout(time.Second), withPushTimeout(time.Second)}, class: transientClass, detail: "no answer within 1s", calls: 1},
		{name: "HTTP 401 FAIL 40103", serve: fail(401, 40103, "Invalid signature in request credentials"), class: failmode.Misconfigured, detail: "duo 40103: Invalid signature in request credentials", calls: 1},
		{name: "wrong secret key (real signature check)", firstCall: true, mods: []func(*Config){func(c *Config) { c.SecretKey = "not-the-secret" }}, class: failmode.Misconfigured, detail: "duo 40103", calls: 1},
		{name: "HTTP 401 FAIL 40102 bad ikey", serve: fail(401, 40102, "Invalid integration key in request credentials"), class: failmode.Misconfigured, detail: "duo 40102"},
		{name: "HTTP 400 FAIL 40002", serve: fail(400, 40002, "Invalid request parameters"), class: badRequestClass, detail: "duo 40002: Invalid request parameters", calls: 1},
		{name: "HTTP 400 no body", serve: raw(400, "text/plain", ""), class: badRequestClass, detail: "HTTP 400", calls: 1},
		{name: "HTTP 200 FAIL 40002", serve: fail(200, 40002, "Invalid request parameters"), class: badRequestClass, detail: "duo 40002"},
		{name: "HTTP 400 FAIL 40103 (the keys, whatever the status)", serve: fail(400, 40103, "Invalid signature in request credentials"), class: failmode.Misconfigured, detail: "duo 40103"},
		{name: "HTTP 401 FAIL 40002 (the status wins over the code)", serve: fail(401, 40002, "Invalid request parameters"), class: failmode.Misconfigured, detail: "duo 40002"},
		{name: "HTTP 401 FAIL 40101 missing credentials", serve: fail(401, 40101, "Missing request credentials"), class: failmode.Misconfigured, detail: "duo 40101"},
		{name: "HTTP 401 FAIL 40104 clock skew", serve: fail(401, 40104, "Invalid date in request credentials"), class: failmode.Misconfigured, detail: "duo 40104"},
		{name: "HTTP 401 FAIL 40105 old request", serve: fail(401, 40105, "Request too old"), class: failmode.Misconfigured, detail: "duo 40105"},
		{name: "HTTP 401 no body", serve: raw(401, "text/plain", ""), class: failmode.Misconfigured, detail: "HTTP 401"},
		{name: "HTTP 403 FAIL 40301", serve: fail(403, 40301, "Access forbidden"), class: failmode.Misconfigured, detail: "duo 40301"},
		{name: "HTTP 403 no body", serve: raw(403, "text/plain", ""), class: failmode.Misconfigured, detail: "HTTP 403"},
		{name: "HTTP 200 FAIL 40301", serve: fail(200, 40301, "Access forbidden"), class: failmode.Misconfigured, detail: "duo 40301"},
		{name: "HTTP 404", serve: raw(404, "text/html", "not found"), class: failmode.Misconfigured, detail: "HTTP 404"},
		{name: "HTTP 200 FAIL 40103", serve: fail(200, 40103, "Invalid signature in request credentials"), class: failmode.Misconfigured, detail: "duo 40103"},
		{name: "HTTP 429 retried never", serve: fail(429, 42901, "Too Many Requests"), class: failmode.Degraded, detail: "rate limited (HTTP 429)", calls: 1},
		{name: "HTTP 429 no body", serve: raw(429, "text/plain", ""), class: failmode.Degraded, detail: "rate limited (HTTP 429)", calls: 1},
		{name: "HTTP 200 FAIL 42901", serve: fail(200, 42901, "Too Many Requests"), class: failmode.Degraded, detail: "rate limited (duo 42901)"},
		{name: "FAIL without code", serve: raw(200, "application/json", `{"stat":"FAIL","message":"odd"}`), class: failmode.Unknown, detail: "duo FAIL without a usable code: odd"},
		{name: "FAIL with string code", serve: raw(200, "application/json", `{"stat":"FAIL","code":"x","message":"odd"}`), class: failmode.Unknown, detail: "without a usable code"},
		{name: "untrusted certificate", firstCall: true, server: untrustedServer, class: failmode.Untrusted, detail: "certificate signed by unknown authority"},
		{name: "certificate for another host", firstCall: true, server: wrongHostServer, class: failmode.Untrusted, detail: "certificate is not valid for 127.0.0.1"},
		{name: "expired certificate", firstCall: true, server: expiredServer, class: failmode.Untrusted, detail: "certificate expired"},
	}
}

// transportFailures are failures before any HTTP exchange.
func transportFailures(transientClass failmode.Class) []failCase {
	return []failCase{
		{name: "connection refused", host: func(t *testing.T) string { return closedPort(t) }, class: transientClass, detail: "connection refused"},
		{name: "dns failure", host: func(*testing.T) string { return "api-nonexistent.invalid" }, class: transientClass, detail: "dns lookup failed"},
		{name: "plain HTTP server", host: plainHTTPHost, class: transientClass, detail: "not a TLS server"},
	}
}

// runFailures runs each case against the stage's endpoint. call performs
// the operation; path is the endpoint the case's serve answers; before are
// the observations expected ahead of the failing one.
func runFailures(t *testing.T, stage failmode.Stage, endpoint failmode.Stage, path string, before []observation, cases []failCase,
	call func(ctx context.Context, c *Client) error) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f *fakeDuo
			var host string
			switch {
			case tc.host != nil:
				host = tc.host(t)
			case tc.server != nil:
				f = tc.server(t)
			default:
				f = newFakeDuo(t)
			}
			if f != nil {
				host = f.host()
				if tc.serve != nil {
					f.set(path, tc.serve)
				}
			}
			c, obs := newClient(t, host, tc.mods...)
			start := time.Now()
			err := call(context.Background(), c)
			elapsed := time.Since(start)
			wantFailure(t, err, tc.class, stage, tc.detail)
			if elapsed > fastBound {
				t.Errorf("took %s; every failure must end within its timeout", elapsed)
			}
			if f != nil && tc.calls > 0 {
				if n := len(f.requests(path)); n != tc.calls {
					t.Errorf("%s got %d requests, want %d", path, n, tc.calls)
				}
			}
			got := obs.got()
			want := append(append([]observation(nil), before...), observation{Endpoint: endpoint, Class: tc.class})
			if len(got) != len(want) {
				t.Fatalf("observed %+v, want %+v", got, want)
			}
			for i := range want {
				if got[i].Endpoint != want[i].Endpoint || got[i].Class != want[i].Class {
					t.Errorf("observation %d: got %s/%s, want %s/%s", i, got[i].Endpoint, got[i].Class, want[i].Endpoint, want[i].Class)
				}
			}
		})
	}
}

func verifyCall(ctx context.Context, c *Client) error {
	v, err := c.Verify(ctx, failmode.Attempt{Username: "alice", ClientIP: "192.0.2.10", Factor: failmode.FactorPush})
	if err != nil && v.Allowed {
		return errors.New("an error came with an allowing verdict")
	}
	return err
}

func TestPreauthFailures(t *testing.T) {
	cases := append(transportFailures(failmode.Unreachable), commonFailures(failmode.Unreachable, failmode.Rejected)...)
	cases = append(cases, failCase{
		name: "unexpected preauth result", serve: okJSON(map[string]any{"result": "maybe", "status_msg": "?"}),
		class: failmode.Degraded, detail: `unexpected preauth result "maybe"`,
	})
	runFailures(t, failmode.StagePreauth, failmode.StagePreauth, "/auth/v2/preauth", nil, cases, verifyCall)
}

func TestAuthFailures(t *testing.T) {
	cases := commonFailures(failmode.Degraded, failmode.Rejected)
	cases = append(cases,
		failCase{name: "connection reset", serve: hijack(true), class: failmode.Degraded, detail: "connection reset", calls: 1},
		failCase{name: "connection closed", serve: hijack(false), class: failmode.Degraded, detail: "connection closed by server", calls: 1},
		failCase{name: "push unanswered beyond PushTimeout", serve: hang(hangFor),
			mods:  []func(*Config){withTimeout(2 * time.Second), withPushTimeout(300 * time.Millisecond)},
			class: failmode.Degraded, detail: "no answer within 300ms", calls: 1},
		failCase{name: "unexpected auth result", serve: okJSON(map[string]any{"result": "waiting"}),
			class: failmode.Degraded, detail: `unexpected auth result "waiting"`},
		failCase{name: "certificate turns untrusted after preauth", server: switchingCertServer, class: failmode.Untrusted, detail: "unknown authority"},
	)
	// Certificate and key rows fail at preauth already; they are covered by
	// TestPreauthFailures, and at auth by the switching server above.
	var auth []failCase
	for _, tc := range cases {
		if !tc.firstCall {
			auth = append(auth, tc)
		}
	}
	before := []observation{{Endpoint: failmode.StagePreauth, Class: failmode.Allowed}}
	runFailures(t, failmode.StageAuth, failmode.StageAuth, "/auth/v2/auth", before, auth, verifyCall)
}

// switchingCertServer presents a trusted certificate on its first
// connection and an untrusted one afterwards, without keep-alives, so
// preauth succeeds and auth meets the untrusted certificate.
func switchingCertServer(t *testing.T) *fakeDuo {
	ca, o := cas(t)
	good, bad := ca.goodLeaf(t), o.goodLeaf(t)
	var n atomic.Int32
	f := newFakeDuoTLS(t, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if n.Add(1) == 1 {
			return &tls.Config{Certificates: []tls.Certificate{good}}, nil
		}
		return &tls.Config{Certificates: []tls.Certificate{bad}}, nil
	}})
	f.srv.Config.SetKeepAlivesEnabled(false)
	return f
}

func TestCheckFailures(t *testing.T) {
	cases := append(transportFailures(failmode.Unreachable), commonFailures(failmode.Unreachable, failmode.Misconfigured)...)
	// Check's answer is only stat OK; "unparseable" rows still apply.
	runFailures(t, failmode.StageCheck, failmode.StageCheck, "/auth/v2/check", nil, cases, func(ctx context.Context, c *Client) error {
		err := c.Check(ctx)
		if err == nil {
			return errors.New("check passed")
		}
		return err
	})
}

func TestCheckOK(t *testing.T) {
	f := newFakeDuo(t)
	c, obs := newClient(t, f.host())
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("/auth/v2/check")
	if len(reqs) != 1 || reqs[0].Method != http.MethodGet || !reqs[0].SignatureOK {
		t.Fatalf("want one signed GET /auth/v2/check, got %+v", reqs)
	}
	if got := obs.got(); len(got) != 1 || got[0].Endpoint != failmode.StageCheck || got[0].Class != failmode.Allowed {
		t.Fatalf("observed %+v", got)
	}
}

// TestRateLimitNoRetry pins the fix for duo_api_golang's 429 loop: one
// request, no sleep, Degraded (not a fake 40103 from a resent empty body).
func TestRateLimitNoRetry(t *testing.T) {
	for _, path := range []string{"/auth/v2/preauth", "/auth/v2/auth"} {
		t.Run(path, func(t *testing.T) {
			f := newFakeDuo(t)
			f.set(path, fail(429, 42901, "Too Many Requests"))
			c, _ := newClient(t, f.host())
			start := time.Now()
			_, err := c.Verify(context.Background(), failmode.Attempt{Username: "alice"})
			if !errors.Is(err, ErrRateLimited) {
				t.Errorf("errors.Is(err, ErrRateLimited) = false: %v", err)
			}
			var fe *failmode.Error
			if !errors.As(err, &fe) || fe.Class != failmode.Degraded {
				t.Fatalf("got %v, want Degraded", err)
			}
			if n := len(f.requests(path)); n != 1 {
				t.Fatalf("%d requests to %s, want exactly 1", n, path)
			}
			if d := time.Since(start); d >= fastBound {
				t.Errorf("took %s: the library's backoff sleep ran", d)
			}
		})
	}
}

// TestDeadlines pins that every call honours its own deadline, including
// the synchronous push (duo_api_golang ignores SetTimeout there), and that
// nothing is left running afterwards.
func TestDeadlines(t *testing.T) {
	baseline := runtime.NumGoroutine()
	cases := []struct {
		name  string
		path  string
		mods  []func(*Config)
		call  func(context.Context, *Client) error
		class failmode.Class
		stage failmode.Stage
	}{
		{"preauth", "/auth/v2/preauth", []func(*Config){withTimeout(200 * time.Millisecond)}, verifyCall, failmode.Unreachable, failmode.StagePreauth},
		{"sync push", "/auth/v2/auth", []func(*Config){withPushTimeout(200 * time.Millisecond)}, verifyCall, failmode.Degraded, failmode.StageAuth},
		{"check", "/auth/v2/check", []func(*Config){withTimeout(200 * time.Millisecond)}, func(ctx context.Context, c *Client) error { return c.Check(ctx) }, failmode.Unreachable, failmode.StageCheck},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDuo(t)
			f.set(tc.path, hang(hangFor))
			ca, _ := cas(t)
			// Long timeouts but the one under test (config's defaults).
			cfg := Config{APIHost: f.host(), IntegrationKey: testIKey, SecretKey: testSKey, RootCAs: ca.pool,
				Timeout: 10 * time.Second, PushTimeout: time.Minute}
			for _, m := range tc.mods {
				m(&cfg)
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = tc.call(context.Background(), c)
			if d := time.Since(start); d >= fastBound {
				t.Errorf("returned after %s against a %s hang", d, hangFor)
			}
			wantFailure(t, err, tc.class, tc.stage, "no answer within 200ms")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
			}
			_ = c.Close()
			f.srv.Close()
		})
	}
	settleGoroutines(t, baseline)
}

// TestCallerContext: the caller's cancellation and deadline bound the call
// too; a cancellation is Local (it says nothing about Duo).
func TestCallerContext(t *testing.T) {
	baseline := runtime.NumGoroutine()
	t.Run("deadline", func(t *testing.T) {
		f := newFakeDuo(t)
		f.set("/auth/v2/preauth", hang(hangFor))
		c, _ := newClient(t, f.host(), withTimeout(10*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Verify(ctx, failmode.Attempt{Username: "alice"})
		if d := time.Since(start); d >= fastBound {
			t.Errorf("took %s", d)
		}
		wantFailure(t, err, failmode.Unreachable, failmode.StagePreauth, "(caller's deadline)")
		_ = c.Close()
		f.srv.Close()
	})
	t.Run("cancel during push", func(t *testing.T) {
		f := newFakeDuo(t)
		f.set("/auth/v2/auth", hang(hangFor))
		c, obs := newClient(t, f.host(), withPushTimeout(time.Minute))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.Verify(ctx, failmode.Attempt{Username: "alice"})
		if d := time.Since(start); d >= fastBound {
			t.Errorf("took %s", d)
		}
		wantFailure(t, err, failmode.Local, failmode.StageAuth, "canceled by caller")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error does not wrap context.Canceled: %v", err)
		}
		if got := obs.got(); len(got) != 2 || got[1].Class != failmode.Local {
			t.Errorf("observed %+v", got)
		}
		_ = c.Close()
		f.srv.Close()
	})
	t.Run("already cancelled", func(t *testing.T) {
		f := newFakeDuo(t)
		c, _ := newClient(t, f.host())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Verify(ctx, failmode.Attempt{Username: "alice"})
		wantFailure(t, err, failmode.Local, failmode.StagePreauth, "canceled by caller")
		if n := len(f.requests("")); n != 0 {
			t.Errorf("%d requests sent for a cancelled context", n)
		}
		_ = c.Close()
		f.srv.Close()
	})
	settleGoroutines(t, baseline)
}

// TestHandshakeTimeout: a server that accepts the connection but never
// completes the TLS handshake is bounded by Timeout. (A connect that never
// completes needs a black-holed address, which loopback cannot provide.)
func TestHandshakeTimeout(t *testing.T) {
	baseline := runtime.NumGoroutine()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn) // accept, never speak TLS
		}
	}()
	c, _ := newClient(t, l.Addr().String(), withTimeout(200*time.Millisecond))
	start := time.Now()
	_, err = c.Verify(context.Background(), failmode.Attempt{Username: "alice"})
	if d := time.Since(start); d >= fastBound {
		t.Errorf("took %s", d)
	}
	wantFailure(t, err, failmode.Unreachable, failmode.StagePreauth, "no answer within 200ms")
	_ = c.Close()
	_ = l.Close()
	<-done
	for _, conn := range conns {
		_ = conn.Close()
	}
	settleGoroutines(t, baseline)
}
