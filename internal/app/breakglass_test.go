package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/breakglass"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// glassEnv is slapd, the Duo simulator, a webhook receiver and a config
// whose secure section vpn lists alice (not bob) for break-glass codes.
type glassEnv struct {
	t                   *testing.T
	sim                 *duosim.Sim
	cfg, codes, authLog string
	mu                  sync.Mutex
	hooks               []string
	addrs               *logAddrs
	stop                func()
}

func newGlassEnv(t *testing.T) *glassEnv {
	dir := slapdtest.Start(t)
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e := &glassEnv{t: t, sim: sim}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.hooks = append(e.hooks, string(b))
		e.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.codes, e.authLog = filepath.Join(tmp, "glass", "codes.json"), filepath.Join(tmp, "auth.log")
	if err := os.Mkdir(filepath.Dir(e.codes), 0o700); err != nil {
		t.Fatal(err)
	}
	svc, _ := sampledata.LookupService("ldapgate")
	e.cfg = writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
auth_log: %q
alerts: {webhook_url: %q}
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    failmode: secure
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 1s, probe_interval: 500ms, unreachable_after: 1}
    break_glass:
      users: ["UID=alice,ou=people,dc=example,dc=com"]
      codes_file: %q
`, e.authLog, hook.URL, dir.URL, sampledata.BaseDN, svc.DN(), svc.Password, sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), ca, e.codes))
	return e
}

// serve starts the whole program in-process; stop ends it and waits.
func (e *glassEnv) serve() {
	t := e.t
	logR, logW := io.Pipe()
	e.addrs = &logAddrs{addrs: map[string]string{}}
	go e.addrs.read(logR)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", e.cfg}, io.Discard, logW)
		logW.Close()
	}()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(e.stop)
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.addrs.get("vpn") != "" && e.addrs.get("health") != "" },
		"the listeners to report their addresses")
}

func (e *glassEnv) duoState() string {
	resp, err := http.Get("http://" + e.addrs.get("health") + "/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Sections []struct {
			DuoState string `json:"duo_state"`
		} `json:"sections"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Sections) == 0 {
		return ""
	}
	return st.Sections[0].DuoState
}

func (e *glassEnv) fault(f duosim.Fault, state string) {
	e.t.Helper()
	if err := e.sim.SetFault(f); err != nil {
		e.t.Fatal(err)
	}
	testutil.WaitFor(e.t, 15*time.Second, func() bool { return e.duoState() == state }, "duo state "+state)
}

// bind binds to vpn as uid with password+","+code and returns the LDAP
// result code.
func (e *glassEnv) bind(uid, code string) uint16 {
	e.t.Helper()
	p, _ := sampledata.Lookup(uid)
	conn, err := ldap.DialURL("ldap://" + e.addrs.get("vpn"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Bind(p.DN(), p.Password+","+code)
	if err == nil {
		return ldap.LDAPResultSuccess
	}
	le, ok := err.(*ldap.Error)
	if !ok {
		e.t.Fatalf("bind: %v", err)
	}
	return le.ResultCode
}

func (e *glassEnv) want(what, uid, code string, want uint16) {
	e.t.Helper()
	if got := e.bind(uid, code); got != want {
		e.t.Fatalf("%s: result %d, want %d", what, got, want)
	}
}

func (e *glassEnv) issue(user string, n int) []string {
	e.t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"break-glass", "issue", "--config", e.cfg, "--server", "vpn", "--user", user, "--count", fmt.Sprint(n)}, &out, &errOut)
	if err != nil {
		e.t.Fatalf("issue: %v (%s)", err, errOut.String())
	}
	codes := strings.Fields(out.String())
	if len(codes) != n {
		e.t.Fatalf("issue printed %d codes, want %d: %q", len(codes), n, out.String())
	}
	return codes
}

// TestBreakGlassCLI: issue prints N distinct codes, one per line, for a
// listed user only; the codes file is 0600 and holds none in clear; list
// and revoke never show one.
func TestBreakGlassCLI(t *testing.T) {
	e := newGlassEnv(t)
	codes := e.issue(sampledata.PersonDN("alice"), 10)
	seen := map[string]bool{}
	for _, c := range codes {
		if _, ok := breakglass.ParseCode(c); !ok || len(c) < 20 || seen[c] {
			t.Fatalf("code %q: malformed, short or repeated", c)
		}
		seen[c] = true
	}
	fi, err := os.Stat(e.codes)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("codes file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(e.codes)
	out, code := runCLI(t, "break-glass", "list", "--config", e.cfg, "--server", "vpn")
	if code != 0 || !strings.Contains(out, "UID=alice,ou=people,dc=example,dc=com  10") {
		t.Fatalf("list: %d %q", code, out)
	}
	for _, c := range codes {
		canon, _ := breakglass.ParseCode(c)
		for what, text := range map[string]string{"the codes file": string(data), "list": out} {
			if strings.Contains(text, c) || strings.Contains(text, canon) {
				t.Fatalf("%s shows code %s", what, c)
			}
		}
	}
	if out, code := runCLI(t, "break-glass", "issue", "--config", e.cfg, "--server", "vpn", "--user", sampledata.PersonDN("bob")); code == 0 || !strings.Contains(out, "not in servers (vpn).break_glass.users") {
		t.Fatalf("issue for a user not listed: %d %q", code, out)
	}
	if _, code := runCLI(t, "break-glass", "issue", "--config", e.cfg, "--server", "vpn", "--user", sampledata.PersonDN("alice"), "--count", "0"); code != 2 {
		t.Fatalf("--count 0: exit %d, want 2", code)
	}
	if _, code := runCLI(t, "break-glass", "list", "--config", e.cfg, "--server", "nope"); code != 1 {
		t.Fatalf("unknown server: exit %d", code)
	}
	out, code = runCLI(t, "break-glass", "revoke", "--config", e.cfg, "--server", "vpn", "--all")
	if code != 0 || !strings.Contains(out, "revoked 10 codes") {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if out, _ := runCLI(t, "break-glass", "list", "--config", e.cfg, "--server", "vpn"); !strings.Contains(out, "UID=alice,ou=people,dc=example,dc=com  0") {
		t.Fatalf("list after revoke: %q", out)
	}
}

// TestBreakGlassServe: the whole program against slapd and the Duo
// simulator. A code is refused while Duo is ok and while it is
// misconfigured, works once while it is unreachable, never for a user not
// listed; codes issued while serve runs work at once; a used code stays
// refused after a restart. Every use is in the auth log (rule
// break_glass, user, section, client IP) and alerted on the webhook.
func TestBreakGlassServe(t *testing.T) {
	e := newGlassEnv(t)
	alice := sampledata.PersonDN("alice")
	codes := e.issue(alice, 3)
	e.serve()
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.duoState() == "ok" }, "duo state ok")
	const ok, denied = ldap.LDAPResultSuccess, ldap.LDAPResultInvalidCredentials

	e.want("duo ok", "alice", codes[0], denied)
	e.fault(duosim.FaultUnauthorized, "misconfigured")
	e.want("duo misconfigured", "alice", codes[0], denied)
	e.fault(duosim.FaultNone, "ok") // misconfigured ends only with a good answer
	e.fault(duosim.FaultRefuse, "unreachable")
	e.want("a user not listed", "bob", codes[0], denied)
	e.want("duo unreachable", "alice", codes[0], ok)
	e.want("the same code again", "alice", codes[0], denied)

	// Issued while serve runs: the new codes work, the replaced ones not.
	fresh := e.issue(alice, 2)
	e.want("a code replaced while serve runs", "alice", codes[1], denied)
	e.want("a code issued while serve runs", "alice", fresh[0], ok)
	e.waitAlerts(2)

	e.stop()
	e.serve()
	testutil.WaitFor(t, 15*time.Second, func() bool { return e.duoState() == "unreachable" }, "duo state unreachable after the restart")
	e.want("a used code after a restart", "alice", fresh[0], denied)
	e.want("an unused code after a restart", "alice", fresh[1], ok)
	e.waitAlerts(3)
	e.stop()

	out, _ := runCLI(t, "break-glass", "list", "--config", e.cfg, "--server", "vpn")
	if !strings.Contains(out, "UID=alice,ou=people,dc=example,dc=com  0") {
		t.Fatalf("list after every code was used: %q", out)
	}

	// The auth log: one break_glass record per use, naming user, section
	// and client; one notice each; never a code.
	f, err := os.Open(e.authLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var uses, notices int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, c := range append(codes, fresh...) {
			canon, _ := breakglass.ParseCode(c)
			if strings.Contains(line, c) || strings.Contains(line, canon) {
				t.Fatalf("the auth log holds a code: %s", line)
			}
		}
		var rec struct {
			Rule, DN, ServerSection, ClientIP, Status, Event string
		}
		var raw map[string]any
		json.Unmarshal([]byte(line), &raw)
		rec.Rule, _ = raw["rule"].(string)
		rec.DN, _ = raw["dn"].(string)
		rec.ServerSection, _ = raw["server_section"].(string)
		rec.ClientIP, _ = raw["client_ip"].(string)
		rec.Status, _ = raw["status"].(string)
		rec.Event, _ = raw["event"].(string)
		switch {
		case rec.Rule == "break_glass":
			uses++
			if rec.DN != alice || rec.ServerSection != "vpn" || rec.ClientIP != "127.0.0.1" || rec.Status != "Allow" {
				t.Errorf("break_glass record %s", line)
			}
		case rec.Event == "break_glass":
			notices++
		}
	}
	if uses != 3 || notices != 3 {
		t.Fatalf("auth log: %d break_glass records and %d notices, want 3 and 3", uses, notices)
	}
}

// waitAlerts awaits n break_glass alerts for vpn on the webhook.
func (e *glassEnv) waitAlerts(n int) {
	e.t.Helper()
	testutil.WaitFor(e.t, 10*time.Second, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		got := 0
		for _, h := range e.hooks {
			if strings.Contains(h, `"kind":"break_glass"`) && strings.Contains(h, `"server":"vpn"`) {
				got++
			}
		}
		return got == n
	}, fmt.Sprintf("%d break_glass webhook alerts", n))
}
