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
	f.tr.Observe(failmode.StagePreauth, 2*time.Millisecond, failmode.Unreachable)
	f.tr.Observe(failmode.StagePreauth, 2*time.Millisecond, failmode.Unreachable)
	f.wantState(t, OK)
	f.wantChanges(t)

	f.clock.Add(time.Second)
	f.tr.Observe(failmode.StagePreauth, 2*time.Millisecond, failmode.Unreachable)
	st := f.wantState(t, Unreachable)
	if !st.Since.Equal(f.clock.Now()) || st.ConsecutiveUnreachable != 3 || st.LastClass != failmode.Unreachable || st.LastError != "preauth unreachable" {
		t.Fatalf("status %+v", st)
	}
	ch := f.wantChanges(t, "ok→unreachable")[0]
	if ch.Reason != "3 consecutive preauth calls unreachable" || !ch.At.Equal(f.clock.Now()) || ch.Integration != "api-test.duosecurity.com/DIXXXXXXXXXXXXXXXXXX" {
		t.Fatalf("change %+v", ch)
	}

	// Stragglers repeat the outcome: no new change.
	f.tr.Observe(failmode.StagePreauth, 2*time.Millisecond, failmode.Unreachable)
	f.tr.Observe(failmode.StagePreauth, time.Millisecond, failmode.Allowed)
	f.tr.Observe(failmode.StageAuth, time.Millisecond, failmode.Degraded)
	f.wantState(t, Unreachable)
	f.wantChanges(t, "ok→unreachable")
}

func TestGoodPreauthResetsTheCount(t *testing.T) {
	for _, good := range []failmode.Class{failmode.Allowed, failmode.Denied} {
		t.Run(good.String(), func(t *testing.T) {
			f := newFixture(t, Config{})
			for _, c := range []failmode.Class{failmode.Unreachable, failmode.Unreachable, good, failmode.Unreachable, failmode.Unreachable} {
				f.tr.Observe(failmode.StagePreauth, fastAnswer, c)
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
	f.tr.Observe(failmode.StagePreauth, time.Second, failmode.Unreachable)
	f.wantState(t, Unreachable)
}

func TestOnlyPreauthCountsTowardsUnreachable(t *testing.T) {
	f := newFixture(t, Config{})
	for range 5 {
		f.tr.Observe(failmode.StageAuth, time.Second, failmode.Unreachable)
		f.tr.Observe(failmode.Stage(99), time.Second, failmode.Unreachable)
	}
	f.wantState(t, Degraded) // auth failures are degradation, never failmode
	f.wantChanges(t, "ok→degraded")
}

func TestIgnoredOutcomes(t *testing.T) {
	f := newFixture(t, Config{})
	for range 10 {
		// The caller cancelled: says nothing about Duo.
		f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unknown)
		// The probe reports its own result: the client's "check" hook is ignored.
		f.tr.Observe(failmode.StageCheck, time.Second, failmode.Unreachable)
		f.tr.Observe(failmode.StageCheck, time.Second, failmode.Misconfigured)
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
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
	f.tr.Observe(failmode.StageAuth, fastAnswer, failmode.Allowed)
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
	f.tr.Observe(failmode.StageAuth, 60*time.Second, failmode.Degraded)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	chs := f.wantChanges(t, "ok→degraded", "degraded→unreachable", "unreachable→degraded")
	if !strings.HasPrefix(chs[2].Reason, "check ok, but auth degraded (1 degraded outcomes in the last 1m)") {
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
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.wantState(t, Misconfigured)

	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	f.wantChanges(t, "ok→misconfigured", "misconfigured→ok")
}

func TestMisconfiguredFromTrafficAtAnyEndpoint(t *testing.T) {
	for _, ep := range []failmode.Stage{failmode.StagePreauth, failmode.StageAuth, failmode.Stage(99)} {
		for _, class := range []failmode.Class{failmode.Misconfigured, failmode.Untrusted} {
			t.Run(ep.String()+"/"+class.String(), func(t *testing.T) {
				f := newFixture(t, Config{})
				f.tr.Observe(ep, fastAnswer, class)
				f.wantState(t, Misconfigured)
				if ch := f.wantChanges(t, "ok→misconfigured")[0]; ch.Reason != ep.String()+" "+class.String() {
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
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Misconfigured)
	f.wantState(t, Misconfigured)
	f.wantChanges(t, "ok→unreachable", "unreachable→misconfigured")
}

func TestAuthTimeoutsDegrade(t *testing.T) {
	f := newFixture(t, Config{})
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
	f.tr.Observe(failmode.StageAuth, 60*time.Second, failmode.Degraded)
	f.wantState(t, Degraded)
	if ch := f.wantChanges(t, "ok→degraded")[0]; ch.Reason != "auth degraded" {
		t.Fatalf("reason %q", ch.Reason)
	}
	f.tr.Observe(failmode.StageAuth, 60*time.Second, failmode.Degraded)
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
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
	for _, ep := range []failmode.Stage{failmode.StagePreauth, failmode.StageAuth, failmode.StageCheck} {
		t.Run(ep.String(), func(t *testing.T) {
			f := newFixture(t, Config{})
			if ep == failmode.StageCheck {
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
	f.tr.Observe(failmode.StagePreauth, 5*time.Second, failmode.Allowed)
	f.clock.Add(time.Second)
	f.tr.Observe(failmode.StagePreauth, 5*time.Second, failmode.Denied)
	f.wantState(t, OK)
	f.clock.Add(time.Second)
	f.tr.Observe(failmode.StagePreauth, 200*time.Millisecond, failmode.Allowed) // mean 3.4s over 3 calls
	f.wantState(t, Degraded)
	if ch := f.wantChanges(t, "ok→degraded")[0]; ch.Reason != "preauth latency 3.4s over 3s (mean of 3 calls in the last 1m)" {
		t.Fatalf("reason %q", ch.Reason)
	}
	// Fast answers bring the mean back under the threshold.
	f.tr.Observe(failmode.StagePreauth, 200*time.Millisecond, failmode.Allowed) // mean 2.6s
	f.wantState(t, OK)
	f.wantChanges(t, "ok→degraded", "degraded→ok")

	// Slow again, then the slow calls age out of the window.
	for range 4 {
		f.tr.Observe(failmode.StagePreauth, 9*time.Second, failmode.Allowed)
	}
	f.wantState(t, Degraded)
	f.clock.Add(61 * time.Second)
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
	f.wantState(t, OK)
	f.wantChanges(t, "ok→degraded", "degraded→ok", "ok→degraded", "degraded→ok")
}

// TestProbeTimeoutIsOnePieceOfEvidence: the probe's own deadline
// (ProbeTimeout, duo.timeout in the program) cuts it off, and a probe cut
// off is one unreachable outcome among UnreachableAfter, not an outage.
func TestProbeTimeoutIsOnePieceOfEvidence(t *testing.T) {
	f := newFixture(t, Config{ProbeTimeout: 20 * time.Millisecond})
	f.tr.checker = fakeChecker{check: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err() // unclassified: the tracker's own deadline decides
	}}
	for i := 1; i <= 2; i++ {
		if err := f.tr.Probe(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Probe returned %v", err)
		}
		if st := f.wantState(t, OK); st.ConsecutiveUnreachable != i || st.LastError != "check: no answer within 20ms" {
			t.Fatalf("after %d timeouts: %+v", i, st)
		}
	}
	f.tr.Probe(context.Background())
	f.wantState(t, Unreachable)
	if ch := f.wantChanges(t, "ok→unreachable")[0]; ch.Reason != "check: no answer within 20ms (3 consecutive preauth calls and probes unreachable)" {
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
	if st.LastClass != failmode.Local || st.LastError != "check: unclassified error: something odd" || st.LastProbe.IsZero() {
		t.Fatalf("status %+v", st)
	}
	f.wantChanges(t)
}

// TestConfigIsRequired: the tracker keeps no defaults of its own (config
// is their one home, so a probe deadline can never drift from
// duo.timeout again): every count and duration must be given.
func TestConfigIsRequired(t *testing.T) {
	full := withConfigDefaults(Config{ProbeTimeout: 7 * time.Second})
	tr := New(full, &switchChecker{})
	if c := tr.cfg; c.ProbeTimeout != 7*time.Second || c.Now == nil {
		t.Fatalf("config %+v", c)
	}
	if st := tr.Status(); st.State != OK || st.Since.IsZero() {
		t.Fatalf("initial status %+v", st)
	}
	mustPanic := func(what string, cfg Config, c Checker) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("New with %s must panic", what)
			}
		}()
		New(cfg, c)
	}
	mustPanic("a nil Checker", full, nil)
	for _, tc := range []struct {
		name string
		zero func(*Config)
	}{
		{"no ProbeTimeout", func(c *Config) { c.ProbeTimeout = 0 }},
		{"a negative ProbeTimeout", func(c *Config) { c.ProbeTimeout = -time.Second }},
		{"no UnreachableAfter", func(c *Config) { c.UnreachableAfter = 0 }},
		{"no DegradedLatency", func(c *Config) { c.DegradedLatency = 0 }},
		{"no Window", func(c *Config) { c.Window = 0 }},
		{"no ProbeInterval", func(c *Config) { c.ProbeInterval = 0 }},
		{"no FastProbeInterval", func(c *Config) { c.FastProbeInterval = 0 }},
	} {
		cfg := full
		tc.zero(&cfg)
		mustPanic(tc.name, cfg, &switchChecker{})
	}
}

func TestNoOnChange(t *testing.T) {
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, UnreachableAfter: 1}, &switchChecker{})
	tr.Observe(failmode.StagePreauth, time.Second, failmode.Unreachable)
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
	tr = newTracker(Config{ProbeTimeout: testProbeTimeout, UnreachableAfter: 1, OnChange: func(c Change) {
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
					tr.Observe(failmode.StagePreauth, time.Millisecond, failmode.Unreachable)
				case 1:
					tr.Probe(context.Background()) // ok: recovers
				case 2:
					tr.Observe(failmode.StageAuth, time.Millisecond, failmode.Degraded)
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
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, UnreachableAfter: 1, OnChange: func(c Change) {
		seen = append(seen, c)
		if len(seen) == 1 {
			panic("boom")
		}
	}}, &switchChecker{})
	func() {
		defer func() { _ = recover() }()
		tr.Observe(failmode.StagePreauth, time.Millisecond, failmode.Unreachable)
	}()
	tr.Probe(context.Background())
	// The probe contradicts an outage seen on preauth alone: degraded.
	if len(seen) != 2 || seen[1].From != Unreachable || seen[1].To != Degraded {
		t.Fatalf("changes after a panic: %+v", seen)
	}
}

// TestProbeErrorsByType: which probe failures count at once and which are
// one piece of evidence, decided on the error's types only.
func TestProbeErrorsByType(t *testing.T) {
	for _, tt := range []struct {
		name     string
		err      error
		decisive bool
	}{
		{"connection refused", refused(), true},
		{"no such host", noSuchHost(), true},
		{"dns timeout", dnsTimeout(), false},
		{"deadline exceeded", noAnswer(), false},
		{"read timeout", readTimeout(), false},
		{"connection reset", reset(), false},
		{"HTTP 503", http503(), false},
		{"'connection refused' in the text only", refusedText(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			f.checker.set(tt.err)
			f.tr.Probe(context.Background())
			if tt.decisive {
				f.wantState(t, Unreachable)
				return
			}
			if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 1 {
				t.Fatalf("count %d, want 1", st.ConsecutiveUnreachable)
			}
			f.tr.Probe(context.Background())
			f.wantState(t, OK)
			f.tr.Probe(context.Background())
			f.wantState(t, Unreachable)
		})
	}
}

func TestProbesAndPreauthCountTogether(t *testing.T) {
	f := newFixture(t, Config{})
	f.checker.set(noAnswer())
	f.tr.Probe(context.Background())
	f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
	f.wantState(t, OK)
	f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
	f.wantState(t, Unreachable)
	if ch := f.wantChanges(t, "ok→unreachable")[0]; ch.Reason != "3 consecutive preauth calls and probes unreachable" {
		t.Fatalf("reason %q", ch.Reason)
	}
}

// TestLoginsVetoProbeEvidence: while logins get answers, no probe makes
// Duo unreachable, not even a refused one; only preauth traffic can.
func TestLoginsVetoProbeEvidence(t *testing.T) {
	for _, good := range []struct {
		endpoint failmode.Stage
		class    failmode.Class
	}{
		{failmode.StagePreauth, failmode.Allowed}, {failmode.StagePreauth, failmode.Denied}, {failmode.StagePreauth, failmode.Rejected},
		{failmode.StageAuth, failmode.Allowed}, {failmode.StageAuth, failmode.Denied}, {failmode.StageAuth, failmode.Rejected},
	} {
		t.Run(good.endpoint.String()+"/"+good.class.String(), func(t *testing.T) {
			f := newFixture(t, Config{})
			f.tr.Observe(good.endpoint, fastAnswer, good.class)
			for _, err := range []error{noAnswer(), refused(), noSuchHost(), http503(), noAnswer(), noAnswer()} {
				f.clock.Add(9 * time.Second) // all within the window
				f.checker.set(err)
				f.tr.Probe(context.Background())
			}
			if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 0 || st.LastError != "check: no answer within 10s" {
				t.Fatalf("vetoed probes: %+v", st)
			}
			// A window after the last good answer, the probe counts again.
			f.clock.Add(time.Minute)
			f.checker.set(refused())
			f.tr.Probe(context.Background())
			f.wantState(t, Unreachable)
		})
	}
	t.Run("preauth traffic still counts", func(t *testing.T) {
		f := newFixture(t, Config{})
		f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
		f.checker.set(noAnswer())
		for range 3 {
			f.tr.Probe(context.Background())
			f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
		}
		f.wantState(t, Unreachable)
		if ch := f.wantChanges(t, "ok→unreachable")[0]; ch.Reason != "3 consecutive preauth calls and probes unreachable" {
			t.Fatalf("reason %q", ch.Reason)
		}
	})
}

func TestRejectedIsAnAnswerThatMovesNothing(t *testing.T) {
	for _, ep := range []failmode.Stage{failmode.StagePreauth, failmode.StageAuth} {
		t.Run(ep.String(), func(t *testing.T) {
			f := newFixture(t, Config{})
			f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
			f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
			for range 5 {
				f.tr.Observe(ep, fastAnswer, failmode.Rejected)
			}
			st := f.wantState(t, OK)
			if st.ConsecutiveUnreachable != 0 || st.LastClass != failmode.Rejected {
				t.Fatalf("status %+v", st)
			}
			// Degraded stays degraded (even with a clean window: Rejected
			// does not judge it), unreachable stays unreachable.
			f.tr.Observe(failmode.StageAuth, time.Minute, failmode.Degraded)
			f.clock.Add(2 * time.Minute)
			f.tr.Observe(ep, fastAnswer, failmode.Rejected)
			f.wantState(t, Degraded)
			for range 3 {
				f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable)
			}
			f.tr.Observe(ep, fastAnswer, failmode.Rejected)
			f.wantState(t, Unreachable)
			// (The first preauth failure judged the clean window: ok.)
			f.wantChanges(t, "ok→degraded", "degraded→ok", "ok→unreachable")
		})
	}
}

func TestLocalSaysNothingAboutDuo(t *testing.T) {
	f := newFixture(t, Config{UnreachableAfter: 1})
	for range 10 {
		f.tr.Observe(failmode.StagePreauth, 10*time.Millisecond, failmode.Local)
		f.tr.Observe(failmode.StageAuth, 10*time.Millisecond, failmode.Local)
	}
	if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 0 || st.LastClass != failmode.Unknown {
		t.Fatalf("status %+v", st)
	}
	f.checker.set(&failmode.Error{Class: failmode.Local, Stage: failmode.StageCheck, Detail: "too many open files"})
	f.tr.Probe(context.Background())
	if st := f.wantState(t, OK); st.ConsecutiveUnreachable != 0 || st.LastError != "check: too many open files" {
		t.Fatalf("status %+v", st)
	}
	// Nor does it take the state out of unreachable.
	f.checker.set(refused())
	f.tr.Probe(context.Background())
	f.checker.set(&failmode.Error{Class: failmode.Local, Stage: failmode.StageCheck, Detail: "too many open files"})
	f.tr.Probe(context.Background())
	f.wantState(t, Unreachable)
	f.wantChanges(t, "ok→unreachable")
}

// TestCheckOKPreauthFailsSettles is the hysteresis rule: the check works,
// preauth fails with 5xx. The episode announces ok → unreachable →
// degraded, stays degraded through any number of probes and failed binds,
// and returns to ok a window after preauth works again: three changes.
func TestCheckOKPreauthFailsSettles(t *testing.T) {
	f := newFixture(t, Config{})
	fail3 := func() {
		for range 3 {
			f.tr.Observe(failmode.StagePreauth, 20*time.Millisecond, failmode.Unreachable)
		}
	}
	fail3()
	f.wantState(t, Unreachable)
	f.tr.Probe(context.Background())
	st := f.wantState(t, Degraded)
	if st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	for range 100 {
		f.clock.Add(time.Second)
		fail3()
		f.wantState(t, Degraded)
		f.tr.Probe(context.Background())
		f.wantState(t, Degraded)
	}
	// Even a minute without binds, while probes pass, ends nothing early:
	// the last failures are still in the window.
	f.clock.Add(59 * time.Second)
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	// Preauth works again: the window clears, and the state with it.
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed)
	f.wantState(t, Degraded)
	f.clock.Add(2 * time.Second)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	chs := f.wantChanges(t, "ok→unreachable", "unreachable→degraded", "degraded→ok")
	if chs[1].Reason != "check ok, but preauth calls fail: Duo answers, so degraded" ||
		!strings.HasPrefix(chs[2].Reason, "no degraded outcome") {
		t.Fatalf("reasons %q, %q", chs[1].Reason, chs[2].Reason)
	}
	// A new episode after a clean window is announced again.
	fail3()
	f.wantState(t, Unreachable)
}

// TestFailedProbeEndsTheContradiction: while degraded on check-ok-but-
// preauth-fails, a probe that fails means Duo is down after all.
func TestFailedProbeEndsTheContradiction(t *testing.T) {
	f := newFixture(t, Config{})
	for range 3 {
		f.tr.Observe(failmode.StagePreauth, 20*time.Millisecond, failmode.Unreachable)
	}
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded)
	f.tr.Observe(failmode.StagePreauth, 20*time.Millisecond, failmode.Unreachable)
	f.checker.set(noAnswer())
	f.tr.Probe(context.Background()) // ends the contradiction: 2 pieces
	f.wantState(t, Degraded)
	f.tr.Observe(failmode.StagePreauth, 20*time.Millisecond, failmode.Unreachable) // the third
	f.wantState(t, Unreachable)
	// The probe failed too: its success now means Duo is back.
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, Degraded) // the window still holds the failures...
	f.clock.Add(time.Minute)
	f.tr.Probe(context.Background())
	f.wantState(t, OK) // ...for one window
	f.wantChanges(t, "ok→unreachable", "unreachable→degraded", "degraded→unreachable", "unreachable→degraded", "degraded→ok")
}

// TestOrdinaryOutageRecoversAtOnce: Duo is down for logins and the probe
// alike; when it returns, one successful probe restores ok.
func TestOrdinaryOutageRecoversAtOnce(t *testing.T) {
	f := newFixture(t, Config{})
	f.tr.Observe(failmode.StagePreauth, fastAnswer, failmode.Allowed) // vetoes probes...
	for range 3 {
		f.tr.Observe(failmode.StagePreauth, 10*time.Second, failmode.Unreachable) // ...not traffic
	}
	f.wantState(t, Unreachable)
	f.checker.set(noAnswer())
	f.tr.Probe(context.Background()) // vetoed, but it says the check is down too
	f.checker.set(nil)
	f.tr.Probe(context.Background())
	f.wantState(t, OK)
	f.wantChanges(t, "ok→unreachable", "unreachable→ok")
}
