package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/demo"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// webhookReceiver collects the alerts the program posts.
type webhookReceiver struct {
	mu     sync.Mutex
	events []alert.Event
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var e alert.Event
	if err := json.NewDecoder(r.Body).Decode(&e); err == nil {
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *webhookReceiver) kind(k string) []alert.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []alert.Event
	for _, e := range w.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// guardedProgram runs the whole program in-process against slapd (logging
// every operation) and the Duo simulator, with the sample people as Duo
// users, one section "vpn" with a bind cache, and alerts to a local
// webhook.
type guardedProgram struct {
	slapd *slapdtest.Server
	sim   *duosim.Sim
	hook  *webhookReceiver
	vpn   string
}

func startGuardedProgram(t *testing.T) *guardedProgram {
	t.Helper()
	p := &guardedProgram{slapd: slapdtest.Start(t, slapdtest.WithLogLevel("stats")), hook: &webhookReceiver{}}
	var err error
	if p.sim, err = duosim.New(duosim.Options{Users: demo.SampleDuoUsers()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.sim.Close() })
	hook := httptest.NewServer(p.hook)
	t.Cleanup(hook.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, p.sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, _ := sampledata.LookupService("ldapgate")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
alerts: {webhook_url: %q}
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    bind_cache_ttl: 1m
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}
`, hook.URL, p.slapd.URL, sampledata.BaseDN, svc.DN(), svc.Password, p.sim.APIHost(), p.sim.IntegrationKey(), p.sim.SecretKey(), ca))

	logR, logW := io.Pipe()
	addrs := &logAddrs{addrs: map[string]string{}}
	go addrs.read(logR)
	serveInProcess(t, cfg, logW)
	testutil.WaitFor(t, 10*time.Second, func() bool { return addrs.get("vpn") != "" }, "the vpn section to listen")
	p.vpn = addrs.get("vpn")
	return p
}

// bind binds once on a fresh connection from the loopback address src and
// returns the result code (0 on success) and diagnostic.
func (p *guardedProgram) bind(t *testing.T, src, name, password string) (uint16, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := ldap.DialURL("ldap://"+p.vpn, ldap.DialWithDialer(d))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(name, password); err != nil {
		var le *ldap.Error
		if !errors.As(err, &le) {
			t.Fatalf("bind %s: %v", name, err)
		}
		msg := ""
		if le.Err != nil {
			msg = le.Err.Error()
		}
		return le.ResultCode, msg
	}
	return 0, ""
}

// TestPushFatigueEndToEnd: six binds of bob, who denies every push, send
// three pushes to Duo; the other three are refused without any call to
// Duo, with "too many login requests", and one alert reaches the webhook
// naming bob, the section and his address. Every push carried the section
// and client address as pushinfo.
func TestPushFatigueEndToEnd(t *testing.T) {
	p := startGuardedProgram(t)
	bob, _ := sampledata.Lookup("bob")
	var diags []string
	for range 6 {
		code, diag := p.bind(t, "127.0.0.1", bob.DN(), bob.Password)
		if code != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bob: %d %q, want 49", code, diag)
		}
		diags = append(diags, diag)
	}
	calls := p.sim.Calls()
	if calls.Auth != 3 || calls.Preauth != 3 {
		t.Fatalf("Duo saw %d preauth and %d auth calls for 6 binds, want 3 and 3", calls.Preauth, calls.Auth)
	}
	for i, d := range diags[3:] {
		if d != "too many login requests; try again later" {
			t.Fatalf("bind %d: diagnostic %q", i+4, d)
		}
	}
	for _, r := range p.sim.Requests() {
		if r.Path != "/auth/v2/auth" {
			continue
		}
		info, err := url.ParseQuery(r.Pushinfo)
		if err != nil || info.Get("section") != "vpn" || info.Get("client_ip") != "127.0.0.1" {
			t.Fatalf("push pushinfo %q, want section=vpn&client_ip=127.0.0.1", r.Pushinfo)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(p.hook.kind(alert.KindPushBudget)) > 0 }, "the push_budget alert")
	// One more refused bind: still one alert for the window.
	p.bind(t, "127.0.0.1", bob.DN(), bob.Password)
	alice, _ := sampledata.Lookup("alice")
	p.bind(t, "127.0.0.1", alice.DN(), alice.Password)
	if got := p.hook.kind(alert.KindPushBudget); len(got) != 1 || got[0].User != "bob" || got[0].Server != "vpn" || got[0].ClientIP != "127.0.0.1" {
		t.Fatalf("push_budget alerts %+v, want one naming bob, vpn and 127.0.0.1", got)
	}
}

// TestSprayingEndToEnd: wrong passwords sprayed from 127.0.0.2 at every
// sample person reach slapd per_address times; after that binds are
// refused without any bind at slapd, and the same people still get in
// from 127.0.0.1.
func TestSprayingEndToEnd(t *testing.T) {
	p := startGuardedProgram(t)
	peopleBinds := func() int { return countBinds(p.slapd.Log(), `BIND dn="uid=`) }
	sprayed := 0
	for round := range 3 {
		for _, person := range sampledata.People {
			if code, _ := p.bind(t, "127.0.0.2", person.DN(), fmt.Sprintf("Spring202%d!", round)); code != ldap.LDAPResultInvalidCredentials {
				t.Fatalf("spray %s: %d, want 49", person.UID, code)
			}
			sprayed++
		}
	}
	const perAddress = 20 // the default per_address
	if sprayed <= perAddress {
		t.Fatalf("sprayed only %d binds", sprayed)
	}
	// The people still get in from elsewhere; their binds also mark the
	// end of what slapd can have logged of the spray.
	for _, uid := range []string{"alice", "grace"} {
		person, _ := sampledata.Lookup(uid)
		if code, diag := p.bind(t, "127.0.0.1", person.DN(), person.Password); code != 0 {
			t.Fatalf("%s from 127.0.0.1: %d %q", uid, code, diag)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return peopleBinds() >= perAddress+2 }, "slapd to log the binds")
	if n := peopleBinds(); n != perAddress+2 {
		t.Fatalf("slapd saw %d binds of people, want %d sprayed (per_address) + 2 from 127.0.0.1: throttled binds must not reach it", n, perAddress+2)
	}
}

// TestBindCacheEndToEnd: with bind_cache_ttl, alice's second bind makes no
// call to Duo (the password still goes to slapd); a wrong password evicts
// her entries, so the next bind asks Duo again.
func TestBindCacheEndToEnd(t *testing.T) {
	p := startGuardedProgram(t)
	alice, _ := sampledata.Lookup("alice")
	bind := func(password string, wantCode uint16, wantAuth int, what string) {
		t.Helper()
		if code, diag := p.bind(t, "127.0.0.1", alice.DN(), password); code != wantCode {
			t.Fatalf("%s: %d %q, want %d", what, code, diag, wantCode)
		}
		if got := p.sim.Calls().Auth; got != wantAuth {
			t.Fatalf("%s: %d auth calls to Duo in all, want %d", what, got, wantAuth)
		}
	}
	bind(alice.Password, 0, 1, "first bind")
	bind(alice.Password, 0, 1, "second bind within the ttl")
	bind("wrong", ldap.LDAPResultInvalidCredentials, 1, "wrong password")
	bind(alice.Password, 0, 2, "after the wrong password evicted the cache")
	testutil.WaitFor(t, 10*time.Second, func() bool { return countBinds(p.slapd.Log(), `BIND dn="uid=alice`) >= 4 },
		"slapd to see every one of alice's four binds (the cache never skips the directory)")
}

// countBinds counts the bind requests slapd's stats log shows whose line
// contains prefix ("BIND dn=... method=128"; a successful bind logs a
// second "mech=SIMPLE" line, not counted).
func countBinds(log, prefix string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, prefix) && strings.Contains(line, "method=128") {
			n++
		}
	}
	return n
}
