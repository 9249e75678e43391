package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/redistest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// The worked fleet of the README ("Behind a load balancer"): Debian's
// haproxy in front of two ldapgate instances, each with its own Duo
// simulator. haproxy sends the client address with send-proxy-v2 and asks
// each instance's /readyz?server=fleet (README "Health checks").

// fleetSection is the section every instance of the fleet serves:
// fail-secure, so a bind routed to an instance that lost Duo is refused
// and a test sees it; it trusts PROXY headers from haproxy (127.0.0.1).
var fleetSection = section{
	Name: "fleet", Failmode: "secure", SecureGroups: []string{adminsDN},
	Extra: map[string]any{
		"proxy_protocol": map[string]any{"trusted": []string{"127.0.0.1/32"}},
		// Small, so that the throttle step below is short; counted per
		// client address, as the PROXY header names it.
		"throttle": map[string]any{"per_address": 2, "per_address_window": "10m"},
	},
}

// checkInterval is haproxy's health-check interval in the fleet test.
const checkInterval = 200 * time.Millisecond

// haproxyConfig is the configuration of the README's fleet, on loopback.
var haproxyConfig = template.Must(template.New("haproxy").Parse(`global
    stats socket {{.Stats}} mode 600 level admin
    maxconn 256

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s

frontend ldap
    bind {{.Frontend}}
    default_backend ldapgate

backend ldapgate
    balance roundrobin
    option httpchk GET /readyz?server=fleet
    http-check expect status 200
    default-server inter {{.Inter}} fastinter {{.Inter}} downinter {{.Inter}} fall 2 rise 2
{{- range .Servers}}
    server {{.Name}} {{.Addr}} send-proxy-v2 check port {{.HealthPort}}
{{- end}}
`))

// balancer is a running haproxy.
type balancer struct {
	t        *testing.T
	frontend string // host:port clients connect to
	stats    string // the admin socket
	out      *testutil.SyncBuffer
}

// fleetMember is one backend of the balancer.
type fleetMember struct {
	Name, Addr, HealthPort string
}

// startHAProxy runs haproxy in front of the instances (named a, b, ... in
// order) until the test ends.
func startHAProxy(t *testing.T, instances ...*env) *balancer {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy is not installed (scripts/deps.sh installs it): %v", err)
		}
		bin = "/usr/sbin/haproxy"
	}
	dir := t.TempDir()
	b := &balancer{t: t, frontend: freeLoopbackAddr(t), stats: filepath.Join(dir, "haproxy.sock"), out: &testutil.SyncBuffer{}}
	var members []fleetMember
	for i, e := range instances {
		_, hport, err := net.SplitHostPort(e.health)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, fleetMember{Name: string(rune('a' + i)), Addr: e.addr[fleetSection.Name], HealthPort: hport})
	}
	var cfg strings.Builder
	if err := haproxyConfig.Execute(&cfg, map[string]any{
		"Stats": b.stats, "Frontend": b.frontend, "Inter": fmt.Sprintf("%dms", checkInterval.Milliseconds()), "Servers": members,
	}); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refuses the fleet configuration: %v\n%s\n%s", err, out, cfg.String())
	}
	cmd := exec.Command(bin, "-db", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("haproxy did not stop within 10s of SIGINT")
		}
		if t.Failed() {
			t.Logf("haproxy configuration:\n%s\nhaproxy output:\n%s", cfg.String(), b.out.String())
		}
	})
	testutil.WaitFor(t, 10*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", b.out.String())
		default:
		}
		c, err := net.Dial("unix", b.stats)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "haproxy's stats socket")
	return b
}

// freeLoopbackAddr is a 127.0.0.1 address with a port nobody listens on
// right now (haproxy binds it itself).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// status returns the state haproxy's stats give server name of the
// backend ("UP", "DOWN", "UP 1/2", ...).
func (b *balancer) status(name string) string {
	b.t.Helper()
	c, err := net.DialTimeout("unix", b.stats, 5*time.Second)
	if err != nil {
		b.t.Fatalf("haproxy stats socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		b.t.Fatal(err)
	}
	sc := bufio.NewScanner(c)
	col := -1
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if strings.HasPrefix(sc.Text(), "# ") {
			for i, f := range fields {
				if f == "status" {
					col = i
				}
			}
			continue
		}
		if len(fields) > col && col >= 0 && fields[0] == "ldapgate" && fields[1] == name {
			return fields[col]
		}
	}
	b.t.Fatalf("no server %s in haproxy's stats (%v)", name, sc.Err())
	return ""
}

func (b *balancer) waitStatus(name, want string, within time.Duration) {
	b.t.Helper()
	testutil.WaitFor(b.t, within, func() bool { return b.status(name) == want }, fmt.Sprintf("haproxy to see server %s %s", name, want))
}

// bindFrom binds as dn through the balancer from the local address from.
func (b *balancer) bindFrom(from, dn, password string) error {
	b.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := ldap.DialURL("ldap://"+b.frontend, ldap.DialWithDialer(d))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(3 * pushTimeout)
	return conn.Bind(dn, password)
}

// preauthsFrom counts the preauth requests the simulator got with ipaddr.
func preauthsFrom(sim *duosim.Sim, ipaddr string) int {
	n := 0
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/preauth") && r.IPAddr == ipaddr {
			n++
		}
	}
	return n
}

// TestFleetBehindHAProxy: two ldapgate instances behind haproxy. The
// client's own address reaches Duo as ipaddr through send-proxy-v2; an
// instance whose Duo becomes unreachable leaves the rotation within a few
// health checks while logins through haproxy keep succeeding on the other;
// the throttles count the client addresses, not haproxy's; and the
// instance comes back when its Duo does.
//
// The two share one Redis for the guards' state: a client's failures count
// once, whichever instance saw them.
//
// Both instances run in this process (two start calls, each with its own
// Duo simulator); nothing here needs a process of its own.
func TestFleetBehindHAProxy(t *testing.T) {
	rd := redistest.Start(t)
	shared := withConfig("state", map[string]any{"backend": "redis", "url": rd.URL})
	a := start(t, []section{fleetSection}, withDuo("probe_interval", probeInterval), shared)
	b := start(t, []section{fleetSection}, withDuo("probe_interval", probeInterval), shared)
	lb := startHAProxy(t, a, b)
	lb.waitStatus("a", "UP", 10*time.Second)
	lb.waitStatus("b", "UP", 10*time.Second)
	alice := person(t, "alice")

	// a's Duo goes away before a has answered any login (a login answered
	// within the last minute would veto the probes' evidence). A refused
	// connection counts at once: a is unreachable after its next probe,
	// /readyz?server=fleet answers 503, haproxy takes it out.
	if err := a.duo.SetFault(duosim.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	a.waitDuoState("fleet", "unreachable")
	lb.waitStatus("a", "DOWN", 10*checkInterval)
	if st := lb.status("b"); st != "UP" {
		t.Fatalf("b is %s while a is out", st)
	}

	// Every login lands on b (a secure section: one routed to a would be
	// refused), and b's Duo is asked with the client's own address, not
	// haproxy's 127.0.0.1.
	const logins = 4
	for i := range logins {
		if err := lb.bindFrom("127.0.0.2", alice.DN(), alice.Password); err != nil {
			t.Fatalf("login %d through haproxy with a out of rotation: %v", i, err)
		}
	}
	if n := preauthsFrom(b.duo, "127.0.0.2"); n != logins {
		t.Errorf("b's Duo got %d preauths with ipaddr 127.0.0.2, want %d; requests: %+v", n, logins, b.duo.Requests())
	}
	if n := preauthsFrom(b.duo, "127.0.0.1"); n != 0 {
		t.Errorf("b's Duo got %d preauths with haproxy's address as ipaddr", n)
	}

	// The throttles see the client too: two wrong passwords from 127.0.0.3
	// spend its per_address budget on b, and its right password is then
	// refused before the directory is asked, while 127.0.0.2 (behind the
	// same haproxy) still logs in.
	for range 2 {
		if err := lb.bindFrom("127.0.0.3", alice.DN(), "not-"+alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("wrong password: %v, want 49", err)
		}
	}
	if err := lb.bindFrom("127.0.0.3", alice.DN(), alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("127.0.0.3 after its budget of failures: %v, want 49 (throttled)", err)
	}
	// The record is written after the answer: await it.
	testutil.WaitFor(t, 5*time.Second, func() bool { return hasEvent(b.authEvents(), "127.0.0.3", "throttled") },
		"a throttled bind for client_ip 127.0.0.3 in b's auth log")
	if err := lb.bindFrom("127.0.0.2", alice.DN(), alice.Password); err != nil {
		t.Fatalf("127.0.0.2 throttled with 127.0.0.3: %v", err)
	}

	// a's Duo returns: a rejoins the rotation, and logins reach its Duo
	// with the client's address as well.
	a.healDuo()
	lb.waitStatus("a", "UP", 10*time.Second)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		if err := lb.bindFrom("127.0.0.2", alice.DN(), alice.Password); err != nil {
			t.Fatalf("login with both instances up: %v", err)
		}
		return preauthsFrom(a.duo, "127.0.0.2") > 0
	}, "a login to reach a's Duo with ipaddr 127.0.0.2")

	// The instances share the throttles' counts: one wrong password from
	// 127.0.0.4 on a and one on b spend its per_address budget of 2, so
	// its right password is refused on either (each alone counted one).
	for _, e := range []*env{a, b} {
		if err := bindDirect(e, "127.0.0.4", alice.DN(), "not-"+alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("wrong password: %v, want 49", err)
		}
	}
	if err := bindDirect(a, "127.0.0.4", alice.DN(), alice.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("127.0.0.4 after one failure on each instance: %v, want 49 (throttled by the shared count)", err)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return hasEvent(a.authEvents(), "127.0.0.4", "throttled") },
		"a throttled bind for client_ip 127.0.0.4 in a's auth log")
}

// bindDirect binds on the instance's fleet section itself, not through
// the balancer, from the local address from (no PROXY header: the
// instance trusts only 127.0.0.1's).
func bindDirect(e *env, from, dn, password string) error {
	e.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := ldap.DialURL("ldap://"+e.addr["fleet"], ldap.DialWithDialer(d))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(3 * pushTimeout)
	return conn.Bind(dn, password)
}

// hasEvent reports whether an auth-log record has client_ip ip and rule.
func hasEvent(events []map[string]any, ip, rule string) bool {
	for _, ev := range events {
		if ev["client_ip"] == ip && ev["rule"] == rule {
			return true
		}
	}
	return false
}
