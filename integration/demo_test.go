package integration

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/authapi"

	"github.com/ldapgate/ldapgate/internal/testutil"
)

// demoRun is a running `ldapgate demo`.
type demoRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testutil.SyncBuffer // stdout: the tour
	errOut *testutil.SyncBuffer // stderr: logs
	exited chan struct{}
	base   int
}

// startDemo runs `ldapgate demo` on six free ports with env added to the
// environment, and waits for the whole tour to be printed.
func startDemo(t *testing.T, env ...string) *demoRun {
	t.Helper()
	d := &demoRun{t: t, out: &testutil.SyncBuffer{}, errOut: &testutil.SyncBuffer{}, exited: make(chan struct{}), base: testutil.FreePortRange(t, 6)}
	d.cmd = exec.Command(gateBinary(t), "demo", "--base-port", strconv.Itoa(d.base))
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.errOut
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", d.out.String(), d.errOut.String())
		}
		if strings.Contains(d.errOut.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in the demo")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(d.out.String(), "Stop the demo with Ctrl-C.") {
		select {
		case <-d.exited:
			t.Fatalf("demo exited before printing its tour")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tour within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// stop sends SIGINT and requires a clean exit.
func (d *demoRun) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("demo did not stop within 20s of SIGINT")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		d.t.Fatalf("demo exited with status %d after SIGINT", code)
	}
}

// tourStep is one line of the printed tour.
type tourStep struct {
	line string
	argv []string
	exit int
}

// steps parses the tour the way a reader uses it: every line with
// "   # -> " is a shell command and the exit status it should have.
func (d *demoRun) steps() []tourStep {
	d.t.Helper()
	var out []tourStep
	sc := bufio.NewScanner(strings.NewReader(d.out.String()))
	for sc.Scan() {
		line := sc.Text()
		cmd, expect, ok := strings.Cut(line, "   # -> ")
		if !ok {
			continue
		}
		s := tourStep{line: line}
		word, _, _ := strings.Cut(expect, ":")
		word, _, _ = strings.Cut(word, " ")
		if word != "ok" {
			n, err := strconv.Atoi(word)
			if err != nil {
				d.t.Fatalf("tour line without an outcome: %q", line)
			}
			s.exit = n
		}
		argv, err := shellSplit(cmd)
		if err != nil || len(argv) == 0 {
			d.t.Fatalf("tour line %q: %v", line, err)
		}
		s.argv = argv
		out = append(out, s)
	}
	return out
}

// tourValue returns what follows label at the start of a header line.
func (d *demoRun) tourValue(label string) string {
	for _, line := range strings.Split(d.out.String(), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), label); ok {
			return strings.Fields(rest)[0]
		}
	}
	d.t.Fatalf("tour has no %q line", label)
	return ""
}

// walk runs every step with the client it names and checks its exit status
// and, for binds, that it printed the identity.
func (d *demoRun) walk() (ran []string) {
	d.t.Helper()
	for _, s := range d.steps() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		began := time.Now()
		code, stdout, stderr := runStep(ctx, s.argv)
		cancel()
		d.t.Logf("%5.2fs %s", time.Since(began).Seconds(), s.line[:min(len(s.line), 100)])
		if code != s.exit {
			d.t.Fatalf("step %q\nexited %d, tour says %d\nstdout: %s\nstderr: %s", s.line, code, s.exit, stdout, stderr)
		}
		if code == 0 {
			if dn := bindDN(s.argv); dn != "" && !isSearch(s.argv) && strings.TrimSpace(stdout) != "dn:"+dn {
				d.t.Fatalf("step %q printed %q, want dn:%s", s.line, stdout, dn)
			}
			if isSearch(s.argv) && !strings.Contains(stdout, "dn: uid=erin,ou=people,dc=example,dc=com") {
				d.t.Fatalf("step %q found nothing: %q", s.line, stdout)
			}
		}
		ran = append(ran, strings.Join(s.argv, " "))
	}
	return ran
}

// runStep runs argv as the reader would, with two substitutions: the
// ldapgate the tour names is the binary under test (it is), and curl is
// emulated when it is not installed.
func runStep(ctx context.Context, argv []string) (code int, stdout, stderr string) {
	if argv[0] == "curl" {
		if _, err := exec.LookPath("curl"); err != nil {
			return curlGet(ctx, argv)
		}
	}
	var out, errOut strings.Builder
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// The race-enabled ldapgate otherwise sleeps a second before exiting.
	cmd.Env = append(os.Environ(), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		code = -1
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

// curlGet does what `curl -s[f] URL` does, for machines without curl.
func curlGet(ctx context.Context, argv []string) (int, string, string) {
	url, fail := argv[len(argv)-1], strings.Contains(argv[1], "f")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 7, "", err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if fail && resp.StatusCode >= 400 {
		return 22, "", resp.Status
	}
	return 0, string(body), ""
}

func flagValue(argv []string, names ...string) string {
	for i := 0; i+1 < len(argv); i++ {
		for _, n := range names {
			if argv[i] == n {
				return argv[i+1]
			}
		}
	}
	return ""
}

func bindDN(argv []string) string { return flagValue(argv, "-D", "--dn") }

func isSearch(argv []string) bool {
	return filepath.Base(argv[0]) == "ldapsearch" || flagValue(argv, "--base", "-b") != ""
}

// TestDemoTour runs `ldapgate demo` and walks its printed tour line by
// line: with ldap-utils, and with `ldapgate try` as printed when ldapwhoami
// is not installed.
func TestDemoTour(t *testing.T) {
	t.Run("ldap-utils", func(t *testing.T) {
		t.Parallel()
		for _, tool := range []string{"ldapwhoami", "ldapsearch"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s not found: run make test, which installs ldap-utils", tool)
			}
		}
		d := startDemo(t)
		ran := d.walk()
		checkTourCoverage(t, ran, "ldapwhoami", "ldapsearch")

		health := d.tourValue("health")
		resp, err := http.Get(health + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz after the tour: %s", resp.Status)
		}
		authLog := d.tourValue("auth log")
		data, err := os.ReadFile(authLog)
		if err != nil || strings.Count(string(data), "\n") < 15 {
			t.Fatalf("auth log %s: %v\n%s", authLog, err, data)
		}
		d.stop()
		if _, err := os.Stat(filepath.Dir(authLog)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the demo left %s behind", filepath.Dir(authLog))
		}
	})
	t.Run("ldapgate-try", func(t *testing.T) {
		t.Parallel()
		// A PATH without ldap-utils: the demo prints `ldapgate try` lines.
		d := startDemo(t, "PATH="+t.TempDir())
		if !strings.Contains(d.out.String(), "apt-get install ldap-utils") {
			t.Errorf("the tour does not say where ldapwhoami comes from")
		}
		ran := d.walk()
		checkTourCoverage(t, ran, gateBinary(t)+" try")
		for _, r := range ran {
			if strings.HasPrefix(r, "ldapwhoami") || strings.HasPrefix(r, "ldapsearch") {
				t.Errorf("tour without ldap-utils uses %q", r)
			}
		}
		d.stop()
	})
}

// checkTourCoverage makes sure the tour did not silently lose its point.
func checkTourCoverage(t *testing.T, ran []string, clients ...string) {
	t.Helper()
	all := strings.Join(ran, "\n")
	for _, want := range append(clients, "demo outage on", "demo outage off", "demo outage degrade", "demo outage misconfigure", "/readyz") {
		if !strings.Contains(all, want) {
			t.Errorf("no tour step runs %q", want)
		}
	}
	if len(ran) < 20 {
		t.Errorf("only %d steps", len(ran))
	}
}

func TestDemoOutageWithoutDemo(t *testing.T) {
	base := testutil.FreePortRange(t, 6)
	out, err := exec.Command(gateBinary(t), "demo", "outage", "on", "--base-port", strconv.Itoa(base)).CombinedOutput()
	if code := exitStatus(err); code != 1 || !strings.Contains(string(out), "--base-port") {
		t.Fatalf("status %d: %s", code, out)
	}
	out, err = exec.Command(gateBinary(t), "demo", "outage", "sideways").CombinedOutput()
	if code := exitStatus(err); code != 2 || !strings.Contains(string(out), "misconfigure") {
		t.Fatalf("status %d: %s", code, out)
	}
}

// TestDuoSimStandalone runs `ldapgate duo-sim` and talks to it with Duo's
// own Go client, using only what it printed.
func TestDuoSimStandalone(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte("users:\n  - name: stage-user\n    behavior: approve\n  - name: stage-deny\n    behavior: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api, control := testutil.FreeAddr(t), testutil.FreeAddr(t)

	out, err := exec.Command(gateBinary(t), "duo-sim", "--listen", api, "--control", "0.0.0.0:0", "--users", users).CombinedOutput()
	if code := exitStatus(err); code != 2 || !strings.Contains(string(out), "--control-allow-remote") {
		t.Fatalf("remote control address: status %d: %s", code, out)
	}

	stdout, stderr := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	cmd := exec.Command(gateBinary(t), "duo-sim", "--listen", api, "--control", control, "--users", users)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	}()
	testutil.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(stdout.String(), "Stop with Ctrl-C") }, "duo-sim banner")
	printed := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && len(strings.Fields(v)) > 0 {
			printed[k] = strings.Fields(v)[0]
		}
	}
	if !strings.Contains(stdout.String(), "THIS IS NOT DUO") {
		t.Errorf("no banner")
	}
	if printed["api_host"] != api {
		t.Fatalf("api_host %q, want %q", printed["api_host"], api)
	}
	pem, err := os.ReadFile(printed["ca_file"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca_file holds no certificate")
	}
	client := func(skey string) *authapi.AuthApi {
		return authapi.NewAuthApi(*duoapi.NewDuoApi(printed["integration_key"], skey, printed["api_host"], "ldapgate-test",
			duoapi.SetTimeout(5*time.Second),
			duoapi.SetTransport(func(tr *http.Transport) { tr.TLSClientConfig.RootCAs = pool })))
	}
	res, err := client(printed["secret_key"]).Preauth(authapi.PreauthUsername("stage-user"))
	if err != nil || res.Stat != "OK" || res.Response.Result != "auth" {
		t.Fatalf("preauth stage-user: %+v %v", res, err)
	}
	res, err = client(printed["secret_key"]).Preauth(authapi.PreauthUsername("alice"))
	if err != nil || res.Response.Result != "enroll" {
		t.Fatalf("preauth of a user not in --users: %+v %v", res, err)
	}
	// Signatures are checked as Duo does.
	res, err = client(strings.Repeat("x", 40)).Preauth(authapi.PreauthUsername("stage-user"))
	if err == nil && res.Stat == "OK" {
		t.Fatalf("a wrong secret key was accepted: %+v", res)
	}

	req, _ := http.NewRequest(http.MethodPut, printed["control API"]+"/fault", strings.NewReader("refuse"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("control API: %v %v", resp, err)
	}
	resp.Body.Close()
	if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
		c.Close()
		t.Fatal("refuse: the API still accepts connections")
	}

	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("duo-sim did not stop on SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("duo-sim exited %d", code)
	}
	if _, err := os.Stat(printed["ca_file"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary CA file left behind: %v", err)
	}
}

func TestTryErrors(t *testing.T) {
	out, err := exec.Command(gateBinary(t), "try", "--dn", "x").CombinedOutput()
	if code := exitStatus(err); code != 2 {
		t.Errorf("no --url: status %d: %s", code, out)
	}
	out, err = exec.Command(gateBinary(t), "try", "--url", "ldap://"+testutil.FreeAddr(t), "--dn", "x", "--password", "y").CombinedOutput()
	if code := exitStatus(err); code != 1 || !strings.Contains(string(out), "can't contact LDAP server") {
		t.Errorf("nothing listening: status %d: %s", code, out)
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// shellSplit splits a command line the way a POSIX shell does for the
// quoting the tour uses: blanks separate words, '...' quotes literally and
// a backslash escapes the next character.
func shellSplit(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		case strings.IndexByte("\"$`;&|<>(){}*?[]#~", c) >= 0:
			return nil, fmt.Errorf("unquoted %q: the tour would not paste safely", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
