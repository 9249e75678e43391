package integration

// Live reload, log rotation and graceful stop with real signals: every test
// here needs ldapgate as a separate process (SIGHUP, SIGTERM, exit status).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"

	"github.com/ldapgate/ldapgate/internal/testutil"
)

// configFile is the configuration file start wrote for e.
func (e *env) configFile() string { return filepath.Join(filepath.Dir(e.authLog), "config.yaml") }

// editConfig rewrites e's configuration file through edit.
func (e *env) editConfig(edit func(cfg map[string]any)) {
	e.t.Helper()
	data, err := os.ReadFile(e.configFile())
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		e.t.Fatal(err)
	}
	edit(cfg)
	if data, err = yaml.Marshal(cfg); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.configFile(), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// server is the configuration of the i-th section in cfg.
func server(cfg map[string]any, i int) map[string]any {
	return cfg["servers"].([]any)[i].(map[string]any)
}

// signal sends sig to ldapgate.
func (e *env) signal(sig os.Signal) {
	e.t.Helper()
	if err := e.proc().Signal(sig); err != nil {
		e.t.Fatal(err)
	}
}

// notices is the auth log's notices of a kind, from the file at path.
func (e *env) notices(path, kind string) []string {
	e.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var m map[string]any
		if yaml.Unmarshal(line, &m) != nil || m["event"] != kind {
			continue
		}
		msg, _ := m["msg"].(string)
		out = append(out, msg)
	}
	return out
}

func (e *env) requireRunning() {
	e.t.Helper()
	select {
	case <-e.exited:
		e.t.Fatalf("ldapgate exited:\n%s", e.stderr.String())
	default:
	}
	if fi, err := os.Stat(e.adminSocket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		e.t.Fatalf("the admin socket is gone: %v", err)
	}
}

// TestSIGHUPReloadsWithBindsInFlight: SIGHUP with a valid file, then an
// invalid one, while clients bind in a loop: the process never exits, its
// admin socket stays, the invalid file is refused with its problem named,
// and not one bind fails. `ldapgate reload` on the invalid file prints the
// problem and exits non-zero.
func TestSIGHUPReloadsWithBindsInFlight(t *testing.T) {
	// Four clients push for alice at once: above the default push budget
	// of 3 outstanding (each approval gives the budget back).
	e := start(t, []section{secureSection}, withProcess(), withDuo("max_pushes", 8))
	alice := person(t, "alice")
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 10000; i++ { // bounded; stopped far earlier
				select {
				case <-stop:
					return
				default:
				}
				conn, err := ldap.DialURL("ldap://" + e.addr["secure"])
				if err == nil {
					conn.SetTimeout(3 * pushTimeout)
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
	more := func(what string) {
		before := ok.Load()
		testutil.WaitFor(t, 15*time.Second, func() bool { return ok.Load() >= before+10 }, what)
	}
	more("binds before the reload")

	e.editConfig(func(cfg map[string]any) { server(cfg, 0)["exempt_dns"] = []string{appDN} })
	e.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(e.notices(e.authLog, "reload")) == 1 }, "the reload notice")
	if n := e.notices(e.authLog, "reload")[0]; !strings.Contains(n, "configuration reloaded: sections changed: secure") {
		t.Errorf("reload notice %q", n)
	}
	more("binds after the valid reload")
	e.requireRunning()

	e.editConfig(func(cfg map[string]any) { server(cfg, 0)["failmode"] = "bogus" })
	e.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(e.notices(e.authLog, "reload")) == 2 }, "the refused reload's notice")
	if n := e.notices(e.authLog, "reload")[1]; !strings.Contains(n, "not reloaded") || !strings.Contains(n, "servers[0].failmode") {
		t.Errorf("refused reload notice %q does not name the problem", n)
	}
	more("binds after the refused reload")
	e.requireRunning()

	cli := exec.Command(gateBinary(t), "reload", "--config", e.configFile(), "--socket", e.adminSocket)
	var out bytes.Buffer
	cli.Stdout, cli.Stderr = &out, &out
	err := cli.Run()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() == 0 {
		t.Errorf("ldapgate reload of an invalid file: %v, want a non-zero exit\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "servers[0].failmode: must be safe or secure") {
		t.Errorf("ldapgate reload printed %q, want the problem", out.String())
	}
	more("binds after ldapgate reload")
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d binds failed across the reloads; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	e.requireRunning()
}

// TestSIGHUPReopensAuthLog: logrotate renames the auth log and sends
// SIGHUP; the records that follow land in a new file at the configured path.
func TestSIGHUPReopensAuthLog(t *testing.T) {
	e := start(t, []section{secureSection}, withProcess())
	alice := person(t, "alice")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	e.waitEvents(1)
	rotated := e.authLog + ".1"
	if err := os.Rename(e.authLog, rotated); err != nil {
		t.Fatal(err)
	}
	e.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(e.notices(e.authLog, "reload")) == 1 }, "the reload notice in the new file")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	evs := e.waitEvents(2) // the notice and the bind
	if evs[1]["status"] != "Allow" {
		t.Errorf("new file: %v", evs)
	}
	data, err := os.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 1 {
		t.Errorf("the rotated file has %d records, want only the first bind's", n)
	}
	e.requireRunning()
}

// waitExit waits for ldapgate to exit and returns its exit status.
func (e *env) waitExit(within time.Duration) int {
	e.t.Helper()
	select {
	case <-e.exited:
	case <-time.After(within):
		e.t.Fatalf("ldapgate did not exit within %s:\n%s", within, e.stderr.String())
	}
	return e.cmd.ProcessState.ExitCode()
}

// TestSIGTERMDuringPendingPush: a bind waiting for a push when SIGTERM
// arrives completes with the push's real answer, then the process exits 0.
func TestSIGTERMDuringPendingPush(t *testing.T) {
	e := startParallel(t, []section{secureSection})
	alice := person(t, "alice")
	e.duo.SetPushDelay(pushTimeout / 2)
	conn := e.dial("secure")
	bindErr := make(chan error, 1)
	go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.duo.Calls().Auth >= 1 }, "the push to start")
	e.signal(syscall.SIGTERM)
	if err := <-bindErr; err != nil {
		t.Fatalf("the bind pending at SIGTERM: %v, want the push's answer (approved)", err)
	}
	if code := e.waitExit(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(e.adminSocket); !os.IsNotExist(err) {
		t.Errorf("the admin socket was left behind: %v", err)
	}
}

// TestShutdownTimeoutCutsPush: with shutdown_timeout shorter than a push,
// the bind is cut at the timeout and the process still exits 0, within it.
func TestShutdownTimeoutCutsPush(t *testing.T) {
	e := startParallel(t, []section{secureSection}, withConfig("shutdown_timeout", "1s"), withDuo("push_timeout", "20s"))
	alice := person(t, "alice")
	e.duo.SetPushDelay(10 * time.Second)
	conn := e.dial("secure")
	conn.SetTimeout(30 * time.Second)
	bindErr := make(chan error, 1)
	go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.duo.Calls().Auth >= 1 }, "the push to start")
	begin := time.Now()
	e.signal(syscall.SIGTERM)
	if code := e.waitExit(5 * time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if took := time.Since(begin); took < time.Second {
		t.Errorf("exited after %s, before shutdown_timeout (1s)", took)
	}
	if err := <-bindErr; err == nil {
		t.Fatal("the bind cut at shutdown_timeout succeeded")
	}
}
