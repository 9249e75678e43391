package duostate_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
)

var _ duostate.Checker = (*duoclient.Client)(nil)

// TestWithDuoclientAndSimulator wires the Tracker the way the program does
// (the client's Observe hook feeds it, the client is its Checker, the Gate
// sits in front of the client) and drives the simulator through outages.
func TestWithDuoclientAndSimulator(t *testing.T) {
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sim.CAPEM())

	var (
		mu      sync.Mutex
		now     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		changes []duostate.Change
		tr      *duostate.Tracker
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	client, err := duoclient.New(duoclient.Config{
		APIHost: sim.APIHost(), IntegrationKey: sim.IntegrationKey(), SecretKey: sim.SecretKey(),
		RootCAs: pool, Timeout: time.Second, PushTimeout: 5 * time.Second,
		Observe: func(st failmode.Stage, d time.Duration, c failmode.Class) { tr.Observe(st, d, c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	tr = duostate.New(duostate.Config{
		Integration:  client.Integration(),
		ProbeTimeout: 300 * time.Millisecond,
		// The rest as config's defaults would give them.
		UnreachableAfter:  config.DefaultDuoUnreachableAfter,
		DegradedLatency:   config.DefaultDuoDegradedLatency,
		Window:            config.DuoWindow,
		ProbeInterval:     config.DefaultDuoProbeInterval,
		FastProbeInterval: config.DuoFastProbeInterval,
		Now:               clock,
		OnChange:          func(c duostate.Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() },
	}, client)
	gate := duostate.NewGate(tr, client)
	ctx := context.Background()
	alice := failmode.Attempt{Username: "alice", Factor: failmode.FactorPush}

	setFault := func(f duosim.Fault) {
		t.Helper()
		if err := sim.SetFault(f); err != nil {
			t.Fatal(err)
		}
	}
	want := func(s duostate.State) {
		t.Helper()
		if st := tr.Status(); st.State != s {
			t.Fatalf("state %s, want %s (%+v)", st.State, s, st)
		}
	}
	verifyErr := func() *failmode.Error {
		t.Helper()
		v, err := gate.Verify(ctx, alice)
		var fe *failmode.Error
		if v.Allowed || !errors.As(err, &fe) {
			t.Fatalf("got %+v, %v; want a classified error", v, err)
		}
		return fe
	}
	knownDown := func(class failmode.Class, detail string) {
		t.Helper()
		before := sim.Calls()
		fe := verifyErr()
		if !errors.Is(fe, duostate.ErrKnownDown) || fe.Class != class || fe.Stage != failmode.StagePreauth || !strings.Contains(fe.Detail, detail) {
			t.Fatalf("got %v, want a known-down %s error containing %q", fe, class, detail)
		}
		if after := sim.Calls(); after != before {
			t.Fatalf("the Gate reached Duo while it was known down: %+v → %+v", before, after)
		}
	}
	probe := func() error { t.Helper(); return tr.Probe(ctx) }

	// Healthy.
	if err := probe(); err != nil {
		t.Fatal(err)
	}
	if v, err := gate.Verify(ctx, alice); err != nil || !v.Allowed {
		t.Fatalf("healthy: %+v, %v", v, err)
	}
	want(duostate.OK)

	// Duo answers 503: three failed preauths, then instant answers.
	setFault(duosim.FaultServerError)
	for i := range 3 {
		if fe := verifyErr(); errors.Is(fe, duostate.ErrKnownDown) || fe.Class != failmode.Unreachable {
			t.Fatalf("preauth %d: %v", i, fe)
		}
	}
	want(duostate.Unreachable)
	// The first bind is the half-open trial: Duo still answers 503.
	if fe := verifyErr(); errors.Is(fe, duostate.ErrKnownDown) || fe.Class != failmode.Unreachable {
		t.Fatalf("trial: %v", fe)
	}
	knownDown(failmode.Unreachable, "3 consecutive preauth calls unreachable")
	if err := probe(); err == nil {
		t.Fatal("probe passed during a 503 outage")
	}
	knownDown(failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: check: HTTP 503")

	// Back: the probe notices (it had failed too, so Duo is back, not
	// merely answering checks).
	setFault(duosim.FaultNone)
	advance(time.Minute)
	if err := probe(); err != nil {
		t.Fatal(err)
	}
	want(duostate.OK)

	// Refused connections, found by the probe alone.
	setFault(duosim.FaultRefuse)
	if err := probe(); err == nil {
		t.Fatal("probe passed while refused")
	}
	want(duostate.Unreachable) // a refused connection counts at once
	verifyErr()                // the trial: refused too
	knownDown(failmode.Unreachable, "check: connection refused")
	setFault(duosim.FaultNone)
	probe()
	want(duostate.OK)

	// Bad keys seen by traffic: denied at once, never failmode.
	setFault(duosim.FaultUnauthorized)
	if fe := verifyErr(); fe.Class != failmode.Misconfigured {
		t.Fatalf("401: %v", fe)
	}
	knownDown(failmode.Misconfigured, "known misconfigured since")
	// A certificate that does not verify: still misconfigured, now untrusted.
	setFault(duosim.FaultBadCert)
	probe()
	knownDown(failmode.Untrusted, "check: certificate signed by unknown authority")
	setFault(duosim.FaultNone)
	probe()
	want(duostate.OK)

	// Rate limited: degraded, and binds still go to Duo.
	setFault(duosim.FaultRateLimit)
	before := sim.Calls().Preauth
	if fe := verifyErr(); fe.Class != failmode.Degraded || errors.Is(fe, duostate.ErrKnownDown) {
		t.Fatalf("429: %v", fe)
	}
	want(duostate.Degraded)
	verifyErr()
	if got := sim.Calls().Preauth - before; got != 2 {
		t.Fatalf("%d preauth calls while degraded, want 2", got)
	}
	setFault(duosim.FaultNone)
	advance(time.Minute + time.Second)
	probe()
	want(duostate.OK)

	// The auth step fails: degraded, not failmode.
	setFault(duosim.FaultAuthError)
	if fe := verifyErr(); fe.Class != failmode.Degraded || fe.Stage != failmode.StageAuth {
		t.Fatalf("auth 503: %v", fe)
	}
	want(duostate.Degraded)
	setFault(duosim.FaultNone)
	advance(time.Minute + time.Second)
	probe()
	want(duostate.OK)

	// Duo hangs: the probe's own timeout finds it, three probes running
	// into it being three pieces of evidence.
	setFault(duosim.FaultHang)
	for i := range 3 {
		want(duostate.OK)
		start := time.Now()
		if err := probe(); err == nil {
			t.Fatal("probe passed while hanging")
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("probe %d took %s, want about the 300ms probe timeout", i, el)
		}
	}
	want(duostate.Unreachable)
	verifyErr() // the trial waits for the client's 1s timeout
	knownDown(failmode.Unreachable, "check: no answer within 300ms")
	setFault(duosim.FaultNone)
	probe()
	want(duostate.OK)

	// Only the check hangs, logins work: however many probes time out, Duo
	// is not unreachable.
	setFault(duosim.FaultCheckHang)
	for range 4 {
		if v, err := gate.Verify(ctx, alice); err != nil || !v.Allowed {
			t.Fatalf("check_hang: %+v, %v", v, err)
		}
		if err := probe(); err == nil {
			t.Fatal("probe passed while the check hangs")
		}
		want(duostate.OK)
	}
	setFault(duosim.FaultNone)
	probe()

	// The check works, preauth answers 503: unreachable on traffic, then
	// degraded once the probe contradicts it, and it stays there.
	setFault(duosim.FaultPreauthError)
	for range 3 {
		verifyErr()
	}
	want(duostate.Unreachable)
	verifyErr() // the trial
	for range 5 {
		if err := probe(); err != nil {
			t.Fatal(err)
		}
		want(duostate.Degraded)
		advance(time.Second)
		for range 3 {
			if fe := verifyErr(); errors.Is(fe, duostate.ErrKnownDown) {
				t.Fatalf("degraded must not short-circuit: %v", fe)
			}
		}
	}
	setFault(duosim.FaultNone)
	if v, err := gate.Verify(ctx, alice); err != nil || !v.Allowed {
		t.Fatalf("after preauth_error: %+v, %v", v, err)
	}
	advance(time.Minute + time.Second)
	probe()
	want(duostate.OK)

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, c := range changes {
		got = append(got, string(c.From)+"→"+string(c.To)+": "+c.Reason)
		if c.Integration != sim.APIHost()+"/"+sim.IntegrationKey() {
			t.Errorf("change for %q", c.Integration)
		}
	}
	wantChanges := []string{
		"ok→unreachable: 3 consecutive preauth calls unreachable",
		"unreachable→ok: check ok",
		"ok→unreachable: check: connection refused",
		"unreachable→ok: check ok",
		"ok→misconfigured: preauth misconfigured",
		"misconfigured→ok: check ok",
		"ok→degraded: preauth degraded",
		"degraded→ok: no degraded outcome in the last 1m",
		"ok→degraded: auth degraded",
		"degraded→ok: no degraded outcome",
		"ok→unreachable: check: no answer within 300ms",
		"unreachable→ok: check ok",
		"ok→unreachable: 3 consecutive preauth calls unreachable",
		"unreachable→degraded: check ok, but preauth calls fail",
		"degraded→ok: no degraded outcome",
	}
	if len(got) != len(wantChanges) {
		t.Fatalf("changes:\n%s", strings.Join(got, "\n"))
	}
	for i := range got {
		if !strings.HasPrefix(got[i], wantChanges[i]) {
			t.Fatalf("change %d is %q, want %q...\nall:\n%s", i, got[i], wantChanges[i], strings.Join(got, "\n"))
		}
	}
}
