package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/app"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// Most tests run ldapgate in this process, with app.Run, against one slapd
// shared by the package, one after the other. Tests that need ldapgate as
// a process of its own (its /proc entry, a descriptor limit, a signal:
// withProcess) run the binary; tests that change, stop or specially
// configure the directory (withSlapd, withOwnSlapd) get a slapd of their
// own. Tests that spend their time waiting on timers (Duo timeouts, probe
// intervals, a lame-duck delay) start with startParallel, and wait
// alongside each other once the serial tests are done.

var (
	// gateBin is the ldapgate binary, built with the race detector by
	// gateBinary the first time a test needs it.
	gateBin  string
	gateDir  string
	gateErr  error
	gateOnce sync.Once

	// shared is the slapd of every test without withSlapd/withOwnSlapd,
	// started by sharedSlapd on first use and stopped by TestMain.
	shared     *slapdtest.Server
	sharedStop func()
	sharedErr  error
	sharedOnce sync.Once
)

// minParallel is how many parallel tests run at once unless -parallel says
// otherwise. They wait on timers, not on the CPU, so the default (GOMAXPROCS,
// 2 on a small machine) would leave them queueing behind one another.
const minParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if p := flag.Lookup("test.parallel"); !set && p != nil && p.Value.(flag.Getter).Get().(int) < minParallel {
		_ = p.Value.Set(strconv.Itoa(minParallel))
	}
	code := m.Run()
	if sharedStop != nil {
		sharedStop()
	}
	if gateDir != "" {
		os.RemoveAll(gateDir)
	}
	os.Exit(code)
}

// gateBinary returns the ldapgate binary, building it with the race
// detector (so that the process tests hunt data races too) on first use.
func gateBinary(t testing.TB) string {
	t.Helper()
	gateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ldapgate-it-")
		if err != nil {
			gateErr = err
			return
		}
		gateDir = dir
		bin := filepath.Join(dir, "ldapgate")
		out, err := exec.Command("go", "build", "-race", "-o", bin, "../cmd/ldapgate").CombinedOutput()
		if err != nil {
			gateErr = fmt.Errorf("building ldapgate: %v\n%s", err, out)
			return
		}
		gateBin = bin
	})
	if gateErr != nil {
		t.Fatal(gateErr)
	}
	return gateBin
}

// sharedSlapd returns the package's shared slapd, starting it on first use.
// Tests using it only read the directory: what one test wrote, or a stop,
// would be seen by the next.
func sharedSlapd(t testing.TB) *slapdtest.Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedStop, sharedErr = slapdtest.Launch() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
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
	t *testing.T
	// slapd is the package's shared server unless the test asked for its
	// own (withSlapd, withOwnSlapd): only then may it write to it or stop it.
	slapd   *slapdtest.Server
	duo     *duosim.Sim
	addr    map[string]string // section name → host:port
	authLog string
	health  string // host:port of the health listener
	// adminSocket is a path in the test's directory.
	adminSocket string
	// cmd is the ldapgate process with withProcess, nil when ldapgate runs
	// in this process; use proc.
	cmd *exec.Cmd
	// stderr is everything ldapgate wrote: its JSON log (and, as a
	// process, its stdout).
	stderr *testutil.SyncBuffer
	log    *gateLog
	exited chan struct{} // closed once ldapgate has stopped
	// nofile, when > 0, is the descriptor limit ldapgate runs under.
	nofile int
}

// setup is what options may change before the world starts.
type setup struct {
	slapd []slapdtest.Option
	// ownSlapd gives the test a slapd of its own (withSlapd, withOwnSlapd).
	ownSlapd bool
	// process runs ldapgate as a process of its own (withProcess).
	process bool
	cfg     map[string]any // the generated configuration, before it is written
	duo     map[string]any // extra keys for every section's duo block
	// lameDuck is health.lame_duck.
	lameDuck time.Duration
	// lookupPassword, when set, replaces the lookup account's password.
	lookupPassword string
	// nofile is withNoFile's limit.
	nofile int
	// dirKeys are extra keys for every directory block (nested_groups...).
	dirKeys map[string]any
	// duoHTTP1 makes the simulator offer HTTP/1.1 alone (withDuoHTTP1).
	duoHTTP1 bool
}

// withProcess runs ldapgate as a process of its own, the race-enabled
// binary, rather than in this one: for tests that read its /proc entry
// (descriptors, memory, CPU), signal it or limit it. proc fails a test
// that needs it without this option.
func withProcess() option {
	return func(s *setup) { s.process = true }
}

// withOwnSlapd gives the test a slapd of its own instead of the shared
// one: for tests that write to the directory, or stop or pause it.
func withOwnSlapd() option {
	return func(s *setup) { s.ownSlapd = true }
}

// withDirectory sets a key of every directory block.
func withDirectory(key string, value any) option {
	return func(s *setup) { s.dirKeys[key] = value }
}

// withNoFile runs ldapgate under RLIMIT_NOFILE n, soft and hard alike (Go
// raises its soft limit to the hard one at start), through util-linux's
// prlimit, so a test can run the process out of descriptors. It implies
// withProcess.
func withNoFile(n int) option {
	return func(s *setup) { s.nofile, s.process = n, true }
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

// withDuoHTTP1 makes the Duo simulator offer HTTP/1.1 alone, as an
// endpoint without HTTP/2 does: every call in flight then dials a
// connection of its own.
func withDuoHTTP1() option {
	return func(s *setup) { s.duoHTTP1 = true }
}

// withConfig sets a top-level key of the generated configuration.
func withConfig(key string, value any) option {
	return func(s *setup) { s.cfg[key] = value }
}

// withSlapd passes options to the directory under test, which is then the
// test's own.
func withSlapd(opts ...slapdtest.Option) option {
	return func(s *setup) { s.slapd, s.ownSlapd = append(s.slapd, opts...), true }
}

// start brings up slapd, the simulator and ldapgate with the given sections.
func start(t *testing.T, sections []section, opts ...option) *env {
	t.Helper()
	e := &env{t: t, addr: map[string]string{}, stderr: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	e.log = &gateLog{out: e.stderr, addrs: map[string]string{}}
	su := &setup{cfg: map[string]any{}, duo: map[string]any{}, dirKeys: map[string]any{}}
	for _, o := range opts {
		o(su)
	}
	if su.ownSlapd {
		e.slapd = slapdtest.Start(t, su.slapd...)
	} else {
		e.slapd = sharedSlapd(t)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("shared slapd log (errors only):\n%s", tail(e.slapd.Log(), 40))
			}
		})
	}
	users := make([]duosim.User, 0, len(sampledata.People))
	for _, p := range sampledata.People {
		users = append(users, duosim.User{Name: p.UID, Behavior: duosim.Behavior(p.DuoBehavior), Passcodes: p.Passcodes})
	}
	sim, err := duosim.New(duosim.Options{Users: users, HTTP1Only: su.duoHTTP1})
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
		// Port 0: ldapgate logs the port it got (see gateLog).
		addr := "127.0.0.1:0"
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
		"health":      map[string]any{"listen": "127.0.0.1:0", "lame_duck": su.lameDuck.String()},
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
	if su.process {
		e.startProcess(cfgFile)
	} else {
		e.startInProcess(cfgFile)
	}
	e.awaitListeners(sections)
	return e
}

// startParallel is start for a test that mostly waits on timers: it marks
// the test parallel and runs ldapgate as a process (withProcess), so that
// parallel tests share nothing but the machine.
func startParallel(t *testing.T, sections []section, opts ...option) *env {
	t.Helper()
	t.Parallel()
	return start(t, sections, append(opts, withProcess())...)
}

// startInProcess runs ldapgate's serve in this process until the test
// ends, then cancels it and waits (bounded) for it to return.
func (e *env) startInProcess(cfgFile string) {
	t := e.t
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error // set before exited is closed
	go func() {
		defer close(e.exited)
		runErr = app.Run(ctx, []string{"serve", "--config", cfgFile}, e.log, e.log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.exited:
			if runErr != nil {
				t.Errorf("ldapgate's serve returned %v", runErr)
			}
		case <-time.After(10 * time.Second):
			var stacks bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("ldapgate's serve did not return within 10s of its context ending; goroutines:\n%s", stacks.String())
		}
		if t.Failed() {
			t.Logf("ldapgate output:\n%s", e.stderr.String())
		}
	})
}

// startProcess runs the ldapgate binary (under prlimit with withNoFile)
// until the test ends, then stops it with SIGINT.
func (e *env) startProcess(cfgFile string) {
	t := e.t
	bin := gateBinary(t)
	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	if e.nofile > 0 {
		// prlimit execs the binary: the PID stays ldapgate's.
		cmd = exec.Command("prlimit", fmt.Sprintf("--nofile=%d:%d", e.nofile, e.nofile), "--", bin, "serve", "--config", cfgFile)
	}
	cmd.Stderr = e.log
	cmd.Stdout = e.log
	// The race runtime otherwise sleeps a second at exit, for reports
	// still being written; a race is reported when it happens.
	cmd.Env = append(os.Environ(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
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
}

// awaitListeners waits for ldapgate to log the address of every section
// and of the health listener, and for its start-up Duo probe.
func (e *env) awaitListeners(sections []section) {
	t := e.t
	t.Helper()
	names := []string{"health"}
	for _, s := range sections {
		names = append(names, s.Name)
	}
	testutil.WaitFor(t, 20*time.Second, func() bool {
		select {
		case <-e.exited:
			t.Fatalf("ldapgate stopped before it listened:\n%s", e.stderr.String())
		default:
		}
		return e.log.has(names...)
	}, "ldapgate to log the address of every listener")
	for _, name := range names {
		addr := e.log.addr(name)
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			t.Fatalf("%s logged address %q, not the one it got", name, addr)
		}
		if name == "health" {
			e.health = addr
		} else {
			e.addr[name] = addr
		}
	}
	// The Duo state machine probes once at start; let that happen before a
	// test switches the simulator into a fault, so every test starts from
	// a known "ok".
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.duo.Calls().Check >= 1 }, "the start-up Duo probe")
	// So does the directory probe, which reads the secure groups: until it
	// has, no section is ready ("secure groups not checked yet").
	testutil.WaitFor(t, 10*time.Second, func() bool {
		var st struct {
			Sections []struct {
				SecureGroups string `json:"secure_groups_problem"`
			} `json:"sections"`
		}
		e.getJSON("/status", &st)
		for _, s := range st.Sections {
			if strings.Contains(s.SecureGroups, "not checked yet") {
				return false
			}
		}
		return len(st.Sections) == len(sections)
	}, "the start-up directory probe to read the secure groups")
}

// gateLog is where ldapgate writes its log. It keeps everything in out and
// reads the JSON lines for the address of every listener: "listening" with
// the section's name as server, and "health listener up".
type gateLog struct {
	out *testutil.SyncBuffer

	mu      sync.Mutex
	partial []byte            // a line not yet ended
	addrs   map[string]string // section name, or "health" → host:port
}

func (l *gateLog) Write(p []byte) (int, error) {
	_, _ = l.out.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i])
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	return len(p), nil
}

func (l *gateLog) line(b []byte) {
	var rec map[string]any
	if json.Unmarshal(b, &rec) != nil {
		return
	}
	addr, _ := rec["addr"].(string)
	server, _ := rec["server"].(string)
	switch rec["msg"] {
	case "listening":
		if server != "" && addr != "" && rec["tls"] == nil { // not ldaps_listen's
			l.addrs[server] = addr
		}
	case "health listener up":
		if addr != "" {
			l.addrs["health"] = addr
		}
	}
}

// has reports whether every named listener has logged its address.
func (l *gateLog) has(names ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range names {
		if l.addrs[n] == "" {
			return false
		}
	}
	return true
}

func (l *gateLog) addr(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[name]
}

// proc is the ldapgate process, for tests that read its /proc entry or
// signal it. It fails the test when ldapgate runs in this process: start
// it withProcess() then.
func (e *env) proc() *os.Process {
	e.t.Helper()
	if e.cmd == nil {
		e.t.Fatal("this test watches or signals the ldapgate process, but ldapgate runs inside the test binary: start it withProcess()")
	}
	return e.cmd.Process
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
	// Only whole lines: ldapgate may be writing the last one right now.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
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
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.proc().Pid))
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
