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
//     out, Duo rate-limited us (any endpoint), the mean preauth latency over
//     the sliding Window exceeds DegradedLatency (with at least
//     MinLatencySamples calls in the window), or preauth fails while the
//     signed check succeeds (the contradiction below). Binds still go to
//     Duo; the Gate does not short-circuit. Back to OK when the window holds
//     no degraded outcome and the latency mean is back under the threshold,
//     evaluated on every observation and every probe.
//   - Unreachable: enough evidence that Duo cannot be reached (below). The
//     Gate answers binds at once with an Unreachable *failmode.Error wrapping
//     ErrKnownDown, so the proxy's failmode decides without waiting for a
//     timeout; in a safe section that lets users in on the password alone.
//   - Misconfigured: any Misconfigured or Untrusted outcome (traffic at any
//     endpoint, or the probe): bad keys, signature, clock skew, 4xx,
//     certificate. The Gate denies at once with that class: never fail open.
//
// # Evidence of an outage
//
// An unreachable preauth call and an unreachable probe are each one piece of
// evidence; UnreachableAfter consecutive pieces make the state Unreachable.
// Any answer from Duo resets the count: a preauth or auth call that Duo
// answered (Allowed, Denied, Rejected), a preauth or probe that Duo
// rate-limited or refused with a 4xx (Degraded, Misconfigured), a probe that
// succeeded, a trial bind whose preauth Duo answered.
//
// A probe that runs into ProbeTimeout (the integration's duo.timeout; the
// error is context.DeadlineExceeded or a net.Error whose Timeout() is true)
// is one piece of evidence like any other: a slow Duo is not an outage. Two
// probe failures count at once, because they prove that nothing answers at
// Duo's address rather than that it answers slowly: a refused connection
// (syscall.ECONNREFUSED) and a name that does not exist (*net.DNSError with
// IsNotFound). Probe errors are told apart by their types (errors.Is and
// errors.As), never by their text.
//
// # Logins outrank the probe
//
// While Duo answers logins, the state is not Unreachable, whatever the probe
// says. A good answer to traffic (Allowed, Denied or Rejected, at preauth or
// auth) within the last Window vetoes probe evidence: a failed probe is then
// not counted and cannot make the state Unreachable; only
// UnreachableAfter consecutive unreachable preauth calls can. Probe evidence
// is also distrusted after a trial bind (below) contradicted it, until a
// probe succeeds again.
//
// # Half-open while Unreachable
//
// The state can still become Unreachable on probe evidence alone (no logins
// for a Window) while logins would work, e.g. when only /auth/v2/check
// hangs. So while Unreachable (not Misconfigured) the Gate lets one bind at a
// time through to Duo as a trial, starting one only FastProbeInterval after
// the previous trial started and after it ended (so at most one starts per
// FastProbeInterval); every other bind is answered at once. A trial whose
// preauth Duo answered (a Verdict, or an error at StageAuth) takes the state
// out of Unreachable, to OK or to Degraded as the window says. A failed trial
// leaves the state Unreachable.
//
// # Check works, preauth fails: the contradiction
//
// Rule: when the state became Unreachable on preauth traffic alone (no probe
// failed in that evidence or since) and then a probe succeeds, Duo answers,
// so the state becomes Degraded, not OK, and the integration is
// "contradicted": while contradicted, an unreachable preauth call is a
// degraded outcome (it keeps the window dirty) and never makes the state
// Unreachable. A failed probe ends the contradiction (then the usual evidence
// rules apply again), and so does a window without degraded outcomes (the
// state returns to OK). One such episode, from the first failing preauth
// call until a Window without failures, therefore announces at most three
// changes (three OnChange calls): ok → unreachable, unreachable → degraded,
// degraded → ok, however many probes and binds it lasts. When a probe also failed during the
// outage, its later success means Duo is back, and the state goes to OK (or
// Degraded) as usual.
//
// # Leaving Unreachable and Misconfigured
//
// While Unreachable, traffic that did not go through as a trial (binds in
// flight when the state changed) never changes the state, except towards the
// safer answer: a Misconfigured or Untrusted outcome moves it to
// Misconfigured (Duo answered and rejected us: deny rather than fail open).
// A successful probe leaves Unreachable (see the contradiction), and so does
// a rate-limited probe (Degraded: Duo answers, so failmode must not decide).
// Only a successful probe leaves Misconfigured.
//
// Outcomes that say nothing about Duo change nothing and are not counted:
// Unknown (the caller cancelled, an unclassified error) and Local (ldapgate's
// own fault: descriptors, memory, a panic). Rejected (Duo refused one
// request as invalid) is an answer: it resets the count and vetoes probe
// evidence, but never changes the state.
//
// Every transition is reported once through Config.OnChange, in order.
package duostate

import (
	"fmt"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
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

// Serving reports whether sections can authenticate correctly in s: OK, or
// Degraded (binds still ask Duo; failmode is not in play). What is not a
// known state is not serving.
func (s State) Serving() bool { return s == OK || s == Degraded }

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
	// calls and probes since Duo last answered (probes vetoed by working
	// logins are not counted).
	ConsecutiveUnreachable int
}

// Change is one state transition.
type Change struct {
	Integration string
	From, To    State
	At          time.Time
	// Reason is a short operator-facing cause: "check: connection refused",
	// "3 consecutive preauth calls unreachable", "preauth latency 3.4s over 3s
	// (mean of 5 calls in the last 1m)".
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
	fromTrial                 // the Gate: a trial bind whose preauth Duo answered
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
	// decisive marks a failed probe that counts at once: the connection was
	// refused or the name does not exist.
	decisive bool
}

// what describes the outcome for reasons and LastError.
func (o observation) what() string {
	if o.detail != "" {
		return o.detail
	}
	return o.name + " " + o.class.String()
}

// ignored reports whether the outcome says nothing about Duo: nobody could
// classify it, the caller cancelled, ldapgate itself failed (Local), or the
// class is one this package does not know.
func (o observation) ignored() bool {
	switch o.class {
	case failmode.Allowed, failmode.Denied, failmode.Unreachable, failmode.Degraded,
		failmode.Misconfigured, failmode.Untrusted, failmode.Rejected:
		return false
	}
	return true
}

// traffic reports whether the outcome is a login's call to Duo.
func (o observation) traffic() bool { return o.src == fromPreauth || o.src == fromAuth }

// goodAnswer reports whether Duo answered a login's call: the answers that
// veto probe evidence for a Window.
func (o observation) goodAnswer() bool {
	if !o.traffic() {
		return false
	}
	switch o.class {
	case failmode.Allowed, failmode.Denied, failmode.Rejected:
		return true
	}
	return false
}

// degrades reports whether the outcome is a degraded one: Duo answered (or
// was reached for preauth) but a login could not complete. While the
// integration is contradicted (check ok, preauth failing), an unreachable
// preauth call is one too.
func (o observation) degrades(contradicted bool) bool {
	if o.src == fromTrial {
		return false
	}
	return o.class == failmode.Degraded ||
		(o.src == fromAuth && o.class == failmode.Unreachable) ||
		(contradicted && o.src == fromPreauth && o.class == failmode.Unreachable)
}

// unreachable reports whether the outcome is evidence of an outage (counted
// unless a veto applies).
func (o observation) unreachable() bool {
	return o.class == failmode.Unreachable && (o.src == fromPreauth || o.src == fromProbe)
}

// failedProbe reports whether the outcome is a probe that found Duo
// unreachable.
func (o observation) failedProbe() bool { return o.src == fromProbe && o.class == failmode.Unreachable }

// answered reports whether Duo itself answered, which resets the
// consecutive-unreachable count. An untrusted certificate is not an answer:
// whoever presented it may not be Duo.
func (o observation) answered() bool {
	if o.goodAnswer() || (o.src == fromTrial && o.class == failmode.Allowed) {
		return true
	}
	if o.src != fromPreauth && o.src != fromProbe {
		return false
	}
	switch o.class {
	case failmode.Allowed, failmode.Denied, failmode.Degraded, failmode.Misconfigured, failmode.Rejected:
		return true
	}
	return false
}

// latencySample reports whether the call's duration is a preauth latency
// sample: only good preauth answers measure how fast Duo answers.
func (o observation) latencySample() bool {
	return o.src == fromPreauth && (o.class == failmode.Allowed || o.class == failmode.Denied)
}

// memory is what the state machine remembers between observations, besides
// the state and the window. The Tracker holds it; evidence and settle
// compute it.
type memory struct {
	// consecutive counts unreachable preauth calls and counted probes since
	// Duo last answered.
	consecutive int
	// probeFailed is set when a probe failed during that evidence or since
	// the state became Unreachable: the outage is not on preauth alone.
	probeFailed bool
	// contradicted: Unreachable was entered on preauth traffic alone and a
	// probe then succeeded (see the package doc).
	contradicted bool
	// distrustProbe: a trial bind found Duo answering while probes said it
	// was down; probe failures are not counted until a probe succeeds.
	distrustProbe bool
}

// evidence updates the memory with an observation, before the transition:
// it counts unreachable outcomes and resets the count on an answer. vetoed
// says probe evidence does not count now (recent.vetoed); state is the state
// before the observation.
func evidence(m memory, state State, o observation, vetoed bool) memory {
	switch {
	case o.ignored():
	case o.unreachable():
		if o.src == fromProbe {
			m.probeFailed = true // even when not counted: it says how to recover
			if vetoed {
				break
			}
		}
		m.consecutive++
	case o.answered():
		m.consecutive = 0
		if state != Unreachable {
			m.probeFailed = false
		}
	}
	if o.src == fromProbe && o.class == failmode.Allowed {
		m.distrustProbe = false
	}
	return m
}

// settle updates the memory after the transition from → to caused by o.
func settle(m memory, from, to State, o observation, r recent) memory {
	switch {
	case contradicts(from, o, r):
		m.contradicted = true
	case to != Degraded, o.failedProbe(), r.degraded == 0:
		// Only Degraded can be contradicted; a failed probe or a window
		// without degraded outcomes ends it.
		m.contradicted = false
	}
	if from == Unreachable && to != Unreachable {
		m.probeFailed = false
		if o.src == fromTrial {
			m.distrustProbe = true
		}
	}
	return m
}

// contradicts reports whether o is the successful probe that contradicts an
// Unreachable state entered on preauth traffic alone.
func contradicts(from State, o observation, r recent) bool {
	return from == Unreachable && o.src == fromProbe && o.class == failmode.Allowed && !r.probeFailed
}

// recent is what the Tracker remembers at the moment of an observation, the
// observation itself included.
type recent struct {
	consecutive    int           // consecutive unreachable preauth calls and counted probes
	samples        int           // preauth latency samples in the window
	mean           time.Duration // their mean
	degraded       int           // degraded outcomes in the window
	degradedDetail string        // the latest one's description
	// vetoed: probe evidence does not count (a good answer to traffic
	// within the last Window, or a trial contradicted the probe).
	vetoed bool
	// contradicted: see memory.contradicted (before this observation).
	contradicted bool
	// probeFailed: a probe failed in the current evidence (or since the
	// state became Unreachable); without one, the evidence is preauth
	// traffic alone.
	probeFailed bool
}

// vetoedAt reports whether a good answer to traffic at lastGood still vetoes
// probe evidence at now. A clock stepped back keeps the veto.
func vetoedAt(lastGood, now time.Time, window time.Duration) bool {
	return !lastGood.IsZero() && now.Sub(lastGood) < window
}

// limits are the thresholds of the state machine.
type limits struct {
	unreachableAfter int
	degradedLatency  time.Duration
	window           time.Duration
}

// transition is the state machine: from the current state, an observation
// and what the Tracker remembers at that instant (time enters only through
// r), it returns the next state and, when it differs from from, the reason.
func transition(l limits, from State, o observation, r recent) (State, string) {
	if o.ignored() {
		return from, "" // says nothing about Duo
	}
	if o.src == fromTrial {
		// The Gate's word that Duo answered a trial's preauth; the calls
		// themselves came through Observe.
		if from == Unreachable && o.class == failmode.Allowed {
			return recovered(l, r, "trial bind answered by Duo")
		}
		return from, ""
	}
	if o.class == failmode.Misconfigured || o.class == failmode.Untrusted {
		if from == Misconfigured {
			return from, ""
		}
		return Misconfigured, o.what()
	}
	if o.class == failmode.Rejected {
		return from, "" // an answer about one request, not the integration
	}
	switch from {
	case Misconfigured:
		if o.src == fromProbe && o.class == failmode.Allowed {
			return recovered(l, r, "check ok")
		}
		return from, ""
	case Unreachable:
		switch {
		case contradicts(from, o, r):
			return Degraded, "check ok, but preauth calls fail: Duo answers, so degraded"
		case o.src == fromProbe && o.class == failmode.Allowed:
			return recovered(l, r, "check ok")
		case o.src == fromProbe && o.class == failmode.Degraded:
			// Duo answered, if only to rate-limit us: it is reachable, and
			// failmode must not decide for it.
			return Degraded, o.what()
		}
		return from, "" // stragglers and failed trials never recover
	}
	// OK or Degraded.
	if o.unreachable() {
		switch {
		case o.src == fromProbe && r.vetoed:
			// Logins work: the probe alone cannot make Duo unreachable.
		case o.src == fromProbe && o.decisive:
			return Unreachable, o.what()
		case o.src == fromProbe && r.consecutive >= l.unreachableAfter:
			return Unreachable, fmt.Sprintf("%s (%d consecutive preauth calls and probes unreachable)", o.what(), r.consecutive)
		case o.src == fromPreauth && !r.contradicted && r.consecutive >= l.unreachableAfter:
			if r.probeFailed {
				return Unreachable, fmt.Sprintf("%d consecutive preauth calls and probes unreachable", r.consecutive)
			}
			return Unreachable, fmt.Sprintf("%d consecutive preauth calls unreachable", r.consecutive)
		}
	}
	if o.degrades(r.contradicted) {
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

// recovered is where a successful probe or trial leads out of a down state;
// why says which ("check ok").
func recovered(l limits, r recent, why string) (State, string) {
	if to := judge(l, r); to != OK {
		return to, why + ", but " + explain(l, r)
	}
	return OK, why
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
		return fmt.Sprintf("%s (%d degraded outcomes in the last %s)", r.degradedDetail, r.degraded, human.Duration(l.window))
	}
	if r.samples >= MinLatencySamples && r.mean > l.degradedLatency {
		return fmt.Sprintf("preauth latency %s over %s (mean of %d calls in the last %s)",
			human.Duration(r.mean), human.Duration(l.degradedLatency), r.samples, human.Duration(l.window))
	}
	if r.samples == 0 {
		return fmt.Sprintf("no degraded outcome in the last %s", human.Duration(l.window))
	}
	return fmt.Sprintf("no degraded outcome and preauth latency %s (mean of %d calls) in the last %s",
		human.Duration(r.mean), r.samples, human.Duration(l.window))
}
