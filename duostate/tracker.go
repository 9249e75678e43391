package duostate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

// Checker proves the integration works with one signed request, such as
// duoclient.Client.Check (GET /auth/v2/check). It returns nil when Duo
// accepted the keys and the signature, else preferably a *failmode.Error
// saying why; it must honour ctx.
type Checker interface {
	Check(ctx context.Context) error
}

// Config tunes a Tracker. Every count and duration is required (New panics
// on one that is not positive): their defaults and bounds live in package
// config, the one home of defaults, so two packages cannot disagree.
type Config struct {
	// Integration names the integration in Status and Change, e.g.
	// duoclient.Client.Integration() ("api_host/ikey").
	Integration string
	// UnreachableAfter is how many consecutive unreachable outcomes
	// (preauth calls and probes; see the package doc) make the state
	// Unreachable (duo.unreachable_after).
	UnreachableAfter int
	// DegradedLatency is the mean preauth latency over Window above which
	// the state is Degraded (with at least MinLatencySamples calls): duo.degraded_latency.
	DegradedLatency time.Duration
	// Window is the sliding window for latency and degraded outcomes,
	// measured in steps of Window/60, and how long a good answer to traffic
	// vetoes probe evidence (config.DuoWindow).
	Window time.Duration
	// ProbeInterval is how often Run probes while OK or Degraded
	// (duo.probe_interval).
	ProbeInterval time.Duration
	// FastProbeInterval is how often Run probes while Unreachable or
	// Misconfigured, so recovery is noticed quickly, or while unreachable
	// evidence is being counted, so it is confirmed or refuted quickly; and
	// the least time between two trial binds of the Gate
	// (config.DuoFastProbeInterval).
	FastProbeInterval time.Duration
	// ProbeTimeout bounds one probe: the integration's duo.timeout, the
	// deadline its preauth calls get too. A probe cut off by it is one
	// piece of unreachable evidence.
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

// check panics on a count or duration that is not positive: a caller bug,
// since config validates every one of them.
func (c Config) check() {
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"UnreachableAfter", c.UnreachableAfter > 0},
		{"DegradedLatency", c.DegradedLatency > 0},
		{"Window", c.Window > 0},
		{"ProbeInterval", c.ProbeInterval > 0},
		{"FastProbeInterval", c.FastProbeInterval > 0},
		{"ProbeTimeout", c.ProbeTimeout > 0},
	} {
		if !f.ok {
			panic(fmt.Sprintf("duostate: New with a Config whose %s is not positive (%+v): pass config's values", f.name, c))
		}
	}
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
	mem        memory      // the state machine's memory besides the state
	lastGood   time.Time   // the latest good answer to traffic (the veto)
	trial      trials      // the Gate's trial binds while Unreachable
	cause      observation // why the state is down, for the Gate
	pending    []Change    // changes not yet handed to OnChange
	delivering bool        // a goroutine is calling OnChange
}

// New returns a Tracker in state OK: until traffic or the first probe says
// otherwise, binds go to Duo and are classified one by one. c must not be
// nil and cfg.ProbeTimeout must be positive (programming errors: New
// panics). Call Run to probe in the background.
func New(cfg Config, c Checker) *Tracker {
	if c == nil {
		panic("duostate: New with a nil Checker")
	}
	cfg.check()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
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
// Untrusted, Degraded). Unknown outcomes (the caller cancelled) and Local
// ones (ldapgate's own fault) are ignored.
// It is safe for concurrent use and cheap: one short critical section, and
// no allocation for a good answer.
func (t *Tracker) Observe(stage failmode.Stage, d time.Duration, class failmode.Class) {
	src := fromOther
	switch stage {
	case failmode.StagePreauth:
		src = fromPreauth
	case failmode.StageAuth:
		src = fromAuth
	case failmode.StageCheck:
		return
	}
	o := observation{src: src, class: class, name: stage.String()}
	if o.ignored() {
		return
	}
	t.apply(o, d, false)
}

// Probe runs one signed check now, bounded by ProbeTimeout, feeds its outcome
// to the state machine and returns the check's error. A probe whose ctx was
// cancelled, or that failed for a Local or unclassified reason, changes
// nothing.
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
	o := observation{src: fromProbe, name: failmode.StageCheck.String()}
	var fe *failmode.Error
	switch {
	case err == nil:
		o.class = failmode.Allowed
	case errors.Is(ctx.Err(), context.Canceled):
		o.class, o.detail = failmode.Local, "check: canceled"
	case errors.As(err, &fe):
		o.class, o.detail = fe.Class, "check "+fe.Class.String()
		if fe.Detail != "" {
			o.detail = "check: " + fe.Detail
		}
		o.decisive = fe.Class == failmode.Unreachable && decisive(err)
	case timedOut || isTimeout(err):
		o.class, o.detail = failmode.Unreachable, "check: no answer within "+human.Duration(timeout)
	default:
		o.class, o.detail = failmode.Local, "check: unclassified error: "+err.Error()
	}
	return o
}

// decisive reports whether a failed probe's error proves by itself that
// nothing answers at Duo's address, so that it counts at once: the
// connection was refused, or the name does not exist. A timeout never is.
// Decided on types only.
func decisive(err error) bool {
	if isTimeout(err) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// isTimeout reports whether err is a deadline: the context's, or a network
// operation's.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Run probes until ctx is done: at once, then every ProbeInterval, or every
// FastProbeInterval while Unreachable or Misconfigured or while unreachable
// evidence is being counted. It starts no goroutine and returns when ctx is
// done. Call it once per Tracker.
func (t *Tracker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
			// Traffic (or someone else's Probe) changed the pace (into or
			// out of a down state, or evidence started or stopped being
			// counted): switch to it now.
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
	fast := t.fastLocked()
	t.mu.Unlock()
	if fast {
		return t.cfg.FastProbeInterval
	}
	return t.cfg.ProbeInterval
}

// fastLocked reports whether Run should probe at the fast pace.
func (t *Tracker) fastLocked() bool { return t.st.State.down() || t.mem.consecutive > 0 }

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
	from := st.State
	wasFast := t.fastLocked()
	vetoed := vetoedAt(t.lastGood, now, t.cfg.Window) || t.mem.distrustProbe
	prev := t.mem
	t.mem = evidence(prev, from, o, vetoed)
	if !o.ignored() {
		if o.goodAnswer() {
			t.lastGood = now
		}
		if o.latencySample() {
			t.win.addLatency(now, d)
		}
		if o.degrades(prev.contradicted) {
			what := o.what()
			if o.class == failmode.Unreachable && o.src == fromPreauth {
				what = "preauth unreachable while check ok"
			}
			t.win.addDegraded(now, what)
		}
	}
	r := recent{
		consecutive:  t.mem.consecutive,
		vetoed:       vetoed,
		contradicted: prev.contradicted,
		probeFailed:  t.mem.probeFailed,
	}
	t.win.summary(now, &r)
	to, reason := transition(t.lim, from, o, r)
	t.mem = settle(t.mem, from, to, o, r)
	if t.mem.contradicted && !prev.contradicted {
		// The contradiction is a degraded outcome: it holds the state in
		// Degraded for a Window unless more failures extend it.
		t.win.addDegraded(now, reason)
	}

	st.LastClass = o.class
	st.ConsecutiveUnreachable = t.mem.consecutive
	switch o.class {
	case failmode.Allowed, failmode.Denied, failmode.Rejected:
	default:
		st.LastError = o.what()
	}
	if probe {
		st.LastProbe = now
	}
	if to != from {
		st.State, st.Since = to, now
		if to == OK {
			st.LastError = ""
		}
		if t.cfg.OnChange != nil {
			t.pending = append(t.pending, Change{Integration: t.cfg.Integration, From: from, To: to, At: now, Reason: reason})
		}
	}
	if t.fastLocked() != wasFast {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
	t.updateDownLocked(from, o, reason)
	t.notifyLocked()
}

// trials is the Gate's half-open bookkeeping while Unreachable.
type trials struct {
	inFlight bool      // a trial bind is with Duo now
	last     time.Time // when the latest trial started, or ended once it has
}

// admit reports whether a bind may go to Duo as a trial, and the bookkeeping
// after it: only while Unreachable, one at a time, and only every after the
// previous trial started and after it ended, so at most one starts per
// every and, while Duo hangs, one bind waits for a timeout at a time with a
// pause in between. A clock stepped back does not hold trials off.
func (tr trials) admit(state State, now time.Time, every time.Duration) (trials, bool) {
	if state != Unreachable || tr.inFlight {
		return tr, false
	}
	if !tr.last.IsZero() {
		if since := now.Sub(tr.last); since >= 0 && since < every {
			return tr, false
		}
	}
	return trials{inFlight: true, last: now}, true
}

// end is the bookkeeping once the trial in flight ended at now.
func (tr trials) end(now time.Time) trials { return trials{last: now} }

// startTrial reports whether the caller's bind is the trial it may send to
// Duo while Unreachable. A true answer must be followed by endTrial.
func (t *Tracker) startTrial() bool {
	now := t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var ok bool
	t.trial, ok = t.trial.admit(t.st.State, now, t.cfg.FastProbeInterval)
	return ok
}

// endTrial ends the trial bind; answered says Duo answered its preauth, which
// takes the state out of Unreachable.
func (t *Tracker) endTrial(answered bool) {
	now := t.cfg.Now()
	t.mu.Lock()
	t.trial = t.trial.end(now)
	t.mu.Unlock()
	if answered {
		t.apply(observation{src: fromTrial, class: failmode.Allowed, name: "trial"}, 0, false)
	}
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
