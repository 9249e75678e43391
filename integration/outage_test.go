package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// probeInterval is short in these tests so that recovery is quick; the
// state machine probes every second while Duo is down regardless.
const probeInterval = "500ms"

// getJSON fetches a health endpoint and decodes its JSON body.
func (e *env) getJSON(path string, v any) int {
	e.t.Helper()
	resp, err := http.Get("http://" + e.health + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("GET %s: %v in %q", path, err, body)
		}
	}
	return resp.StatusCode
}

type statusDoc struct {
	Version  string `json:"version"`
	Sections []struct {
		Name         string            `json:"name"`
		Failmode     string            `json:"failmode"`
		DuoState     string            `json:"duo_state"`
		DuoLastError string            `json:"duo_last_error"`
		PrimaryOnly  *time.Time        `json:"primary_only_until"`
		DirectoryUp  bool              `json:"directory_up"`
		Binds        map[string]uint64 `json:"binds"`
	} `json:"sections"`
}

// duoState returns the Duo state /status reports for a section.
func (e *env) duoState(sectionName string) string {
	var st statusDoc
	e.getJSON("/status", &st)
	for _, s := range st.Sections {
		if s.Name == sectionName {
			return s.DuoState
		}
	}
	e.t.Fatalf("no section %s in /status", sectionName)
	return ""
}

func (e *env) waitDuoState(sectionName, want string) {
	e.t.Helper()
	testutil.WaitFor(e.t, 10*time.Second, func() bool { return e.duoState(sectionName) == want }, "duo state "+want)
}

func (e *env) readyz() int { return e.getJSON("/readyz", nil) }

// TestOutageStateMachine: Duo's state follows real traffic and the signed
// probe; once Duo is known down, binds are decided without asking it;
// /readyz flips to 503 and back; every change is alerted.
func TestOutageStateMachine(t *testing.T) {
	hook := newHookReceiver(t)
	e := startParallel(t, []section{secureSection, safeSection}, withDuo("probe_interval", probeInterval),
		withConfig("alerts", map[string]any{"webhook_url": hook.URL}))
	alice, adam := person(t, "alice"), person(t, "adam")
	e.waitDuoState("safe", "ok")
	if code := e.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with everything fine: %d", code)
	}

	// Duo stops answering: a hang costs a timeout per bind until the state
	// machine knows; then binds are decided at once, without Duo.
	if err := e.duo.SetFault(duosim.FaultHang); err != nil {
		t.Fatal(err)
	}
	e.waitDuoState("safe", "unreachable")
	if code := e.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Duo unreachable: %d", code)
	}
	e.duo.ResetCalls()
	if err := e.bind("safe", alice.DN(), alice.Password); err != nil {
		t.Fatalf("safe section, Duo known down: %v", err)
	}
	if err := e.bind("safe", adam.DN(), adam.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("secure group, Duo known down: %v", err)
	}
	if err := e.bind("secure", alice.DN(), alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("secure section, Duo known down: %v", err)
	}
	// The first bind was the half-open trial (one preauth, which hung until
	// duo.timeout and then failed open as before); the others were decided
	// at once.
	if c := e.duo.Calls(); c.Preauth > 1 || c.Auth != 0 {
		t.Fatalf("binds asked Duo although it is known to be down: %+v", c)
	}

	// Duo returns: the next probe (fast while unreachable) restores ok.
	if err := e.duo.SetFault(duosim.FaultNone); err != nil {
		t.Fatal(err)
	}
	e.waitDuoState("safe", "ok")
	testutil.WaitFor(t, 5*time.Second, func() bool { return e.readyz() == http.StatusOK }, "/readyz back to 200")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatalf("after recovery: %v", err)
	}

	// Bad keys: misconfigured, denied at once everywhere, not ready.
	if err := e.duo.SetFault(duosim.FaultUnauthorized); err != nil {
		t.Fatal(err)
	}
	e.waitDuoState("safe", "misconfigured")
	e.duo.ResetCalls()
	if err := e.bind("safe", alice.DN(), alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("misconfigured must never fail open: %v", err)
	}
	if c := e.duo.Calls(); c.Preauth != 0 {
		t.Fatalf("a bind asked Duo while misconfigured: %+v", c)
	}
	if code := e.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while misconfigured: %d", code)
	}

	// Degraded: Duo answers preauth but auth fails. Still ready (binds
	// are decided correctly), visible, alerted; failmode not invoked.
	if err := e.duo.SetFault(duosim.FaultAuthError); err != nil {
		t.Fatal(err)
	}
	e.waitDuoState("safe", "ok")
	if err := e.bind("safe", alice.DN(), alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("degraded: %v", err)
	}
	e.waitDuoState("safe", "degraded")
	if code := e.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz while degraded: %d", code)
	}
	_ = e.duo.SetFault(duosim.FaultNone)

	// Every change reached the auth log and the webhook.
	want := []string{"ok -> unreachable", "unreachable -> ok", "ok -> misconfigured", "misconfigured -> ok", "ok -> degraded"}
	var notices []string
	testutil.WaitFor(t, 5*time.Second, func() bool {
		notices = notices[:0]
		for _, ev := range e.authEvents() {
			if ev["event"] == "duo_state" {
				notices = append(notices, ev["msg"].(string))
			}
		}
		return len(notices) >= len(want)
	}, "duo_state notices in the auth log")
	for i, w := range want {
		if !strings.HasPrefix(notices[i], "duo state changed: "+w) {
			t.Errorf("notice %d = %q, want %q", i, notices[i], w)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return hook.count("duo_state") >= len(want) }, "webhook deliveries")
	// Failmode allows are alerted once per episode, not per bind.
	if n := hook.count("failmode"); n < 1 {
		t.Errorf("no failmode episode alert")
	}
}

// TestPrimaryOnly drives the emergency switch through the CLI.
func TestPrimaryOnly(t *testing.T) {
	e := startParallel(t, []section{secureSection, safeSection}, withDuo("probe_interval", probeInterval))
	bob, adam := person(t, "bob"), person(t, "adam")
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(gateBinary(t), append([]string{"primary-only", "--socket", e.adminSocket}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := cli("enable", "--server", "secure"); err == nil || !strings.Contains(out, "applies only to safe sections") {
		t.Fatalf("enabling a secure section must be refused: %v %s", err, out)
	}
	if out, err := cli("enable", "--for", "5h"); err == nil || !strings.Contains(out, "exceeds the 4h maximum") {
		t.Fatalf("5h must be refused: %v %s", err, out)
	}
	if out, err := cli("enable", "--server", "safe", "--for", "1h"); err != nil || !strings.Contains(out, "on until") {
		t.Fatalf("enable: %v %s", err, out)
	}
	e.duo.ResetCalls()
	if err := e.bind("safe", bob.DN(), bob.Password); err != nil {
		t.Fatalf("bob in primary-only mode: %v", err)
	}
	if c := e.duo.Calls(); c.Preauth != 0 {
		t.Fatalf("primary-only mode asked Duo: %+v", c)
	}
	if err := e.bind("safe", adam.DN(), adam.Password); err != nil || e.duo.Calls().Auth != 1 {
		t.Fatalf("a secure-group member must still pass Duo: %v %+v", err, e.duo.Calls())
	}
	if err := e.bind("secure", bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("the secure section is not affected: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		for _, ev := range e.authEvents() {
			if ev["rule"] == "primary_only" && ev["username"] == "bob" {
				return true
			}
		}
		return false
	}, "the primary-only bind in the auth log, as such")
	if out, err := cli("status"); err != nil || !strings.Contains(out, "safe") || !strings.Contains(out, "on until") {
		t.Fatalf("status: %v %s", err, out)
	}
	if out, err := cli("disable"); err != nil {
		t.Fatalf("disable: %v %s", err, out)
	}
	if err := e.bind("safe", bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("after disable bob is denied by Duo again: %v", err)
	}
	// Expiry: a short window ends by itself.
	if out, err := cli("enable", "--for", "1s"); err != nil {
		t.Fatalf("enable 1s: %v %s", err, out)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		out, _ := cli("status")
		return !strings.Contains(out, "on until")
	}, "primary-only mode to expire")
	if err := e.bind("safe", bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("after expiry: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		for _, ev := range e.authEvents() {
			if ev["event"] == "primary_only" && strings.Contains(ev["msg"].(string), "expired") {
				return true
			}
		}
		return false
	}, "the expiry in the auth log")
}

// TestMetrics scrapes /metrics and parses it with the Prometheus parser.
func TestMetrics(t *testing.T) {
	e := start(t, []section{secureSection, safeSection}, withDuo("probe_interval", probeInterval))
	alice, bob := person(t, "alice"), person(t, "bob")
	if code := e.getJSON("/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	_ = e.bind("secure", alice.DN(), alice.Password)
	_ = e.bind("secure", bob.DN(), bob.Password)
	_ = e.bind("secure", alice.DN(), "wrong")
	if err := e.duo.SetFault(duosim.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	// The secure binds above vetoed probe evidence: three refused preauth
	// calls make Duo unreachable.
	for range 3 {
		_ = e.bind("safe", alice.DN(), alice.Password)
	}
	e.waitDuoState("safe", "unreachable")

	resp, err := http.Get("http://" + e.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		mf, ok := families[name]
		if !ok {
			t.Fatalf("metric %s missing", name)
		}
	next:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		return -1
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ldapgate_binds_total", map[string]string{"server": "secure", "outcome": "second_factor"}, 1},
		{"ldapgate_binds_total", map[string]string{"server": "secure", "outcome": "denied"}, 1},
		{"ldapgate_binds_total", map[string]string{"server": "secure", "outcome": "invalid_credentials"}, 1},
		{"ldapgate_binds_total", map[string]string{"server": "safe", "outcome": "failmode_safe"}, 3},
		{"ldapgate_failmode_decisions_total", map[string]string{"server": "safe", "failmode": "safe", "decision": "allow"}, 3},
		{"ldapgate_duo_state", map[string]string{"state": "unreachable"}, 1},
		{"ldapgate_duo_state", map[string]string{"state": "ok"}, 0},
		{"ldapgate_directory_up", map[string]string{"directory": "sample"}, 1},
		{"ldapgate_primary_only_until_seconds", map[string]string{"server": "safe"}, 0},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if value("ldapgate_duo_request_duration_seconds", map[string]string{"endpoint": "preauth"}) < 1 {
		t.Error("no preauth latency observed")
	}
	if _, ok := families["ldapgate_build_info"]; !ok {
		t.Error("no build info")
	}
	if _, ok := families["ldapgate_connections"]; !ok {
		t.Error("no connections gauge")
	}
	for _, secret := range []string{"uid=", alice.Password, e.duo.SecretKey()} {
		if strings.Contains(string(body), secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
}

// hookReceiver is a test webhook endpoint.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) count(kind string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev["kind"] == kind {
			n++
		}
	}
	return n
}

// TestLameDuck: on SIGTERM /readyz turns 503 at once while binds are still
// served, then ldapgate stops by itself.
func TestLameDuck(t *testing.T) {
	// a process of its own: SIGTERM and the exit code are the point
	e := startParallel(t, []section{secureSection}, withLameDuck(3*time.Second), withProcess())
	alice := person(t, "alice")
	testutil.WaitFor(t, 5*time.Second, func() bool { return e.readyz() == http.StatusOK }, "ready")
	if err := e.proc().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return e.readyz() == http.StatusServiceUnavailable }, "/readyz to turn 503 while draining")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatalf("binds must still be served while draining: %v", err)
	}
	select {
	case <-e.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("ldapgate did not stop after the lame-duck delay")
	}
	if e.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit code %d after SIGTERM", e.cmd.ProcessState.ExitCode())
	}
}
