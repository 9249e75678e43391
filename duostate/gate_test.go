package duostate

import (
	"context"
	"errors"
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
			f.tr.Observe("auth", 60*time.Second, failmode.Degraded)
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
	f := newFixture(t, Config{})
	var calls atomic.Int64
	g := NewGate(f.tr, countingNext(&calls))
	for range 3 {
		f.tr.Observe("preauth", 10*time.Second, failmode.Unreachable)
	}
	fe := knownDown(t, g, &calls, failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: 3 consecutive preauth calls unreachable")

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
	knownDown(t, g, &calls, failmode.Unreachable, "known unreachable since 2026-03-01T12:00:00Z: check: connection refused")

	// Every caller gets its own error.
	_, e1 := g.Verify(context.Background(), alice)
	_, e2 := g.Verify(context.Background(), alice)
	if e1 == e2 {
		t.Fatal("the Gate must not hand out one shared error")
	}

	// Recovery: next is called again.
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	if _, err := g.Verify(context.Background(), alice); err != nil || calls.Load() != 1 {
		t.Fatalf("after recovery: %v, next called %d times", err, calls.Load())
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
	f.tr.Observe("preauth", fastAnswer, failmode.Untrusted)
	fe := knownDown(t, g, &calls, failmode.Untrusted, "known misconfigured since 2026-03-01T12:00:00Z: preauth untrusted")
	if !strings.Contains(fe.Error(), "duo preauth untrusted") {
		t.Fatalf("error text %q", fe.Error())
	}
}

func BenchmarkGateOK(b *testing.B) {
	tr := New(Config{}, &switchChecker{})
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
	tr := New(Config{UnreachableAfter: 1}, &switchChecker{})
	tr.Observe("preauth", time.Second, failmode.Unreachable)
	g := NewGate(tr, fakeVerifier{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		panic("next called")
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
	tr := New(Config{}, &switchChecker{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Observe("preauth", 100*time.Millisecond, failmode.Allowed)
		}
	})
}
