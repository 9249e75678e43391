package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// benchGate runs the whole program in-process against slapd and a Duo
// simulator, and returns the address of its safe section.
func benchGate(b *testing.B, dirURL string, unreachableAfter int) (addr string, sim *duosim.Sim) {
	b.Helper()
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	dir := b.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	addr = testutil.FreeAddr(b)
	svc, _ := sampledata.LookupService("ldapgate")
	yaml := fmt.Sprintf(`
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid}
servers:
  - name: safe
    listen: %q
    directory: sample
    failmode: safe
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 1s,
          unreachable_after: %d, probe_interval: 1h}
`, dirURL, sampledata.BaseDN, svc.DN(), svc.Password, addr, sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), ca, unreachableAfter)
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	b.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("ldapgate did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Let the start-up probe pass before Duo goes away.
	for sim.Calls().Check == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return addr, sim
}

// bindLoop binds n times on one connection and returns the mean latency.
func bindLoop(b *testing.B, addr string, n int) time.Duration {
	b.Helper()
	conn, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	alice, _ := sampledata.Lookup("alice")
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := conn.Bind(alice.DN(), alice.Password); err != nil {
			b.Fatalf("bind %d: %v", i, err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkOutageBindDecision compares, in the same run, how long a bind
// takes to be decided by failmode=safe during a Duo outage when the state
// machine knows Duo is down (no Duo call) and when every bind asks Duo
// again (the reference proxy's behaviour, reproduced here by setting
// unreachable_after so high the state never changes).
//
// Reported: ns/bind for each, and the ratio every-time/state-machine.
func BenchmarkOutageBindDecision(b *testing.B) {
	dir := slapdtest.Start(b)
	for _, fault := range []duosim.Fault{duosim.FaultRefuse, duosim.FaultHang} {
		b.Run(string(fault), func(b *testing.B) {
			known, simKnown := benchGate(b, dir.URL, 1)
			every, simEvery := benchGate(b, dir.URL, 1<<30)
			for _, sim := range []*duosim.Sim{simKnown, simEvery} {
				if err := sim.SetFault(fault); err != nil {
					b.Fatal(err)
				}
			}
			bindLoop(b, known, 1) // the first failure teaches the state machine
			b.ResetTimer()
			started := time.Now()
			k := bindLoop(b, known, b.N)
			spent := time.Since(started)
			e := bindLoop(b, every, b.N)
			b.StopTimer()
			b.ReportMetric(float64(k.Nanoseconds()), "ns/bind-state-machine")
			b.ReportMetric(float64(e.Nanoseconds()), "ns/bind-duo-every-time")
			b.ReportMetric(float64(e)/float64(k), "x-faster")
			// While Duo is known down, the Gate lets one trial bind through
			// per fast probe interval (1s) to notice a recovery.
			if calls, most := simKnown.Calls().Preauth, 2+int(spent/time.Second); calls > most {
				b.Errorf("the state machine asked Duo %d times during the outage (at most %d trials)", calls, most)
			}
		})
	}
}
