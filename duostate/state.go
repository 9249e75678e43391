// Package duostate tracks the health of one Duo integration (api_host +
// integration key) from real traffic and a background signed probe, and lets
// binds be decided at once while Duo is known to be down.
//
// A Tracker is fed by the duoclient Observe hook (every preauth and auth call)
// and by its own signed check (Probe, run periodically by Run). It holds one
// of four states:
//
//   - OK: nothing known to be wrong.
//   - Degraded: Duo answers but logins suffer: an auth call failed or timed
//     out, Duo rate-limited us (any endpoint), or the mean preauth latency
//     over the sliding Window exceeds DegradedLatency (with at least
//     MinLatencySamples calls in the window). Binds still go to Duo;
//     failmode is not invoked. Back to OK when the window holds no degraded
//     outcome and the latency mean is back under the threshold, evaluated on
//     every observation and every probe.
//   - Unreachable: UnreachableAfter consecutive unreachable preauth calls,
//     or one unreachable probe. The Gate answers every bind at once with an
//     Unreachable *failmode.Error wrapping ErrKnownDown, so the proxy's
//     failmode decides without waiting for a timeout.
//   - Misconfigured: any Misconfigured or Untrusted outcome (traffic at any
//     endpoint, or the probe): bad keys, signature, clock skew, 4xx,
//     certificate. The Gate denies at once with that class: never fail open.
//
// Only the probe takes the state out of Unreachable or Misconfigured (while
// there, the Gate sends no traffic): a successful signed check returns to OK,
// or to Degraded when the window still says so. Two exceptions, both towards
// the safer answer: a Misconfigured or Untrusted outcome from traffic moves
// Unreachable to Misconfigured (Duo answered and rejected us: deny rather
// than fail open), and a rate-limited probe (Degraded) moves Unreachable to
// Degraded (Duo answers, so failmode must not decide).
//
// Unknown outcomes (the caller cancelled, an unclassified error) say nothing
// about Duo and change nothing.
//
// Every transition is reported once through Config.OnChange, in order.
package duostate

import (
	"fmt"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// State is the health of a Duo integration.
type State string

const (
	OK            State = "ok"
	Degraded      State = "degraded"
	Unreachable   State = "unreachable"
	Misconfigured State = "misconfigured"
)

// States lists every state, healthiest first; used by metrics and tests.
func States() []State { return []State{OK, Degraded, Unreachable, Misconfigured} }

// down reports whether binds are decided without asking Duo in s.
func (s State) down() bool { return s == Unreachable || s == Misconfigured }

// Status is a snapshot of a Tracker.
type Status struct {
	Integration string
	State       State
	// Since is when State was entered (the Tracker's creation for the first).
	Since time.Time
	// LastClass is the class of the latest outcome that counted (traffic
	// whose caller cancelled is not counted).
	LastClass failmode.Class
	// LastError is the cause of the latest failing outcome ("check:
	// connection refused", "auth degraded"); it is cleared on entering OK.
	LastError string
	// LastProbe is when the latest probe finished (zero before the first).
	LastProbe time.Time
	// ConsecutiveUnreachable counts the unreachable outcomes of preauth
	// calls and probes since Duo last answered either.
	ConsecutiveUnreachable int
}

// Change is one state transition.
type Change struct {
	Integration string
	From, To    State
	At          time.Time
	// Reason is a short operator-facing cause: "check: connection refused",
	// "3 consecutive preauth calls unreachable", "preauth latency 3.4s over 3s
	// (mean of 5 calls in the last 60s)".
	Reason string
}

// MinLatencySamples is how many preauth answers the window must hold before
// their mean latency can make the state Degraded: one slow call is not a
// trend.
const MinLatencySamples = 3

// source is where an observation comes from.
type source int

const (
	fromPreauth source = iota // preauth traffic
	fromAuth                  // auth traffic
	fromOther                 // traffic at an endpoint the rules do not name
	fromProbe                 // the Tracker's signed check
)

// observation is one outcome fed to the state machine.
type observation struct {
	src   source
	class failmode.Class
	// name is the endpoint, for the default description.
	name string
	// detail describes a failure when more is known than name and class
	// (probes carry the check's Detail).
	detail string
}

// what describes the outcome for reasons and LastError.
func (o observation) what() string {
	if o.detail != "" {
		return o.detail
	}
	return o.name + " " + o.class.String()
}

// degrades reports whether the outcome is a degraded one: Duo answered
// (or was reached for preauth) but a login could not complete.
func (o observation) degrades() bool {
	return o.class == failmode.Degraded || (o.src == fromAuth && o.class == failmode.Unreachable)
}

// unreachable reports whether the outcome counts towards Unreachable.
func (o observation) unreachable() bool {
	return o.class == failmode.Unreachable && (o.src == fromPreauth || o.src == fromProbe)
}

// answered reports whether Duo itself answered a preauth call or a probe,
// which resets the consecutive-unreachable count. An untrusted certificate is
// not an answer: whoever presented it may not be Duo.
func (o observation) answered() bool {
	if o.src != fromPreauth && o.src != fromProbe {
		return false
	}
	switch o.class {
	case failmode.Allowed, failmode.Denied, failmode.Degraded, failmode.Misconfigured:
		return true
	}
	return false
}

// latencySample reports whether the call's duration is a preauth latency
// sample: only good preauth answers measure how fast Duo answers.
func (o observation) latencySample() bool {
	return o.src == fromPreauth && (o.class == failmode.Allowed || o.class == failmode.Denied)
}

// recent is what the Tracker remembers at the moment of an observation, the
// observation itself included.
type recent struct {
	consecutive    int           // consecutive unreachable preauth calls and probes
	samples        int           // preauth latency samples in the window
	mean           time.Duration // their mean
	degraded       int           // degraded outcomes in the window
	degradedDetail string        // the latest one's description
}

// limits are the thresholds of the state machine.
type limits struct {
	unreachableAfter int
	degradedLatency  time.Duration
	window           time.Duration
}

// transition is the state machine: from the current state, an observation
// and what the window says at that instant (time enters only through r), it
// returns the next state and, when it differs from from, the reason.
func transition(l limits, from State, o observation, r recent) (State, string) {
	if o.class == failmode.Unknown {
		return from, "" // the caller cancelled or nobody could classify it
	}
	if o.class == failmode.Misconfigured || o.class == failmode.Untrusted {
		if from == Misconfigured {
			return from, ""
		}
		return Misconfigured, o.what()
	}
	switch from {
	case Misconfigured:
		if o.src == fromProbe && o.class == failmode.Allowed {
			return recovered(l, r)
		}
		return from, ""
	case Unreachable:
		if o.src != fromProbe {
			return from, "" // a straggler: traffic never recovers
		}
		switch o.class {
		case failmode.Allowed:
			return recovered(l, r)
		case failmode.Degraded:
			// Duo answered, if only to rate-limit us: it is reachable, and
			// failmode must not decide for it.
			return Degraded, o.what()
		}
		return from, ""
	}
	// OK or Degraded.
	if o.unreachable() {
		if o.src == fromProbe {
			return Unreachable, o.what()
		}
		if r.consecutive >= l.unreachableAfter {
			return Unreachable, fmt.Sprintf("%d consecutive preauth calls unreachable", r.consecutive)
		}
	}
	if o.degrades() {
		if from == Degraded {
			return from, ""
		}
		return Degraded, o.what()
	}
	if to := judge(l, r); to != from {
		return to, explain(l, r)
	}
	return from, ""
}

// recovered is where a successful probe leads out of a down state.
func recovered(l limits, r recent) (State, string) {
	if to := judge(l, r); to != OK {
		return to, "check ok, but " + explain(l, r)
	}
	return OK, "check ok"
}

// judge reads the window: Degraded when it holds a degraded outcome or the
// mean preauth latency of enough calls is over the threshold, else OK. It
// formats nothing, so the common case (no change) costs no allocation.
func judge(l limits, r recent) State {
	if r.degraded > 0 || (r.samples >= MinLatencySamples && r.mean > l.degradedLatency) {
		return Degraded
	}
	return OK
}

// explain says why judge decided as it did.
func explain(l limits, r recent) string {
	if r.degraded > 0 {
		return fmt.Sprintf("%s (%d degraded outcomes in the last %s)", r.degradedDetail, r.degraded, human(l.window))
	}
	if r.samples >= MinLatencySamples && r.mean > l.degradedLatency {
		return fmt.Sprintf("preauth latency %s over %s (mean of %d calls in the last %s)",
			human(r.mean), human(l.degradedLatency), r.samples, human(l.window))
	}
	if r.samples == 0 {
		return fmt.Sprintf("no degraded outcome in the last %s", human(l.window))
	}
	return fmt.Sprintf("no degraded outcome and preauth latency %s (mean of %d calls) in the last %s",
		human(r.mean), r.samples, human(l.window))
}

// human prints a duration for operators: milliseconds at most, and whole
// seconds as "60s" rather than "1m0s".
func human(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	if d >= time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}
