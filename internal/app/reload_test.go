package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// prog is the whole program running in this process (Run serve) against a
// real slapd and the Duo simulator, with its configuration in a file the
// test rewrites and reloads through the admin socket. Every listener is on
// port 0; addresses come from the JSON log.
type prog struct {
	t       *testing.T
	sim     *duosim.Sim
	dirURL  string
	ca      string
	tmp     string
	cfgPath string
	authLog string
	socket  string
	addrs   *logAddrs
	logs    *testutil.SyncBuffer
	cancel  context.CancelFunc
	done    chan error
}

// sec is one server section of a test configuration.
type sec struct {
	name, failmode string
	listen         string // default 127.0.0.1:0
	extra          string // more YAML keys of the section, one line, "k: v, k: v"
	duoExtra       string // more keys of its duo block
}

func startProg(t *testing.T, top string, secs ...sec) *prog {
	t.Helper()
	dir := slapdtest.Start(t)
	var users []duosim.User
	for _, p := range sampledata.People {
		users = append(users, duosim.User{Name: p.UID, Behavior: duosim.Behavior(p.DuoBehavior), Passcodes: p.Passcodes})
	}
	sim, err := duosim.New(duosim.Options{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	tmp := t.TempDir()
	p := &prog{t: t, sim: sim, dirURL: dir.URL, tmp: tmp, ca: filepath.Join(tmp, "ca.pem"),
		cfgPath: filepath.Join(tmp, "config.yaml"), authLog: filepath.Join(tmp, "auth.log"),
		socket: filepath.Join(tmp, "admin.sock"), addrs: &logAddrs{addrs: map[string]string{}},
		logs: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	if err := os.WriteFile(p.ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p.write(top, secs...)

	logR, logW := io.Pipe()
	go p.addrs.read(io.TeeReader(logR, p.logs))
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	finished := make(chan struct{})
	go func() {
		p.done <- Run(ctx, []string{"serve", "--config", p.cfgPath}, io.Discard, logW)
		logW.Close()
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("the program did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("log:\n%s", p.logs.String())
		}
	})
	for _, s := range secs {
		testutil.WaitFor(t, 10*time.Second, func() bool { return p.addrs.get(s.name) != "" }, s.name+" to listen")
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return sim.Calls().Check >= 1 }, "the start-up Duo probe")
	return p
}

// write writes the configuration file: top-level keys (YAML lines) and the
// sections.
func (p *prog) write(top string, secs ...sec) {
	p.t.Helper()
	svc, _ := sampledata.LookupService("ldapgate")
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: info, format: json}\nauth_log: %q\nadmin: {socket: %q}\n%s\n", p.authLog, p.socket, top)
	fmt.Fprintf(&b, "directories:\n  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}\nservers:\n",
		p.dirURL, sampledata.BaseDN, svc.DN(), svc.Password)
	for _, s := range secs {
		listen := s.listen
		if listen == "" {
			// port 0 on an address of its own: two sections may not
			// share a listen value
			listen = map[string]string{"vpn": "127.0.0.1:0", "wiki": "127.0.0.2:0"}[s.name]
		}
		extra := ""
		if s.extra != "" {
			extra = ", " + s.extra
		}
		duoExtra := ""
		if s.duoExtra != "" {
			duoExtra = ", " + s.duoExtra
		}
		// max_pushes: the tests push for alice from four clients at once.
		fmt.Fprintf(&b, "  - {name: %s, listen: %q, directory: sample, failmode: %s%s,\n     duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 1s, push_timeout: 10s, probe_interval: 500ms, max_pushes: 8%s}}\n",
			s.name, listen, s.failmode, extra, p.sim.APIHost(), p.sim.IntegrationKey(), p.sim.SecretKey(), p.ca, duoExtra)
	}
	if err := os.WriteFile(p.cfgPath, []byte(b.String()), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// reload asks the program to reload over the admin socket.
func (p *prog) reload() (admin.Response, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return admin.Call(ctx, p.socket, admin.Request{Op: admin.OpReload})
}

func (p *prog) mustReload() string {
	p.t.Helper()
	resp, err := p.reload()
	if err != nil || resp.Reload == nil {
		p.t.Fatalf("reload: %v (%+v)", err, resp)
	}
	return resp.Reload.Changes
}

func (p *prog) dial(name string) *ldap.Conn {
	p.t.Helper()
	conn, err := ldap.DialURL("ldap://"+p.addrs.get(name), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		p.t.Fatalf("dial %s: %v", name, err)
	}
	conn.SetTimeout(20 * time.Second)
	p.t.Cleanup(func() { conn.Close() })
	return conn
}

// events is the auth log's records of one event kind ("" for binds).
func (p *prog) events(path, kind string) []map[string]any {
	p.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		p.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(data, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if ev, _ := m["event"].(string); ev == kind {
			out = append(out, m)
		}
	}
	return out
}

func refuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// TestReloadKeepsBindsFlowing: binds from several clients run across a
// valid reload (a section added), an invalid one (kept, problems returned)
// and another valid one; not one of them fails. Each reload is one
// auth-log notice.
func TestReloadKeepsBindsFlowing(t *testing.T) {
	p := startProg(t, "", sec{name: "vpn", failmode: "secure"})
	alice, _ := sampledata.Lookup("alice")
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	addr := p.addrs.get("vpn")
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 10000; i++ { // bounded; stopped far earlier
				select {
				case <-stop:
					return
				default:
				}
				// a new connection per bind, and one bind each: a
				// connection accepted by the old settings must work too
				conn, err := ldap.DialURL("ldap://" + addr)
				if err == nil {
					err = conn.Bind(alice.DN(), alice.Password)
					conn.Close()
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					ok.Add(1)
				}
			}
		})
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return ok.Load() >= 20 }, "binds before the reload")

	p.write("", sec{name: "vpn", failmode: "secure"}, sec{name: "wiki", failmode: "safe"})
	if ch := p.mustReload(); !strings.Contains(ch, "sections added: wiki") {
		t.Errorf("changes %q, want the added section", ch)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return p.addrs.get("wiki") != "" }, "wiki to listen")
	before := ok.Load()
	testutil.WaitFor(t, 10*time.Second, func() bool { return ok.Load() >= before+20 }, "binds after the first reload")

	p.write("", sec{name: "vpn", failmode: "bogus"}, sec{name: "wiki", failmode: "safe"})
	resp, err := p.reload()
	if !errors.Is(err, admin.ErrRefused) || resp.Reload == nil || len(resp.Reload.Problems) != 1 ||
		!strings.HasPrefix(resp.Reload.Problems[0], "servers[0].failmode:") {
		t.Fatalf("invalid reload: %v, %+v; want refused naming servers[0].failmode", err, resp.Reload)
	}
	before = ok.Load()
	testutil.WaitFor(t, 10*time.Second, func() bool { return ok.Load() >= before+20 }, "binds after the refused reload")

	p.write("", sec{name: "vpn", failmode: "secure", extra: "exempt_dns: [\"ou=services,dc=example,dc=com\"]"}, sec{name: "wiki", failmode: "safe"})
	if ch := p.mustReload(); !strings.Contains(ch, "sections changed: vpn") {
		t.Errorf("changes %q, want vpn changed", ch)
	}
	before = ok.Load()
	testutil.WaitFor(t, 10*time.Second, func() bool { return ok.Load() >= before+20 }, "binds after the last reload")
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d binds failed across the reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	notices := p.events(p.authLog, "reload")
	if len(notices) != 3 {
		t.Fatalf("%d reload notices in the auth log, want 3: %v", len(notices), notices)
	}
	if msg, _ := notices[1]["msg"].(string); !strings.Contains(msg, "not reloaded") || !strings.Contains(msg, "servers[0].failmode") {
		t.Errorf("the refused reload's notice %q does not name the problem", msg)
	}
}

// TestReloadMovesAndRemovesSections: a removed section's connection ends
// its bind in flight (a push being approved) with its real answer, then is
// closed, and the address refuses; a moved section serves on its new
// address while the old one refuses.
func TestReloadMovesAndRemovesSections(t *testing.T) {
	p := startProg(t, "", sec{name: "vpn", failmode: "secure"}, sec{name: "wiki", failmode: "secure"})
	alice, _ := sampledata.Lookup("alice")
	oldVPN, wikiAddr := p.addrs.get("vpn"), p.addrs.get("wiki")

	p.sim.SetPushDelay(2 * time.Second)
	wiki := p.dial("wiki")
	bindErr := make(chan error, 1)
	go func() { bindErr <- wiki.Bind(alice.DN(), alice.Password) }()
	testutil.WaitFor(t, 10*time.Second, func() bool { return p.sim.Calls().Auth >= 1 }, "the push to start")

	p.write("", sec{name: "vpn", failmode: "secure", listen: "127.0.0.3:0"}) // wiki removed, vpn moved
	ch := p.mustReload()
	if !strings.Contains(ch, "sections removed: wiki") || !strings.Contains(ch, "sections moved: vpn") {
		t.Errorf("changes %q", ch)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return p.addrs.get("vpn") != oldVPN }, "vpn to listen on its new address")
	testutil.WaitFor(t, 10*time.Second, func() bool { return refuses(wikiAddr) && refuses(oldVPN) },
		"the removed and the moved-away addresses to refuse")
	if err := <-bindErr; err != nil {
		t.Fatalf("the bind in flight on the removed section: %v, want its push's answer", err)
	}
	// then its connection is closed
	testutil.WaitFor(t, 10*time.Second, func() bool {
		_, err := wiki.WhoAmI(nil)
		return err != nil
	}, "the removed section's connection to close")
	p.sim.SetPushDelay(0)
	if err := p.dial("vpn").Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind on the moved section's new address: %v", err)
	}
}

// TestReloadKeepsDuoState: an integration whose settings did not change
// keeps its health state across a reload (no new announcement); its state
// stays unreachable while Duo is.
func TestReloadKeepsDuoState(t *testing.T) {
	p := startProg(t, "health: {listen: \"127.0.0.1:0\"}", sec{name: "vpn", failmode: "secure"})
	// 5xx to every call: probes still reach the simulator, so they can be
	// counted after the reload
	if err := p.sim.SetFault(duosim.FaultServerError); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(p.events(p.authLog, "duo_state")) == 1 }, "duo to be announced unreachable")
	p.write("health: {listen: \"127.0.0.1:0\"}", sec{name: "vpn", failmode: "secure",
		extra: "exempt_dns: [\"ou=services,dc=example,dc=com\"]"})
	ch := p.mustReload()
	if strings.Contains(ch, "duo integrations") {
		t.Errorf("changes %q: the unchanged integration was rebuilt", ch)
	}
	// Probes run every second while down: let three run, in which a fresh
	// state (a new tracker starts "ok") would have announced itself.
	checks := p.sim.Calls().Check
	testutil.WaitFor(t, 15*time.Second, func() bool { return p.sim.Calls().Check >= checks+3 }, "three probes after the reload")
	if evs := p.events(p.authLog, "duo_state"); len(evs) != 1 {
		t.Fatalf("%d duo_state announcements, want only the first: %v", len(evs), evs)
	}
	if got := p.duoState("vpn"); got != "unreachable" {
		t.Fatalf("duo state %q after the reload, want unreachable", got)
	}
}

// duoState is a section's Duo state as /status says it.
func (p *prog) duoState(name string) string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.addrs.get("health") + "/status")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Sections []struct {
			Name     string `json:"name"`
			DuoState string `json:"duo_state"`
		} `json:"sections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		p.t.Fatal(err)
	}
	for _, s := range st.Sections {
		if s.Name == name {
			return s.DuoState
		}
	}
	return ""
}

// TestReloadKeepsPrimaryOnly: primary-only mode stays on across a reload
// for a section that is still safe, and goes off when it turns secure.
func TestReloadKeepsPrimaryOnly(t *testing.T) {
	p := startProg(t, "", sec{name: "wiki", failmode: "safe"}, sec{name: "vpn", failmode: "secure"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.Call(ctx, p.socket, admin.Request{Op: admin.OpEnable, Servers: []string{"wiki"}, For: "30m"}); err != nil {
		t.Fatal(err)
	}
	on := func() bool {
		resp, err := admin.Call(ctx, p.socket, admin.Request{Op: admin.OpStatus, Servers: []string{"wiki"}})
		if err != nil {
			t.Fatal(err)
		}
		return !resp.PrimaryOnly[0].Until.IsZero()
	}
	p.write("", sec{name: "wiki", failmode: "safe", extra: "exempt_primary_bind: true"}, sec{name: "vpn", failmode: "secure"})
	p.mustReload()
	if !on() {
		t.Fatal("primary-only mode went off on a reload that kept wiki safe")
	}
	p.write("", sec{name: "wiki", failmode: "secure"}, sec{name: "vpn", failmode: "secure"})
	p.mustReload()
	if on() {
		t.Fatal("primary-only mode stayed on for a section the reload made secure")
	}
}

// TestReloadCommand: `ldapgate reload` prints what changed, or the
// problems with exit status 1 while the running configuration stays.
func TestReloadCommand(t *testing.T) {
	p := startProg(t, "", sec{name: "vpn", failmode: "secure"})
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"reload", "--socket", p.socket}, &out, &errOut); err != nil {
		t.Fatalf("reload of an unchanged file: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "configuration reloaded: no changes") {
		t.Errorf("printed %q", out.String())
	}
	p.write("", sec{name: "vpn", failmode: "bogus"})
	out.Reset()
	err := Run(context.Background(), []string{"reload", "--socket", p.socket}, &out, &errOut)
	if err == nil || ExitCode(err) == 0 {
		t.Fatalf("reload of an invalid file: %v, want a non-zero exit", err)
	}
	if !strings.Contains(errOut.String(), "servers[0].failmode: must be safe or secure") {
		t.Errorf("printed %q, want the problem with its key path", errOut.String())
	}
	alice, _ := sampledata.Lookup("alice")
	if err := p.dial("vpn").Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind after the refused reload: %v", err)
	}
}

// TestReloadReopensAuthLog: after the auth log is renamed, a reload makes
// new records land in a new file at the configured path.
func TestReloadReopensAuthLog(t *testing.T) {
	p := startProg(t, "", sec{name: "vpn", failmode: "secure"})
	alice, _ := sampledata.Lookup("alice")
	if err := p.dial("vpn").Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return len(p.events(p.authLog, "")) == 1 }, "the bind's record")
	rotated := p.authLog + ".1"
	if err := os.Rename(p.authLog, rotated); err != nil {
		t.Fatal(err)
	}
	p.mustReload()
	if err := p.dial("vpn").Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return len(p.events(p.authLog, "")) == 1 }, "the new bind's record in the new file")
	if n := len(p.events(rotated, "")); n != 1 {
		t.Fatalf("the rotated file has %d bind records, want only the first", n)
	}
}

// TestStopLetsPushFinish: when the program is told to stop, a bind waiting
// for a push ends with the push's answer and the program returns nil; with
// shutdown_timeout shorter than the push, the bind is cut at the timeout
// and the program still returns nil, within it.
func TestStopLetsPushFinish(t *testing.T) {
	for _, c := range []struct {
		name     string
		top      string
		push     time.Duration
		wantBind bool
		within   time.Duration
	}{
		{"push answered", "", 2 * time.Second, true, 15 * time.Second},
		{"cut at shutdown_timeout", "shutdown_timeout: 1s", 8 * time.Second, false, 6 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProg(t, c.top, sec{name: "vpn", failmode: "secure"})
			alice, _ := sampledata.Lookup("alice")
			p.sim.SetPushDelay(c.push)
			conn := p.dial("vpn")
			bindErr := make(chan error, 1)
			go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
			testutil.WaitFor(t, 10*time.Second, func() bool { return p.sim.Calls().Auth >= 1 }, "the push to start")
			begin := time.Now()
			p.cancel()
			select {
			case err := <-p.done:
				if err != nil {
					t.Fatalf("the program returned %v", err)
				}
			case <-time.After(c.within):
				t.Fatalf("the program did not stop within %s", c.within)
			}
			err := <-bindErr
			if c.wantBind && err != nil {
				t.Fatalf("the pending push's bind: %v, want its answer (approved)", err)
			}
			if !c.wantBind {
				if err == nil {
					t.Fatal("a bind cut at shutdown_timeout succeeded")
				}
				if took := time.Since(begin); took < time.Second {
					t.Fatalf("stopped after %s, before shutdown_timeout", took)
				}
			}
		})
	}
}

// TestReloadRereadsCertificates: a reload (what SIGHUP does) re-reads the
// certificate of a section's LDAPS listener at once, even within
// CertCheckInterval, when a handshake alone would still present the old
// one; connections already established keep theirs.
func TestReloadRereadsCertificates(t *testing.T) {
	ca := testca.New(t, "reload test CA")
	certDir := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, certDir, "gate")
	p := startProg(t, "", sec{name: "vpn", failmode: "secure",
		extra: fmt.Sprintf(`ldaps_listen: "127.0.0.1:0", tls: {cert_file: %q, key_file: %q}`, certFile, keyFile)})
	testutil.WaitFor(t, 10*time.Second, func() bool { return p.addrs.get("vpn/ldaps") != "" }, "the LDAPS listener")
	dial := func() *ldap.Conn {
		t.Helper()
		conn, err := ldap.DialURL("ldaps://"+p.addrs.get("vpn/ldaps"),
			ldap.DialWithTLSConfig(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	serial := func() *big.Int {
		t.Helper()
		conn := dial()
		defer conn.Close()
		st, _ := conn.TLSConnectionState()
		return st.PeerCertificates[0].SerialNumber
	}
	before := serial()
	established := dial()
	next := ca.Loopback(t)
	next.Write(t, certDir, "gate")
	if got := serial(); got.Cmp(before) != 0 {
		t.Fatalf("the new certificate was served before any reload (serial %s): the test proves nothing within %s", got, config.CertCheckInterval)
	}
	p.mustReload()
	if got := serial(); got.Cmp(next.Leaf.SerialNumber) != 0 {
		t.Fatalf("after the reload the LDAPS listener serves serial %s, want the new %s", got, next.Leaf.SerialNumber)
	}
	alice, _ := sampledata.Lookup("alice")
	if err := established.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("the session established before the reload: %v", err)
	}
}
