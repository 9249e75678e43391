package duostate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// Defaults for the zero fields of Config.
const (
	DefaultUnreachableAfter  = 3
	DefaultDegradedLatency   = 3 * time.Second
	DefaultWindow            = 60 * time.Second
	DefaultProbeInterval     = 10 * time.Second
	DefaultFastProbeInterval = 1 * time.Second
	DefaultProbeTimeout      = 5 * time.Second
)

// Endpoint names Observe understands; they are duoclient's.
const (
	endpointPreauth = "preauth"
	endpointAuth    = "auth"
	endpointCheck   = "check"
)

// Checker proves the integration works with one signed request, such as
// duoclient.Client.Check (GET /auth/v2/check). It returns nil when Duo
// accepted the keys and the signature, else preferably a *failmode.Error
// saying why; it must honour ctx.
type Checker interface {
	Check(ctx context.Context) error
}

// Config tunes a Tracker. Zero (or negative) durations and counts take the
// defaults.
type Config struct {
	// Integration names the integration in Status and Change, e.g.
	// duoclient.Client.Integration() ("api_host/ikey").
	Integration string
	// UnreachableAfter is how many consecutive unreachable preauth calls
	// make the state Unreachable; default 3. One unreachable probe suffices.
	UnreachableAfter int
	// DegradedLatency is the mean preauth latency over Window above which
	// the state is Degraded (with at least MinLatencySamples calls); default 3s.
	DegradedLatency time.Duration
	// Window is the sliding window for latency and degraded outcomes,
	// measured in steps of Window/60; default 60s.
	Window time.Duration
	// ProbeInterval is how often Run probes while OK or Degraded; default 10s.
	ProbeInterval time.Duration
	// FastProbeInterval is how often Run probes while Unreachable or
	// Misconfigured, so recovery is noticed quickly; default 1s.
	FastProbeInterval time.Duration
	// ProbeTimeout bounds one probe; default 5s. A probe cut off by it is
	// unreachable.
	ProbeTimeout time.Duration
	// Now is the clock for timestamps and the window; default time.Now.
	// Run's intervals are real timers whatever the clock.
	Now func() time.Time
	// OnChange, when non-nil, is called on every state change, exactly once
	// and in order, outside any lock of the Tracker: by the goroutine whose
	// call caused the change or, when changes race, by the goroutine already
	// delivering an earlier one. It must not block.
	OnChange func(Change)
}

func (c Config) withDefaults() Config {
	if c.UnreachableAfter <= 0 {
		c.UnreachableAfter = DefaultUnreachableAfter
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DegradedLatency, DefaultDegradedLatency)
	def(&c.Window, DefaultWindow)
	def(&c.ProbeInterval, DefaultProbeInterval)
	def(&c.FastProbeInterval, DefaultFastProbeInterval)
	def(&c.ProbeTimeout, DefaultProbeTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Tracker holds the state of one Duo integration. It is safe for concurrent
// use.
type Tracker struct {
	cfg     Config
	lim     limits
	checker Checker
	// down is the Gate's answer while Unreachable or Misconfigured, nil
	// otherwise: the Gate's only cost is loading it.
	down atomic.Pointer[failmode.Error]
	// kick tells Run the probe interval changed (entering or leaving a down
	// state outside Run's own probe).
	kick chan struct{}

	mu         sync.Mutex
	st         Status
	win        window
	cause      observation // why the state is down, for the Gate
	pending    []Change    // changes not yet handed to OnChange
	delivering bool        // a goroutine is calling OnChange
}

// New returns a Tracker in state OK: until traffic or the first probe says
// otherwise, binds go to Duo and are classified one by one. c must not be
// nil. Call Run to probe in the background.
func New(cfg Config, c Checker) *Tracker {
	if c == nil {
		panic("duostate: New with a nil Checker")
	}
	cfg = cfg.withDefaults()
	return &Tracker{
		cfg:     cfg,
		lim:     limits{unreachableAfter: cfg.UnreachableAfter, degradedLatency: cfg.DegradedLatency, window: cfg.Window},
		checker: c,
		kick:    make(chan struct{}, 1),
		st:      Status{Integration: cfg.Integration, State: OK, Since: cfg.Now()},
		win:     newWindow(cfg.Window),
	}
}

// Observe records the outcome of one call to Duo; it is the duoclient
// Config.Observe hook. Endpoint "preauth" and "auth" follow the rules of the
// package; "check" is ignored, because Probe feeds its own result with the
// failure's detail (so a health endpoint should call Probe, not the client's
// Check); any other endpoint counts only for its class (Misconfigured,
// Untrusted, Degraded). Unknown outcomes (the caller cancelled) are ignored.
// It is safe for concurrent use and cheap: one short critical section, and
// no allocation for a good answer.
func (t *Tracker) Observe(endpoint string, d time.Duration, class failmode.Class) {
	src := fromOther
	switch endpoint {
	case endpointPreauth:
		src = fromPreauth
	case endpointAuth:
		src = fromAuth
	case endpointCheck:
		return
	}
	if class == failmode.Unknown {
		return
	}
	t.apply(observation{src: src, class: class, name: endpoint}, d, false)
}

// Probe runs one signed check now, bounded by ProbeTimeout, feeds its outcome
// to the state machine and returns the check's error. A probe whose ctx was
// cancelled changes nothing.
func (t *Tracker) Probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, t.cfg.ProbeTimeout)
	err := t.checker.Check(pctx)
	timedOut := pctx.Err() != nil && ctx.Err() == nil
	cancel()
	t.apply(probeObservation(ctx, err, timedOut, t.cfg.ProbeTimeout), 0, true)
	return err
}

// probeObservation classifies a probe's result.
func probeObservation(ctx context.Context, err error, timedOut bool, timeout time.Duration) observation {
	o := observation{src: fromProbe, name: endpointCheck}
	var fe *failmode.Error
	switch {
	case err == nil:
		o.class = failmode.Allowed
	case errors.Is(ctx.Err(), context.Canceled):
		o.class, o.detail = failmode.Unknown, "check: canceled"
	case errors.As(err, &fe):
		o.class, o.detail = fe.Class, "check "+fe.Class.String()
		if fe.Detail != "" {
			o.detail = "check: " + fe.Detail
		}
	case timedOut:
		o.class, o.detail = failmode.Unreachable, "check: no answer within "+human(timeout)
	default:
		o.class, o.detail = failmode.Unknown, "check: unclassified error: "+err.Error()
	}
	return o
}

// Run probes until ctx is done: at once, then every ProbeInterval, or every
// FastProbeInterval while Unreachable or Misconfigured. It starts no
// goroutine and returns when ctx is done. Call it once per Tracker.
func (t *Tracker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
			// Traffic (or someone else's Probe) moved the state into or out
			// of a down state: switch to that state's pace now.
			timer.Reset(t.interval())
		case <-timer.C:
			_ = t.Probe(ctx)
			select {
			case <-t.kick: // this probe's own change: the reset covers it
			default:
			}
			timer.Reset(t.interval())
		}
	}
}

func (t *Tracker) interval() time.Duration {
	t.mu.Lock()
	down := t.st.State.down()
	t.mu.Unlock()
	if down {
		return t.cfg.FastProbeInterval
	}
	return t.cfg.ProbeInterval
}

// Status returns a snapshot of the state.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// apply records an observation, runs the state machine and reports a change.
func (t *Tracker) apply(o observation, d time.Duration, probe bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	st := &t.st
	if o.class != failmode.Unknown {
		switch {
		case o.unreachable():
			st.ConsecutiveUnreachable++
		case o.answered():
			st.ConsecutiveUnreachable = 0
		}
		if o.latencySample() {
			t.win.addLatency(now, d)
		}
		if o.degrades() {
			t.win.addDegraded(now, o.what())
		}
	}
	r := recent{consecutive: st.ConsecutiveUnreachable}
	t.win.summary(now, &r)
	to, reason := transition(t.lim, st.State, o, r)

	st.LastClass = o.class
	if o.class != failmode.Allowed && o.class != failmode.Denied {
		st.LastError = o.what()
	}
	if probe {
		st.LastProbe = now
	}
	from := st.State
	if to != from {
		st.State, st.Since = to, now
		if to == OK {
			st.LastError = ""
		}
		if t.cfg.OnChange != nil {
			t.pending = append(t.pending, Change{Integration: t.cfg.Integration, From: from, To: to, At: now, Reason: reason})
		}
		if to.down() != from.down() {
			select {
			case t.kick <- struct{}{}:
			default:
			}
		}
	}
	t.updateDownLocked(from, o, reason)
	t.notifyLocked()
}

// updateDownLocked keeps the Gate's answer in step with the state: the
// state, since when, and the latest cause that fits it. While Misconfigured
// the class stays Misconfigured or Untrusted whatever else happens, so a
// later unreachable outcome can never turn a denial into failmode.
func (t *Tracker) updateDownLocked(from State, o observation, reason string) {
	st := &t.st
	entered := st.State != from
	switch {
	case st.State == Unreachable && entered:
		t.cause = observation{class: failmode.Unreachable, detail: reason}
	case st.State == Unreachable && o.src == fromProbe && o.class == failmode.Unreachable:
		t.cause = observation{class: failmode.Unreachable, detail: o.what()}
	case st.State == Misconfigured && (o.class == failmode.Misconfigured || o.class == failmode.Untrusted):
		t.cause = observation{class: o.class, detail: o.what()}
	case st.State.down():
		return // nothing new to say
	default:
		if entered {
			t.down.Store(nil)
		}
		return
	}
	t.down.Store(&failmode.Error{
		Class:  t.cause.class,
		Stage:  failmode.StagePreauth,
		Detail: fmt.Sprintf("known %s since %s: %s", st.State, st.Since.UTC().Format(time.RFC3339), t.cause.detail),
		Err:    ErrKnownDown,
	})
}

// notifyLocked hands the pending changes to OnChange, in order and outside
// the lock, unless another goroutine already does. It is called with t.mu
// held and returns with it released.
func (t *Tracker) notifyLocked() {
	if t.delivering || len(t.pending) == 0 {
		t.mu.Unlock()
		return
	}
	t.delivering = true
	done := false
	defer func() {
		if !done { // OnChange panicked: let later changes through
			t.mu.Lock()
			t.delivering, t.pending = false, nil
			t.mu.Unlock()
		}
	}()
	for len(t.pending) > 0 {
		batch := t.pending
		t.pending = nil
		t.mu.Unlock()
		for _, c := range batch {
			t.cfg.OnChange(c)
		}
		t.mu.Lock()
	}
	t.delivering = false
	t.mu.Unlock()
	done = true
}
