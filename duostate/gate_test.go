package duostate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// countingNext is a second factor that approves and counts its calls.
func countingNext(n *atomic.Int64) fakeVerifier {
	return fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		n.Add(1)
		return failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."}, nil
	}}
}

var alice = failmode.Attempt{Username: "alice", ClientIP: "192.0.2.7", Factor: failmode.FactorPush}

// knownDown checks the Gate's short-circuit error and returns it.
func knownDown(t *testing.T, g *Gate, calls *atomic.Int64, wantClass failmode.Class, wantDetail string) *failmode.Error {
	t.Helper()
	before := calls.Load()
	v, err := g.Verify(context.Background(), alice)
	if calls.Load() != before {
		t.Fatal("the Gate called next while Duo is known to be down")
	}
	if v.Allowed {
		t.Fatal("a short-circuit verdict must not allow")
	}
	if !errors.Is(err, ErrKnownDown) {
		t.Fatalf("error %v does not wrap ErrKnownDown", err)
	}
	var fe *failmode.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *failmode.Error", err)
	}
	if fe.Class != wantClass || fe.Stage != failmode.StagePreauth || fe.Detail != wantDetail {
		t.Fatalf("got class=%s stage=%s detail=%q, want class=%s stage=preauth detail=%q", fe.Class, fe.Stage, fe.Detail, wantClass, wantDetail)
	}
	return fe
}

func TestGatePassesThroughWhileOKOrDegraded(t *testing.T) {
	f := newFixture(t, Config{})
	var calls atomic.Int64
	g := NewGate(f.tr, countingNext(&calls))
	for _, degrade := range []bool{false, true} {
		if degrade {
			f.tr.Observe(failmode.StageAuth, 60*time.Second, failmode.Degraded)
			f.wantState(t, Degraded)
		}
		v, err := g.Verify(context.Background(), alice)
		if err != nil || !v.Allowed || v.Message != "Success. Logging you in..." {
			t.Fatalf("degraded=%v: got %+v, %v", degrade, v, err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("next called %d times, want 2", calls.Load())
	}
	// Next's errors come back untouched.
	boom := &failmode.Error{Class: failmode.Degraded, Stage: failmode.StageAuth, Detail: "no answer within 60s"}
	g = NewGate(f.tr, fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{}, boom
	}})
	if _, err := g.Verify(context.Background(), alice); err != boom {
		t.Fatalf("got %v, want next's error", err)
	}
}

func TestGateShortCircuitsWhileUnreachable(t *testing.T) {
	f := newFixture(t, Config{FastProbeInterval: time.Hour}) // one trial in this test
	next := &scriptedNext{err: preauthUnreachable()}
	g := NewGate(f.tr, next)
	for range 3 {
		f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
	}
	// The first bind is the half-open trial: it reaches Duo, still down.
	if _, err := g.Verify(context.Background(), alice); errors.Is(err, ErrKnownDown) || next.calls.Load() != 1 {
		t.Fatalf("trial: %v, next called %d times", err, next.calls.Load())
	}
	f.wantState(t, Unreachable)
	fe := knownDown(t, g, &next.calls, failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: 3 consecutive preauth calls unreachable")

	// The failmode decides at once, as it would have after the timeout.
	o := failmode.OutcomeOf(failmode.Verdict{}, fe)
	if d := failmode.Decide(failmode.Policy{Mode: failmode.Safe}, failmode.Subject{}, o); !d.Allow || d.Rule != failmode.RuleFailmodeSafe {
		t.Fatalf("safe: %+v", d)
	}
	if d := failmode.Decide(failmode.Policy{Mode: failmode.Secure}, failmode.Subject{}, o); d.Allow || d.Rule != failmode.RuleFailmodeDeny {
		t.Fatalf("secure: %+v", d)
	}

	// A failing probe replaces the cause with what it saw; since stays.
	f.clock.Add(time.Second)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	knownDown(t, g, &next.calls, failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: check: connection refused")

	// Every caller gets its own error.
	_, e1 := g.Verify(context.Background(), alice)
	_, e2 := g.Verify(context.Background(), alice)
	if e1 == e2 {
		t.Fatal("the Gate must not hand out one shared error")
	}

	// Recovery (the probe had failed too, so its success means Duo is back):
	// next is called again.
	next.set(approved, nil)
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	if _, err := g.Verify(context.Background(), alice); err != nil || next.calls.Load() != 2 {
		t.Fatalf("after recovery: %v, next called %d times", err, next.calls.Load())
	}
}

// TestGateTrialEndsAnOutageSeenByTheProbeAlone: only the check hangs and
// nobody bound for a while, so probes made the state unreachable. One bind
// goes to Duo as a trial while the others are answered at once; Duo answers
// it, and the state leaves unreachable.
func TestGateTrialEndsAnOutageSeenByTheProbeAlone(t *testing.T) {
	f := newFixture(t, Config{})
	next := &scriptedNext{v: pushDenied, entered: make(chan struct{}, 10), hold: make(chan struct{})}
	g := NewGate(f.tr, next)
	f.checker.set(noAnswer())
	for range 3 {
		f.tr.Probe(context.Background())
	}
	f.wantState(t, Unreachable)

	done := make(chan error, 1)
	go func() {
		v, err := g.Verify(context.Background(), alice)
		if err == nil && v.Allowed {
			err = errors.New("allowed")
		}
		done <- err
	}()
	<-next.entered // the trial is with Duo
	f.clock.Add(5 * time.Second)
	// Even after the interval: one trial at a time.
	knownDown(t, g, &next.calls, failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: check: no answer within 10s (3 consecutive preauth calls and probes unreachable)")
	close(next.hold)
	if err := <-done; err != nil {
		t.Fatalf("the trial got %v, want Duo's denial", err)
	}
	f.wantState(t, OK)
	if ch := f.wantChanges(t, "ok→unreachable", "unreachable→ok")[1]; ch.Reason != "trial bind answered by Duo" {
		t.Fatalf("reason %q", ch.Reason)
	}

	// The probe was contradicted: its failures are not counted until it
	// succeeds again.
	for range 5 {
		f.tr.Probe(context.Background())
	}
	if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 0 {
		t.Fatalf("distrusted probes counted: %+v", st)
	}
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.checker.set(noAnswer())
	for range 3 {
		f.tr.Probe(context.Background())
	}
	f.wantState(t, Unreachable)
}

func TestGateTrials(t *testing.T) {
	f := newFixture(t, Config{FastProbeInterval: 2 * time.Second})
	next := &scriptedNext{err: preauthUnreachable()}
	g := NewGate(f.tr, next)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.wantState(t, Unreachable)
	bind := func() error { _, err := g.Verify(context.Background(), alice); return err }

	// A failed trial leaves the state unreachable; the next trial waits for
	// FastProbeInterval, every bind meanwhile is answered at once.
	bind()
	for range 5 {
		if err := bind(); !errors.Is(err, ErrKnownDown) {
			t.Fatalf("within the interval: %v", err)
		}
	}
	f.clock.Add(1999 * time.Millisecond)
	if err := bind(); !errors.Is(err, ErrKnownDown) {
		t.Fatalf("just before the interval: %v", err)
	}
	if next.calls.Load() != 1 {
		t.Fatalf("next called %d times, want the one trial", next.calls.Load())
	}
	f.wantState(t, Unreachable)

	// A trial cancelled by its client says nothing either.
	f.clock.Add(time.Millisecond)
	next.set(failmode.Verdict{}, &failmode.Error{Class: failmode.Unknown, Stage: failmode.StagePreauth, Detail: "canceled by caller"})
	bind()
	f.wantState(t, Unreachable)

	// A trial that panics ends as failed.
	f.clock.Add(2 * time.Second)
	g2 := NewGate(f.tr, fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) { panic("boom") }})
	func() {
		defer func() { _ = recover() }()
		g2.Verify(context.Background(), alice)
	}()
	f.wantState(t, Unreachable)

	// An error at the auth step means preauth was answered: out of
	// unreachable, to degraded as the window says.
	f.tr.Observe(failmode.StageAuth, time.Minute, failmode.Degraded) // a straggler: recorded, no change
	f.clock.Add(2 * time.Second)
	before := next.calls.Load()
	next.set(failmode.Verdict{}, &failmode.Error{Class: failmode.Degraded, Stage: failmode.StageAuth, Detail: "no answer within 60s"})
	bind()
	if next.calls.Load() != before+1 {
		t.Fatal("no trial after the interval")
	}
	f.wantState(t, Degraded)
	if ch := f.wantChanges(t, "ok→unreachable", "unreachable→degraded")[1]; !strings.HasPrefix(ch.Reason, "trial bind answered by Duo, but auth degraded") {
		t.Fatalf("reason %q", ch.Reason)
	}
}

func TestGateNoTrialWhileMisconfigured(t *testing.T) {
	f := newFixture(t, Config{})
	next := &scriptedNext{v: approved}
	g := NewGate(f.tr, next)
	f.checker.set(&failmode.Error{Class: failmode.Misconfigured, Stage: failmode.StageCheck, Detail: "HTTP 401"})
	f.tr.Probe(context.Background())
	for range 3 {
		f.clock.Add(time.Minute)
		knownDown(t, g, &next.calls, failmode.Misconfigured, "known misconfigured since 2026-03-01T12:00:00Z: check: HTTP 401")
	}
}

func TestGateDeniesWhileMisconfigured(t *testing.T) {
	f := newFixture(t, Config{})
	var calls atomic.Int64
	g := NewGate(f.tr, countingNext(&calls))
	f.checker.set(&failmode.Error{Class: failmode.Misconfigured, Stage: failmode.StageCheck, Detail: "HTTP 401"})
	f.tr.Probe(context.Background())
	fe := knownDown(t, g, &calls, failmode.Misconfigured, "known misconfigured since 2026-03-01T12:00:00Z: check: HTTP 401")
	d := failmode.Decide(failmode.Policy{Mode: failmode.Safe}, failmode.Subject{}, failmode.OutcomeOf(failmode.Verdict{}, fe))
	if d.Allow || d.Rule != failmode.RuleMisconfigured {
		t.Fatalf("safe: %+v", d)
	}

	// An unreachable probe must not turn the denial into failmode.
	f.clock.Add(time.Second)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	knownDown(t, g, &calls, failmode.Misconfigured, "known misconfigured since 2026-03-01T12:00:00Z: check: HTTP 401")

	// An untrusted certificate next: the class follows.
	f.checker.set(&failmode.Error{Class: failmode.Untrusted, Stage: failmode.StageCheck, Detail: "certificate signed by unknown authority"})
	f.tr.Probe(context.Background())
	fe = knownDown(t, g, &calls, failmode.Untrusted, "known misconfigured since 2026-03-01T12:00:00Z: check: certificate signed by unknown authority")
	d = failmode.Decide(failmode.Policy{Mode: failmode.Safe}, failmode.Subject{}, failmode.OutcomeOf(failmode.Verdict{}, fe))
	if d.Allow || d.Rule != failmode.RuleUntrusted {
		t.Fatalf("safe: %+v", d)
	}
	f.wantChanges(t, "ok→misconfigured")
}

func TestGateUntrustedFromTraffic(t *testing.T) {
	f := newFixture(t, Config{})
	var calls atomic.Int64
	g := NewGate(f.tr, countingNext(&calls))
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Untrusted)
	fe := knownDown(t, g, &calls, failmode.Untrusted, "known misconfigured since 2026-03-01T12:00:00Z: preauth untrusted")
	if !strings.Contains(fe.Error(), "duo preauth untrusted") {
		t.Fatalf("error text %q", fe.Error())
	}
}

func BenchmarkGateOK(b *testing.B) {
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout}, &switchChecker{})
	g := NewGate(tr, fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, nil
	}})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.Verify(ctx, alice); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNextAlone is the baseline BenchmarkGateOK compares with.
func BenchmarkNextAlone(b *testing.B) {
	var next interface {
		Verify(context.Context, failmode.Attempt) (failmode.Verdict, error)
	} = fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, nil
	}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := next.Verify(ctx, alice); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGateUnreachable(b *testing.B) {
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, UnreachableAfter: 1}, &switchChecker{})
	tr.Observe(failmode.StagePreauth, time.Second, failmode.Unreachable)
	// Duo is still down: the trial (one per FastProbeInterval) fails.
	g := NewGate(tr, fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{}, preauthUnreachable()
	}})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.Verify(ctx, alice); err == nil {
				b.Fatal("want an error")
			}
		}
	})
}

func BenchmarkObserve(b *testing.B) {
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout}, &switchChecker{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Observe(failmode.StagePreauth, 100*time.Millisecond, failmode.Allowed)
		}
	})
}

// TestPreauthAnswered: which trial results prove Duo answered preauth. Duo
// answering with a 400 (rejected) or a 429 (rate-limited) is an answer: it
// must end an outage, or safe sections stay open while Duo answers.
func TestPreauthAnswered(t *testing.T) {
	fe := func(c failmode.Class, s failmode.Stage) error { return &failmode.Error{Class: c, Stage: s} }
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"verdict", nil, true},
		{"auth step failed", fe(failmode.Degraded, failmode.StageAuth), true},
		{"auth step rejected", fe(failmode.Rejected, failmode.StageAuth), true},
		{"preauth rejected (400)", fe(failmode.Rejected, failmode.StagePreauth), true},
		{"preauth rate-limited (429)", fe(failmode.Degraded, failmode.StagePreauth), true},
		{"preauth unreachable", fe(failmode.Unreachable, failmode.StagePreauth), false},
		{"preauth local error", fe(failmode.Local, failmode.StagePreauth), false},
		{"preauth misconfigured", fe(failmode.Misconfigured, failmode.StagePreauth), false},
		{"preauth untrusted", fe(failmode.Untrusted, failmode.StagePreauth), false},
		{"known down", fmt.Errorf("x: %w", ErrKnownDown), false},
		{"unclassified", errors.New("boom"), false},
	} {
		if got := preauthAnswered(tt.err); got != tt.want {
			t.Errorf("%s: preauthAnswered = %v, want %v", tt.name, got, tt.want)
		}
	}
}
