package duostate

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// waitTimeout only bounds a test that would otherwise hang; passing tests
// never wait for it.
const waitTimeout = 10 * time.Second

// probeCounter is a Checker that reports every call on a channel and returns
// whatever it was last set to.
type probeCounter struct {
	calls chan struct{}
	mu    sync.Mutex
	err   error
}

func newProbeCounter() *probeCounter { return &probeCounter{calls: make(chan struct{}, 1000)} }

func (p *probeCounter) Check(ctx context.Context) error {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	p.calls <- struct{}{}
	return err
}

func (p *probeCounter) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *probeCounter) waitCalls(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for i := range n {
		select {
		case <-p.calls:
		case <-timeout:
			t.Fatalf("only %d of %d probes within %s", i, n, waitTimeout)
		}
	}
}

// waitState waits for tr to reach want, as reported by OnChange.
func waitState(t *testing.T, states <-chan State, want State) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case s := <-states:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("state %s not reached within %s", want, waitTimeout)
		}
	}
}

// startRun runs tr.Run in a goroutine; the returned stop cancels it and
// waits for it to return.
func startRun(t *testing.T, tr *Tracker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunProbesAtOnceThenFastWhileUnreachable(t *testing.T) {
	p := newProbeCounter()
	p.set(refused())
	states := make(chan State, 100)
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, ProbeInterval: time.Hour, FastProbeInterval: 10 * time.Millisecond,
		OnChange: func(c Change) { states <- c.To }}, p)
	startRun(t, tr)

	// The first probe runs at once and fails; the next ones come at the fast
	// pace (an hour-long interval would never deliver them).
	waitState(t, states, Unreachable)
	p.waitCalls(t, 5)

	// Recovery: back to the slow pace.
	p.set(nil)
	waitState(t, states, OK)
	for len(p.calls) > 0 { // drain probes already counted
		<-p.calls
	}
	select {
	case <-p.calls:
		// At most one probe may have been in flight when OK was reported.
		select {
		case <-p.calls:
			t.Fatal("still probing fast after recovery")
		case <-time.After(100 * time.Millisecond):
		}
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRunSpeedsUpWhenTrafficFindsDuoDown(t *testing.T) {
	p := newProbeCounter()
	states := make(chan State, 100)
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, ProbeInterval: time.Hour, FastProbeInterval: 10 * time.Millisecond,
		OnChange: func(c Change) { states <- c.To }}, p)
	startRun(t, tr)
	p.waitCalls(t, 1) // the immediate probe, which succeeds
	// Let that probe's success be applied first: a success that lands after
	// the traffic below would (rightly) count as Duo answering again.
	deadline := time.Now().Add(waitTimeout)
	for tr.Status().LastProbe.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("the first probe was never applied")
		}
		time.Sleep(time.Millisecond)
	}

	p.set(refused())
	for range 3 {
		tr.Observe(failmode.StagePreauth, time.Second, failmode.Unreachable)
	}
	waitState(t, states, Unreachable)
	// Without the switch to the fast pace, the next probe would come in an hour.
	p.waitCalls(t, 3)

	p.set(nil)
	waitState(t, states, OK)
}

func TestRunProbesFastWhileMisconfigured(t *testing.T) {
	p := newProbeCounter()
	p.set(&failmode.Error{Class: failmode.Misconfigured, Stage: failmode.StageCheck, Detail: "HTTP 401"})
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, ProbeInterval: time.Hour, FastProbeInterval: 10 * time.Millisecond}, p)
	startRun(t, tr)
	p.waitCalls(t, 4)
	if st := tr.Status(); st.State != Misconfigured {
		t.Fatalf("state %s", st.State)
	}
}

func TestRunReturnsOnCancelWithoutLeaking(t *testing.T) {
	before := runtime.NumGoroutine()
	entered := make(chan struct{}, 1)
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout}, fakeChecker{check: func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done() // a probe in flight when Run is cancelled
		return ctx.Err()
	}})
	stop := startRun(t, tr)
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("no probe started")
	}
	stop()
	if st := tr.Status(); st.State != OK {
		t.Fatalf("a probe cut off by shutdown changed the state to %s", st.State)
	}
	// Goroutines that are exiting may still be counted for a moment.
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestRunReturnsAtOnceWhenAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newProbeCounter()
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout}, p)
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	if st := tr.Status(); st.State != OK {
		t.Fatalf("state %s", st.State)
	}
}

// TestRunProbesFastWhileCountingEvidence: a probe that timed out is one
// piece of evidence; the next ones come at the fast pace so that an outage
// is confirmed (or refuted) in seconds, not in probe intervals.
func TestRunProbesFastWhileCountingEvidence(t *testing.T) {
	p := newProbeCounter()
	p.set(&failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "no answer within 10s"})
	states := make(chan State, 100)
	tr := newTracker(Config{ProbeTimeout: testProbeTimeout, ProbeInterval: time.Hour, FastProbeInterval: 10 * time.Millisecond,
		OnChange: func(c Change) { states <- c.To }}, p)
	startRun(t, tr)
	waitState(t, states, Unreachable) // three probes: an hour apart without the fast pace
	p.set(nil)
	waitState(t, states, OK)
}
