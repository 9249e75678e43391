package app

import (
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

	"github.com/ldapgate/ldapgate/demo"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/redistest"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// fleet is two in-process ldapgates sharing one Redis, one slapd and two
// Duo simulators: section wiki (safe, max_pushes 3, a bind cache) on
// wikiSim, which answers; section vpn (secure, break-glass for alice) on
// vpnSim, which refuses every connection (Duo unreachable).
type fleet struct {
	redis          *redistest.Server
	wikiSim        *duosim.Sim
	vpnSim         *duosim.Sim
	hooks          *fleetHooks
	inst           [2]*fleetInstance
	codesA, codesB string
}

type fleetInstance struct {
	cfg, socket string
	addrs       *logAddrs
}

// fleetHooks records the webhook alerts of each instance (?i=0, ?i=1).
type fleetHooks struct {
	mu     sync.Mutex
	alerts [2][]string
}

func (h *fleetHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	i := 0
	if r.URL.Query().Get("i") == "1" {
		i = 1
	}
	h.mu.Lock()
	h.alerts[i] = append(h.alerts[i], string(b))
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *fleetHooks) count(i int, substr ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
next:
	for _, a := range h.alerts[i] {
		for _, s := range substr {
			if !strings.Contains(a, s) {
				continue next
			}
		}
		n++
	}
	return n
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{redis: redistest.Start(t), hooks: &fleetHooks{}}
	dir := slapdtest.Start(t)
	var err error
	if f.wikiSim, err = duosim.New(duosim.Options{Users: demo.SampleDuoUsers()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.wikiSim.Close() })
	if f.vpnSim, err = duosim.New(duosim.Options{Users: demo.SampleDuoUsers()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.vpnSim.Close() })
	if err := f.vpnSim.SetFault(duosim.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(f.hooks)
	t.Cleanup(hook.Close)
	tmp := t.TempDir()
	wikiCA, vpnCA := filepath.Join(tmp, "wiki-ca.pem"), filepath.Join(tmp, "vpn-ca.pem")
	for file, pem := range map[string][]byte{wikiCA: f.wikiSim.CAPEM(), vpnCA: f.vpnSim.CAPEM()} {
		if err := os.WriteFile(file, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	svc, _ := sampledata.LookupService("ldapgate")
	for i := range f.inst {
		d := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		in := &fleetInstance{socket: filepath.Join(d, "admin.sock"), addrs: &logAddrs{addrs: map[string]string{}}}
		codes := filepath.Join(d, "codes.json")
		if i == 0 {
			f.codesA = codes
		} else {
			f.codesB = codes
		}
		in.cfg = writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
admin: {socket: %q}
alerts: {webhook_url: "%s/?i=%d"}
state: {backend: redis, url: %q, timeout: 200ms}
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}
servers:
  - name: wiki
    listen: "127.0.0.1:0"
    directory: sample
    failmode: safe
    bind_cache_ttl: 1m
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    failmode: secure
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 1s, probe_interval: 500ms, unreachable_after: 1}
    break_glass:
      users: ["uid=alice,ou=people,dc=example,dc=com"]
      codes_file: %q
`, in.socket, hook.URL, i, f.redis.URL, dir.URL, sampledata.BaseDN, svc.DN(), svc.Password,
			f.wikiSim.APIHost(), f.wikiSim.IntegrationKey(), f.wikiSim.SecretKey(), wikiCA,
			f.vpnSim.APIHost(), f.vpnSim.IntegrationKey(), f.vpnSim.SecretKey(), vpnCA, codes))
		f.inst[i] = in
	}
	return f
}

// serve runs both instances in-process until the test ends.
func (f *fleet) serve(t *testing.T) {
	for _, in := range f.inst {
		logR, logW := io.Pipe()
		go in.addrs.read(logR)
		serveInProcess(t, in.cfg, logW)
	}
	for i, in := range f.inst {
		testutil.WaitFor(t, 10*time.Second, func() bool {
			return in.addrs.get("wiki") != "" && in.addrs.get("vpn") != "" && in.addrs.get("health") != ""
		}, fmt.Sprintf("instance %d's listeners", i))
	}
}

// fleetSection is what the tests read of /status.
type fleetSection struct {
	Name             string     `json:"name"`
	DuoState         string     `json:"duo_state"`
	PrimaryOnlyUntil *time.Time `json:"primary_only_until"`
	StateStore       string     `json:"state_store"`
}

func (f *fleet) status(i int, section string) fleetSection {
	resp, err := http.Get("http://" + f.inst[i].addrs.get("health") + "/status")
	if err != nil {
		return fleetSection{}
	}
	defer resp.Body.Close()
	var st struct{ Sections []fleetSection }
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return fleetSection{}
	}
	for _, s := range st.Sections {
		if s.Name == section {
			return s
		}
	}
	return fleetSection{}
}

func (f *fleet) readyz(t *testing.T, i int) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + f.inst[i].addrs.get("health") + "/readyz?server=wiki")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bind binds as uid to section of instance i with password (+ "," +
// code when code is set) and returns the result code.
func (f *fleet) bind(t *testing.T, i int, section, uid, code string) uint16 {
	t.Helper()
	p, _ := sampledata.Lookup(uid)
	conn, err := ldap.DialURL("ldap://" + f.inst[i].addrs.get(section))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pw := p.Password
	if code != "" {
		pw += "," + code
	}
	if err := conn.Bind(p.DN(), pw); err != nil {
		le, ok := err.(*ldap.Error)
		if !ok {
			t.Fatalf("bind: %v", err)
		}
		return le.ResultCode
	}
	return ldap.LDAPResultSuccess
}

// bindPassword binds with password as given.
func (f *fleet) bindPassword(t *testing.T, i int, section, uid, password string) uint16 {
	t.Helper()
	p, _ := sampledata.Lookup(uid)
	conn, err := ldap.DialURL("ldap://" + f.inst[i].addrs.get(section))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(p.DN(), password); err != nil {
		le, ok := err.(*ldap.Error)
		if !ok {
			t.Fatalf("bind: %v", err)
		}
		return le.ResultCode
	}
	return ldap.LDAPResultSuccess
}

func (f *fleet) want(t *testing.T, what string, i int, section, uid, code string, want uint16) {
	t.Helper()
	if got := f.bind(t, i, section, uid, code); got != want {
		t.Fatalf("%s (instance %d): result %d, want %d", what, i, got, want)
	}
}

// TestFleetSharesState: two instances with one Redis share the push
// budget, the bind cache, break-glass uses and primary-only mode; with
// Redis stopped, break-glass and the cache fail closed, budgets count
// per instance, the outage is alerted and shown, /readyz stays 200; all
// comes back with Redis.
func TestFleetSharesState(t *testing.T) {
	f := startFleet(t)
	alice := sampledata.PersonDN("alice")
	var out strings.Builder
	if err := Run(context.Background(), []string{"break-glass", "issue", "--config", f.inst[0].cfg, "--server", "vpn", "--user", alice, "--count", "3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	codes := strings.Fields(out.String())
	// The codes file is distributed to every instance.
	data, err := os.ReadFile(f.codesA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.codesB, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f.serve(t)
	const ok, denied = ldap.LDAPResultSuccess, ldap.LDAPResultInvalidCredentials

	// A push budget of 3 holds across the fleet: bob denies every push.
	for n := range 6 {
		f.want(t, "bob on wiki", n%2, "wiki", "bob", "", denied)
	}
	if got := f.wikiSim.Calls().Auth; got != 3 {
		t.Fatalf("Duo saw %d pushes for bob's 6 binds on two instances, want 3 (one budget)", got)
	}

	// The bind cache: each instance remembers its own binds (under a key
	// of its own), and a failed bind on any instance evicts them on all.
	pushes := func(want int, what string) {
		t.Helper()
		if got := f.wikiSim.Calls().Auth; got != want {
			t.Fatalf("%s: Duo saw %d pushes in all, want %d", what, got, want)
		}
	}
	f.want(t, "alice on wiki", 0, "wiki", "alice", "", ok)
	f.want(t, "alice on the other instance", 1, "wiki", "alice", "", ok)
	f.want(t, "alice again on instance 0", 0, "wiki", "alice", "", ok)
	pushes(5, "alice's third bind is cached")
	if code := f.bindPassword(t, 1, "wiki", "alice", "wrong"); code != denied {
		t.Fatalf("a wrong password: %d", code)
	}
	f.want(t, "alice on instance 0 after a wrong password on instance 1", 0, "wiki", "alice", "", ok)
	pushes(6, "the wrong password on instance 1 evicted instance 0's entry")

	// A break-glass code used on one instance is refused on the other.
	for i := range f.inst {
		testutil.WaitFor(t, 15*time.Second, func() bool { return f.status(i, "vpn").DuoState == "unreachable" },
			fmt.Sprintf("vpn's duo unreachable on instance %d", i))
	}
	f.want(t, "a code on instance 0", 0, "vpn", "alice", codes[0], ok)
	f.want(t, "the same code on instance 1", 1, "vpn", "alice", codes[0], denied)

	// Primary-only mode enabled on one instance applies to both, with the
	// same expiry, and is announced on each.
	if out, code := runCLI(t, "primary-only", "enable", "--socket", f.inst[0].socket, "--server", "wiki", "--for", "30m"); code != 0 {
		t.Fatalf("enable: %d %s", code, out)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return f.status(1, "wiki").PrimaryOnlyUntil != nil }, "primary-only on instance 1")
	u0, u1 := f.status(0, "wiki").PrimaryOnlyUntil, f.status(1, "wiki").PrimaryOnlyUntil
	if u0 == nil || !u0.Truncate(time.Millisecond).Equal(u1.Truncate(time.Millisecond)) {
		t.Fatalf("primary-only until %v on instance 0, %v on instance 1", u0, u1)
	}
	for i := range f.inst {
		testutil.WaitFor(t, 10*time.Second, func() bool { return f.hooks.count(i, `"kind":"primary_only"`, "enabled") == 1 },
			fmt.Sprintf("the primary_only alert on instance %d", i))
	}
	if out, code := runCLI(t, "primary-only", "disable", "--socket", f.inst[1].socket); code != 0 {
		t.Fatalf("disable: %d %s", code, out)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return f.status(0, "wiki").PrimaryOnlyUntil == nil }, "primary-only off on instance 0")

	// Redis goes away.
	f.redis.Stop()
	for i := range f.inst {
		testutil.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(f.status(i, "wiki").StateStore, "redis unreachable") },
			fmt.Sprintf("instance %d's /status to say redis is unreachable", i))
		testutil.WaitFor(t, 10*time.Second, func() bool { return f.hooks.count(i, `"kind":"state_store"`, "unavailable") == 1 },
			fmt.Sprintf("the state_store alert on instance %d", i))
		if code, body := f.readyz(t, i); code != http.StatusOK || !strings.Contains(body, "redis unreachable") {
			t.Fatalf("instance %d /readyz: %d %s; want 200 naming the state store", i, code, body)
		}
	}
	// Break-glass fails closed: an unused code is refused.
	f.want(t, "an unused code while redis is down", 0, "vpn", "alice", codes[1], denied)
	// The cache fails closed: alice, cached on instance 0, is asked again.
	f.want(t, "alice while redis is down", 0, "wiki", "alice", "", ok)
	pushes(7, "no cache while redis is down")
	// Budgets fall back to each instance's own: bob gets 3 pushes on
	// instance 0, though the fleet's budget is spent.
	for range 4 {
		f.want(t, "bob while redis is down", 0, "wiki", "bob", "", denied)
	}
	pushes(10, "3 more from instance 0's own budget")

	// Redis comes back (empty: the test's has no persistence).
	f.redis.Start()
	for i := range f.inst {
		testutil.WaitFor(t, 10*time.Second, func() bool { return f.status(i, "wiki").StateStore == "redis ok" },
			fmt.Sprintf("instance %d's /status to say redis is back", i))
		testutil.WaitFor(t, 10*time.Second, func() bool { return f.hooks.count(i, `"kind":"state_store"`, "reachable again") == 1 },
			fmt.Sprintf("the state_store recovery alert on instance %d", i))
	}
	f.want(t, "the unused code with redis back", 1, "vpn", "alice", codes[1], ok)
	f.want(t, "that code on the other instance", 0, "vpn", "alice", codes[1], denied)
}
