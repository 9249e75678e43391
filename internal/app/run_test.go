package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// logAddrs reads the JSON log lines run writes and remembers the address
// of every listener by its message ("listening" per section, "health
// listener up").
type logAddrs struct {
	mu    sync.Mutex
	addrs map[string]string // server name, or "health", → host:port
}

func (l *logAddrs) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec struct {
			Msg, Addr, Server, TLS string
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Addr == "" {
			continue
		}
		name := rec.Server
		if rec.Msg == "health listener up" {
			name = "health"
		}
		if rec.TLS == "ldaps" {
			name += "/ldaps" // the section's LDAPS listener
		}
		l.mu.Lock()
		l.addrs[name] = rec.Addr
		l.mu.Unlock()
	}
}

func (l *logAddrs) get(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[name]
}

// TestServeInProcessOnPortZero runs the whole program with run, in this
// process, with every listener on port 0: it reports the addresses the
// kernel gave, serves a gated bind through them, says it is ready, and
// stops cleanly when its context ends.
func TestServeInProcessOnPortZero(t *testing.T) {
	dir := slapdtest.Start(t)
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, _ := sampledata.LookupService("ldapgate")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}
`, dir.URL, sampledata.BaseDN, svc.DN(), svc.Password, sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), ca))

	logR, logW := io.Pipe()
	addrs := &logAddrs{addrs: map[string]string{}}
	go addrs.read(logR)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfg}, io.Discard, logW)
		logW.Close()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	testutil.WaitFor(t, 10*time.Second, func() bool { return addrs.get("vpn") != "" && addrs.get("health") != "" },
		"the listeners to report their addresses")
	for _, name := range []string{"vpn", "health"} {
		if a := addrs.get(name); strings.HasSuffix(a, ":0") {
			t.Fatalf("%s reported %s, not the bound port", name, a)
		}
	}

	conn, err := ldap.DialURL("ldap://" + addrs.get("vpn"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice, _ := sampledata.Lookup("alice")
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("gated bind through the in-process program: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addrs.get("health") + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "/readyz to say ready")

	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after its context ended", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s of its context ending")
	}
}

// serveInProcess runs the whole program on cfgFile in this process until
// the test ends, its log written to w (closed when Run returns). The test
// fails if Run returns an error or does not stop within 20s of its end.
func serveInProcess(t *testing.T, cfgFile string, w io.WriteCloser) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfgFile}, io.Discard, w)
		w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s")
		}
	})
}
