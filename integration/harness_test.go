package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// gateBin is the ldapgate binary under test, built once by TestMain with the
// race detector so that the integration tests also hunt data races.
var gateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ldapgate-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gateBin = filepath.Join(dir, "ldapgate")
	build := exec.Command("go", "build", "-race", "-o", gateBin, "../cmd/ldapgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ldapgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// section is one server section of a test configuration.
type section struct {
	Name              string
	Failmode          string
	SecureGroups      []string
	ExemptDNs         []string
	ExemptPrimaryBind bool
	AllowAnonymous    bool
	Delimiter         *string
	Factor            string
	// NoLookupAccount leaves bind_dn out of the directory (separate directory).
	NoLookupAccount bool
	// TLS gives the section a certificate for StartTLS; RequireTLS demands it.
	TLS, RequireTLS bool
	MaxConnections  int
	// Extra sets any other keys of the section (max_connections_per_ip...).
	Extra map[string]any
}

var (
	adminsDN = sampledata.GroupDN(sampledata.AdminGroup)
	appDN    = sampledata.ServiceDN("app")
)

// safeSection and secureSection are the two sections most tests use.
var (
	secureSection = section{Name: "secure", Failmode: "secure", SecureGroups: []string{adminsDN}}
	safeSection   = section{Name: "safe", Failmode: "safe", SecureGroups: []string{adminsDN}, ExemptDNs: []string{appDN}}
)

// Timeouts of the Duo calls in tests: short, so hangs cost little.
const (
	duoTimeout  = time.Second
	pushTimeout = 2 * time.Second
)

// env is one running world: slapd, the Duo simulator, ldapgate.
type env struct {
	t           *testing.T
	slapd       *slapdtest.Server
	duo         *duosim.Sim
	addr        map[string]string // section name → host:port
	authLog     string
	health      string // host:port of the health listener
	adminSocket string
	cmd         *exec.Cmd
	stderr      *testutil.SyncBuffer
	exited      chan struct{}
	// nofile, when > 0, is the descriptor limit ldapgate runs under.
	nofile int
}

// setup is what options may change before the world starts.
type setup struct {
	slapd []slapdtest.Option
	cfg   map[string]any // the generated configuration, before it is written
	duo   map[string]any // extra keys for every section's duo block
	// lameDuck is health.lame_duck.
	lameDuck time.Duration
	// lookupPassword, when set, replaces the lookup account's password.
	lookupPassword string
	// nofile is withNoFile's limit.
	nofile int
	// dirKeys are extra keys for every directory block (nested_groups...).
	dirKeys map[string]any
}

// withDirectory sets a key of every directory block.
func withDirectory(key string, value any) option {
	return func(s *setup) { s.dirKeys[key] = value }
}

// withNoFile runs ldapgate under RLIMIT_NOFILE n, soft and hard alike (Go
// raises its soft limit to the hard one at start), through util-linux's
// prlimit, so a test can run the process out of descriptors.
func withNoFile(n int) option {
	return func(s *setup) { s.nofile = n }
}

// withLookupPassword gives the lookup account a password of the test's
// choosing (a wrong one, to see the directory refuse it).
func withLookupPassword(pw string) option {
	return func(s *setup) { s.lookupPassword = pw }
}

// withLameDuck sets health.lame_duck.
func withLameDuck(d time.Duration) option {
	return func(s *setup) { s.lameDuck = d }
}

// withDuo sets a key of every section's duo block (probe_interval...).
func withDuo(key string, value any) option {
	return func(s *setup) { s.duo[key] = value }
}

type option func(*setup)

// withConfig sets a top-level key of the generated configuration.
func withConfig(key string, value any) option {
	return func(s *setup) { s.cfg[key] = value }
}

// withSlapd passes options to the directory under test.
func withSlapd(opts ...slapdtest.Option) option {
	return func(s *setup) { s.slapd = append(s.slapd, opts...) }
}

// start brings up slapd, the simulator and ldapgate with the given sections.
func start(t *testing.T, sections []section, opts ...option) *env {
	t.Helper()
	e := &env{t: t, addr: map[string]string{}, stderr: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	su := &setup{cfg: map[string]any{}, duo: map[string]any{}, dirKeys: map[string]any{}}
	for _, o := range opts {
		o(su)
	}
	e.slapd = slapdtest.Start(t, su.slapd...)
	users := make([]duosim.User, 0, len(sampledata.People))
	for _, p := range sampledata.People {
		users = append(users, duosim.User{Name: p.UID, Behavior: duosim.Behavior(p.DuoBehavior), Passcodes: p.Passcodes})
	}
	sim, err := duosim.New(duosim.Options{Users: users})
	if err != nil {
		t.Fatalf("duo simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	e.duo = sim

	dir := t.TempDir()
	caFile := filepath.Join(dir, "duo-ca.pem")
	if err := os.WriteFile(caFile, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.authLog = filepath.Join(dir, "auth.log")
	e.health = testutil.FreeAddr(t)

	directory := func(lookup bool) map[string]any {
		d := map[string]any{
			"urls":               []string{e.slapd.URL},
			"timeout":            "2s",
			"base_dn":            sampledata.BaseDN,
			"username_attribute": "uid",
			"user_filter":        "(|(uid={username})(mail={name}))",
			"group_filter":       "(&(objectClass=groupOfNames)(member={dn}))",
		}
		for k, v := range su.dirKeys {
			d[k] = v
		}
		if lookup {
			svc, _ := sampledata.LookupService("ldapgate")
			d["bind_dn"] = svc.DN()
			d["bind_password"] = svc.Password
			if su.lookupPassword != "" {
				d["bind_password"] = su.lookupPassword
			}
		}
		return d
	}
	var servers []map[string]any
	for _, s := range sections {
		addr := testutil.FreeAddr(t)
		e.addr[s.Name] = addr
		dirName := "sample"
		if s.NoLookupAccount {
			dirName = "nolookup"
		}
		duo := map[string]any{
			"api_host":        sim.APIHost(),
			"integration_key": sim.IntegrationKey(),
			"secret_key":      sim.SecretKey(),
			"ca_file":         caFile,
			"timeout":         duoTimeout.String(),
			"push_timeout":    pushTimeout.String(),
		}
		for k, v := range su.duo {
			duo[k] = v
		}
		srv := map[string]any{
			"name":                s.Name,
			"listen":              addr,
			"directory":           dirName,
			"duo":                 duo,
			"failmode":            s.Failmode,
			"exempt_primary_bind": s.ExemptPrimaryBind,
			"allow_anonymous":     s.AllowAnonymous,
		}
		if len(s.SecureGroups) > 0 {
			srv["secure_groups"] = s.SecureGroups
		}
		if len(s.ExemptDNs) > 0 {
			srv["exempt_dns"] = s.ExemptDNs
		}
		if s.Delimiter != nil {
			srv["passcode_delimiter"] = *s.Delimiter
		}
		if s.Factor != "" {
			srv["factor"] = s.Factor
		}
		if s.MaxConnections > 0 {
			srv["max_connections"] = s.MaxConnections
		}
		for k, v := range s.Extra {
			srv[k] = v
		}
		if s.TLS {
			cert, key := writeCert(t, dir)
			srv["tls"] = map[string]any{"cert_file": cert, "key_file": key, "require": s.RequireTLS}
		}
		servers = append(servers, srv)
	}
	e.adminSocket = filepath.Join(dir, "admin.sock")
	cfg := map[string]any{
		"log":         map[string]any{"level": "debug", "format": "json"},
		"auth_log":    e.authLog,
		"health":      map[string]any{"listen": e.health, "lame_duck": su.lameDuck.String()},
		"admin":       map[string]any{"socket": e.adminSocket},
		"directories": map[string]any{"sample": directory(true), "nolookup": directory(false)},
		"servers":     servers,
	}
	for k, v := range su.cfg {
		cfg[k] = v
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e.nofile = su.nofile
	e.startGate(cfgFile)
	return e
}

func (e *env) startGate(cfgFile string) {
	t := e.t
	cmd := exec.Command(gateBin, "serve", "--config", cfgFile)
	if e.nofile > 0 {
		// prlimit execs the binary: the PID stays ldapgate's.
		cmd = exec.Command("prlimit", fmt.Sprintf("--nofile=%d:%d", e.nofile, e.nofile), "--", gateBin, "serve", "--config", cfgFile)
	}
	cmd.Stderr = e.stderr
	cmd.Stdout = e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd = cmd
	go func() { _ = cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-e.exited
			t.Errorf("ldapgate did not stop within 10s of SIGINT")
		}
		if t.Failed() {
			t.Logf("ldapgate output:\n%s", e.stderr.String())
		}
		if strings.Contains(e.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in ldapgate:\n%s", e.stderr.String())
		}
	})
	for name, addr := range e.addr {
		e.waitListening(name, addr)
	}
	e.waitListening("health", e.health)
	// The Duo state machine probes once at start; let that happen before a
	// test switches the simulator into a fault, so every test starts from
	// a known "ok".
	testutil.WaitFor(e.t, 10*time.Second, func() bool { return e.duo.Calls().Check >= 1 }, "the start-up Duo probe")
}

// healDuo clears the simulator's fault and waits until no section sees Duo
// as down (a probe has succeeded), so that the next step does not inherit
// an outage the previous one caused. Degraded may linger for the latency
// window; binds still reach Duo then, so it does not matter here.
func (e *env) healDuo() {
	e.t.Helper()
	if err := e.duo.SetFault(duosim.FaultNone); err != nil {
		e.t.Fatal(err)
	}
	for name := range e.addr {
		testutil.WaitFor(e.t, 10*time.Second, func() bool {
			st := e.duoState(name)
			return st == "ok" || st == "degraded"
		}, "duo to be reachable again for "+name)
	}
}

func (e *env) waitListening(name, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-e.exited:
			e.t.Fatalf("ldapgate exited before section %s listened:\n%s", name, e.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("section %s never listened on %s:\n%s", name, addr, e.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial opens a client connection to a section.
func (e *env) dial(sectionName string) *ldap.Conn {
	e.t.Helper()
	addr, ok := e.addr[sectionName]
	if !ok {
		e.t.Fatalf("no section %q", sectionName)
	}
	conn, err := ldap.DialURL("ldap://"+addr, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		e.t.Fatalf("dial %s: %v", sectionName, err)
	}
	conn.SetTimeout(3 * pushTimeout)
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// bind binds on a fresh connection and closes it.
func (e *env) bind(sectionName, name, password string) error {
	e.t.Helper()
	conn := e.dial(sectionName)
	defer conn.Close()
	_, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: name, Password: password, AllowEmptyPassword: true})
	return err
}

// code is the LDAP result code of err.
var code = testutil.ResultCode

// authEvents returns the auth log's records.
func (e *env) authEvents() []map[string]any {
	e.t.Helper()
	data, err := os.ReadFile(e.authLog)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(line, &m); err != nil {
			e.t.Fatalf("auth log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// lastEvent waits for the auth log to hold n records and returns the last.
func (e *env) waitEvents(n int) []map[string]any {
	e.t.Helper()
	var evs []map[string]any
	testutil.WaitFor(e.t, 5*time.Second, func() bool { evs = e.authEvents(); return len(evs) >= n }, "auth log records")
	return evs
}

// openFDs counts the ldapgate process's open file descriptors.
func (e *env) openFDs() int {
	e.t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.cmd.Process.Pid))
	if err != nil {
		e.t.Fatalf("reading ldapgate's fds: %v", err)
	}
	return len(entries)
}

func person(t testing.TB, uid string) sampledata.Person {
	t.Helper()
	p, ok := sampledata.Lookup(uid)
	if !ok {
		t.Fatalf("no sample person %q", uid)
	}
	return p
}
