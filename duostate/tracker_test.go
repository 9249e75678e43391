package duostate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

const fastAnswer = 150 * time.Millisecond

func TestRefusedPreauthsGoUnreachable(t *testing.T) {
	f := newFixture(t, Config{})
	f.tr.Observe("preauth", 2*time.Millisecond, failmode.Unreachable)
	f.tr.Observe("preauth", 2*time.Millisecond, failmode.Unreachable)
	f.wantState(t, OK)
	f.wantChanges(t)

	f.clock.Add(time.Second)
	f.tr.Observe("preauth", 2*time.Millisecond, failmode.Unreachable)
	st := f.wantState(t, Unreachable)
	if !st.Since.Equal(f.clock.Now()) || st.ConsecutiveUnreachable != 3 || st.LastClass != failmode.Unreachable || st.LastError != "preauth unreachable" {
		t.Fatalf("status %+v", st)
	}
	ch := f.wantChanges(t, "ok→unreachable")[0]
	if ch.Reason != "3 consecutive preauth calls unreachable" || !ch.At.Equal(f.clock.Now()) || ch.Integration != "api-test.duosecurity.com/DIXXXXXXXXXXXXXXXXXX" {
		t.Fatalf("change %+v", ch)
	}

	// Stragglers repeat the outcome: no new change.
	f.tr.Observe("preauth", 2*time.Millisecond, failmode.Unreachable)
	f.tr.Observe("preauth", time.Millisecond, failmode.Allowed)
	f.tr.Observe("auth", time.Millisecond, failmode.Degraded)
	f.wantState(t, Unreachable)
	f.wantChanges(t, "ok→unreachable")
}

func TestGoodPreauthResetsTheCount(t *testing.T) {
	for _, good := range []failmode.Class{failmode.Allowed, failmode.Denied} {
		t.Run(good.String(), func(t *testing.T) {
			f := newFixture(t, Config{})
			for _, c := range []failmode.Class{failmode.Unreachable, failmode.Unreachable, good, failmode.Unreachable, failmode.Unreachable} {
				f.tr.Observe("preauth", fastAnswer, c)
			}
			if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 2 {
				t.Fatalf("count %d, want 2", st.ConsecutiveUnreachable)
			}
			f.wantChanges(t)
		})
	}
}

func TestUnreachableAfterIsConfigurable(t *testing.T) {
	f := newFixture(t, Config{UnreachableAfter: 1})
	f.tr.Observe("preauth", time.Second, failmode.Unreachable)
	f.wantState(t, Unreachable)
}

func TestOnlyPreauthCountsTowardsUnreachable(t *testing.T) {
	f := newFixture(t, Config{})
	for range 5 {
		f.tr.Observe("auth", time.Second, failmode.Unreachable)
		f.tr.Observe("auth_status", time.Second, failmode.Unreachable)
	}
	f.wantState(t, Degraded) // auth failures are degradation, never failmode
	f.wantChanges(t, "ok→degraded")
}

func TestIgnoredOutcomes(t *testing.T) {
	f := newFixture(t, Config{})
	for range 10 {
		// The caller cancelled: says nothing about Duo.
		f.tr.Observe("preauth", 10*time.Second, failmode.Unknown)
		// The probe reports its own result: the client's "check" hook is ignored.
		f.tr.Observe("check", time.Second, failmode.Unreachable)
		f.tr.Observe("check", time.Second, failmode.Misconfigured)
	}
	st := f.wantState(t, OK)
	if st.ConsecutiveUnreachable != 0 || st.LastClass != failmode.Unknown || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	f.wantChanges(t)
}

func TestFailedProbeAloneGoesUnreachable(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(refused())
	f.clock.Add(time.Minute)
	err := f.tr.Probe(context.Background())
	var fe *failmode.Error
	if !errors.As(err, &fe) || fe.Class != failmode.Unreachable {
		t.Fatalf("Probe returned %v, want the check's error", err)
	}
	st := f.wantState(t, Unreachable)
	if !st.LastProbe.Equal(f.clock.Now()) || st.LastError != "check: connection refused" || st.ConsecutiveUnreachable != 1 {
		t.Fatalf("status %+v", st)
	}
	if ch := f.wantChanges(t, "ok→unreachable")[0]; ch.Reason != "check: connection refused" {
		t.Fatalf("reason %q", ch.Reason)
	}
	// More failed probes: same state, no new change, the count grows.
	f.tr.Probe(context.Background())
	if st := f.wantState(t, Unreachable); st.ConsecutiveUnreachable != 2 {
		t.Fatalf("count %d", st.ConsecutiveUnreachable)
	}
	f.wantChanges(t, "ok→unreachable")
}

func TestProbeSuccessRecovers(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	// Traffic never takes the state out of unreachable.
	f.tr.Observe("preauth", fastAnswer, failmode.Allowed)
	f.tr.Observe("auth", fastAnswer, failmode.Allowed)
	f.wantState(t, Unreachable)

	f.checker.set(nil)
	f.clock.Add(3 * time.Second)
	if err := f.tr.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := f.wantState(t, OK)
	if st.LastError != "" || st.ConsecutiveUnreachable != 0 || st.LastClass != failmode.Allowed || !st.Since.Equal(f.clock.Now()) {
		t.Fatalf("status %+v", st)
	}
	if ch := f.wantChanges(t, "ok→unreachable", "unreachable→ok")[1]; ch.Reason != "check ok" {
		t.Fatalf("reason %q", ch.Reason)
	}
}

func TestRecoveryToDegradedWhenTheWindowSaysSo(t *testing.T) {
	f := newFixture(t, Config{})
	for range 3 {
		f.tr.Observe("preauth", 4*time.Second, failmode.Allowed)
	}
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	chs := f.wantChanges(t, "ok→degraded", "degraded→unreachable", "unreachable→degraded")
	if !strings.HasPrefix(chs[2].Reason, "check ok, but preauth latency 4s over 3s") {
		t.Fatalf("reason %q", chs[2].Reason)
	}
}

func TestMisconfigured(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(&failmode.Error{Class: failmode.Misconfigured, Stage: failmode.StageCheck, Detail: "HTTP 401: Invalid signature in request credentials"})
	f.tr.Probe(context.Background())
	f.wantState(t, Misconfigured)
	if ch := f.wantChanges(t, "ok→misconfigured")[0]; ch.Reason != "check: HTTP 401: Invalid signature in request credentials" {
		t.Fatalf("reason %q", ch.Reason)
	}

	// Neither traffic nor an unreachable probe leaves misconfigured.
	f.tr.Observe("preauth", fastAnswer, failmode.Allowed)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.wantState(t, Misconfigured)

	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	f.wantChanges(t, "ok→misconfigured", "misconfigured→ok")
}

func TestMisconfiguredFromTrafficAtAnyEndpoint(t *testing.T) {
	for _, ep := range []string{"preauth", "auth", "auth_status"} {
		for _, class := range []failmode.Class{failmode.Misconfigured, failmode.Untrusted} {
			t.Run(ep+"/"+class.String(), func(t *testing.T) {
				f := newFixture(t, Config{})
				f.tr.Observe(ep, fastAnswer, class)
				f.wantState(t, Misconfigured)
				if ch := f.wantChanges(t, "ok→misconfigured")[0]; ch.Reason != ep+" "+class.String() {
					t.Fatalf("reason %q", ch.Reason)
				}
			})
		}
	}
}

func TestUnreachableToMisconfiguredByTraffic(t *testing.T) {
	// A straggler that Duo rejected: deny rather than fail open.
	f := newFixture(t, Config{})
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.tr.Observe("preauth", fastAnswer, failmode.Misconfigured)
	f.wantState(t, Misconfigured)
	f.wantChanges(t, "ok→unreachable", "unreachable→misconfigured")
}

func TestAuthTimeoutsDegrade(t *testing.T) {
	f := newFixture(t, Config{})
	f.tr.Observe("preauth", fastAnswer, failmode.Allowed)
	f.tr.Observe("auth", 60*time.Second, failmode.Degraded)
	f.wantState(t, Degraded)
	if ch := f.wantChanges(t, "ok→degraded")[0]; ch.Reason != "auth degraded" {
		t.Fatalf("reason %q", ch.Reason)
	}
	f.tr.Observe("auth", 60*time.Second, failmode.Degraded)
	f.tr.Observe("preauth", fastAnswer, failmode.Allowed)
	f.wantChanges(t, "ok→degraded")

	// The window still holds them 59s after the last one...
	f.clock.Add(59 * time.Second)
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	// ...and no longer after a window: the probe brings it back.
	f.clock.Add(2 * time.Second)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	if ch := f.wantChanges(t, "ok→degraded", "degraded→ok")[1]; !strings.HasPrefix(ch.Reason, "no degraded outcome") {
		t.Fatalf("reason %q", ch.Reason)
	}
}

func TestRateLimitDegradesAtAnyEndpoint(t *testing.T) {
	for _, ep := range []string{"preauth", "auth", "check"} {
		t.Run(ep, func(t *testing.T) {
			f := newFixture(t, Config{})
			if ep == "check" {
				f.checker.set(&failmode.Error{Class: failmode.Degraded, Stage: failmode.StageCheck, Detail: "HTTP 429"})
				f.tr.Probe(context.Background())
			} else {
				f.tr.Observe(ep, fastAnswer, failmode.Degraded)
			}
			f.wantState(t, Degraded)
			f.wantChanges(t, "ok→degraded")
		})
	}
}

func TestRateLimitedProbeLeavesUnreachable(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.checker.set(&failmode.Error{Class: failmode.Degraded, Stage: failmode.StageCheck, Detail: "HTTP 429"})
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	f.wantChanges(t, "ok→unreachable", "unreachable→degraded")
}

func TestLatencyWindow(t *testing.T) {
	f := newFixture(t, Config{DegradedLatency: 3 * time.Second, Window: 60 * time.Second})
	// One or two slow calls are not a trend.
	f.tr.Observe("preauth", 5*time.Second, failmode.Allowed)
	f.clock.Add(time.Second)
	f.tr.Observe("preauth", 5*time.Second, failmode.Denied)
	f.wantState(t, OK)
	f.clock.Add(time.Second)
	f.tr.Observe("preauth", 200*time.Millisecond, failmode.Allowed) // mean 3.4s over 3 calls
	f.wantState(t, Degraded)
	if ch := f.wantChanges(t, "ok→degraded")[0]; ch.Reason != "preauth latency 3.4s over 3s (mean of 3 calls in the last 60s)" {
		t.Fatalf("reason %q", ch.Reason)
	}
	// Fast answers bring the mean back under the threshold.
	f.tr.Observe("preauth", 200*time.Millisecond, failmode.Allowed) // mean 2.6s
	f.wantState(t, OK)
	f.wantChanges(t, "ok→degraded", "degraded→ok")

	// Slow again, then the slow calls age out of the window.
	for range 4 {
		f.tr.Observe("preauth", 9*time.Second, failmode.Allowed)
	}
	f.wantState(t, Degraded)
	f.clock.Add(61 * time.Second)
	f.tr.Observe("preauth", fastAnswer, failmode.Allowed)
	f.wantState(t, OK)
	f.wantChanges(t, "ok→degraded", "degraded→ok", "ok→degraded", "degraded→ok")
}

func TestProbeTimeoutIsUnreachable(t *testing.T) {
	f := newFixture(t, Config{ProbeTimeout: 20 * time.Millisecond})
	f.tr.checker = fakeChecker{check: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err() // unclassified: the tracker's own deadline decides
	}}
	if err := f.tr.Probe(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Probe returned %v", err)
	}
	f.wantState(t, Unreachable)
	if ch := f.wantChanges(t, "ok→unreachable")[0]; ch.Reason != "check: no answer within 20ms" {
		t.Fatalf("reason %q", ch.Reason)
	}
}

func TestCancelledProbeChangesNothing(t *testing.T) {
	f := newFixture(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.tr.checker = fakeChecker{check: func(ctx context.Context) error {
		return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "dial: operation was canceled", Err: ctx.Err()}
	}}
	if err := f.tr.Probe(ctx); err == nil {
		t.Fatal("want the check's error")
	}
	f.wantState(t, OK)
	f.wantChanges(t)
}

func TestUnclassifiedProbeErrorChangesNothing(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(errors.New("something odd"))
	f.tr.Probe(context.Background())
	st := f.wantState(t, OK)
	if st.LastClass != failmode.Unknown || st.LastError != "check: unclassified error: something odd" || st.LastProbe.IsZero() {
		t.Fatalf("status %+v", st)
	}
	f.wantChanges(t)
}

func TestDefaults(t *testing.T) {
	tr := New(Config{UnreachableAfter: -1, Window: -time.Second}, &switchChecker{})
	c := tr.cfg
	if c.UnreachableAfter != 3 || c.DegradedLatency != 3*time.Second || c.Window != time.Minute ||
		c.ProbeInterval != 10*time.Second || c.FastProbeInterval != time.Second || c.ProbeTimeout != 5*time.Second || c.Now == nil {
		t.Fatalf("defaults %+v", c)
	}
	if st := tr.Status(); st.State != OK || st.Since.IsZero() {
		t.Fatalf("initial status %+v", st)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New with a nil Checker must panic")
		}
	}()
	New(Config{}, nil)
}

func TestNoOnChange(t *testing.T) {
	tr := New(Config{UnreachableAfter: 1}, &switchChecker{})
	tr.Observe("preauth", time.Second, failmode.Unreachable)
	if tr.Status().State != Unreachable || len(tr.pending) != 0 {
		t.Fatal("a Tracker without OnChange still tracks, and queues nothing")
	}
}

// TestOnChangeInOrder races traffic that flips the state back and forth and
// checks that the changes, as delivered, form one chain.
func TestOnChangeInOrder(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []Change
		tr   *Tracker
		done = make(chan struct{})
	)
	checker := &switchChecker{}
	tr = New(Config{UnreachableAfter: 1, OnChange: func(c Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}}, checker)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				switch (g + i) % 3 {
				case 0:
					tr.Observe("preauth", time.Millisecond, failmode.Unreachable)
				case 1:
					tr.Probe(context.Background()) // ok: recovers
				case 2:
					tr.Observe("auth", time.Millisecond, failmode.Degraded)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no change delivered")
	}
	prev := OK
	for i, c := range got {
		if c.From != prev || c.From == c.To {
			t.Fatalf("change %d %s→%s does not follow %s", i, c.From, c.To, prev)
		}
		prev = c.To
	}
	if st := tr.Status(); st.State != prev {
		t.Fatalf("last change ends in %s, state is %s", prev, st.State)
	}
}

func TestPanickingOnChangeDoesNotWedge(t *testing.T) {
	var seen []Change
	tr := New(Config{UnreachableAfter: 1, OnChange: func(c Change) {
		seen = append(seen, c)
		if len(seen) == 1 {
			panic("boom")
		}
	}}, &switchChecker{})
	func() {
		defer func() { _ = recover() }()
		tr.Observe("preauth", time.Millisecond, failmode.Unreachable)
	}()
	tr.Probe(context.Background())
	if len(seen) != 2 || seen[1].To != OK {
		t.Fatalf("changes after a panic: %+v", seen)
	}
}
