package duostate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

var testLimits = limits{unreachableAfter: 3, degradedLatency: 3 * time.Second, window: time.Minute}

// Windows the table uses.
var (
	empty      = recent{}
	fast       = recent{samples: 5, mean: 200 * time.Millisecond}
	slow       = recent{samples: 3, mean: 3400 * time.Millisecond}
	slowFew    = recent{samples: 2, mean: 10 * time.Second}
	atLimit    = recent{samples: 3, mean: 3 * time.Second}
	hadDegrade = recent{degraded: 1, degradedDetail: "auth degraded"}
)

func obs(src source, class failmode.Class) observation {
	name := map[source]string{fromPreauth: "preauth", fromAuth: "auth", fromOther: "auth_status", fromProbe: "check", fromTrial: "trial"}[src]
	return observation{src: src, class: class, name: name}
}

func withCount(r recent, n int) recent { r.consecutive = n; return r }

// Variations of a window: what else the Tracker remembers.
func vetoed(r recent) recent         { r.vetoed = true; return r }
func contradicted(r recent) recent   { r.contradicted = true; return r }
func probeHadFailed(r recent) recent { r.probeFailed = true; return r }

// TestTransitionTable walks every state × every observation kind. want lists
// the next state from OK, Degraded, Unreachable and Misconfigured.
func TestTransitionTable(t *testing.T) {
	const (
		o = OK
		d = Degraded
		u = Unreachable
		m = Misconfigured
	)
	type row struct {
		name   string
		o      observation
		r      recent
		want   [4]State
		reason string // expected reason of the first change in want, if any
	}
	probeRefused := observation{src: fromProbe, class: failmode.Unreachable, name: "check", detail: "check: connection refused", decisive: true}
	probeTimeout := observation{src: fromProbe, class: failmode.Unreachable, name: "check", detail: "check: no answer within 10s"}
	probe401 := observation{src: fromProbe, class: failmode.Misconfigured, name: "check", detail: "check: HTTP 401: invalid signature"}
	probe429 := observation{src: fromProbe, class: failmode.Degraded, name: "check", detail: "check: HTTP 429"}
	rows := []row{
		// preauth traffic
		{"preauth allowed, empty window", obs(fromPreauth, failmode.Allowed), empty, [4]State{o, o, u, m}, "no degraded outcome in the last 1m"},
		{"preauth allowed, fast window", obs(fromPreauth, failmode.Allowed), fast, [4]State{o, o, u, m}, "no degraded outcome and preauth latency 200ms (mean of 5 calls) in the last 1m"},
		{"preauth allowed, slow window", obs(fromPreauth, failmode.Allowed), slow, [4]State{d, d, u, m}, "preauth latency 3.4s over 3s (mean of 3 calls in the last 1m)"},
		{"preauth allowed, too few slow samples", obs(fromPreauth, failmode.Allowed), slowFew, [4]State{o, o, u, m}, ""},
		{"preauth allowed, mean exactly at the limit", obs(fromPreauth, failmode.Allowed), atLimit, [4]State{o, o, u, m}, ""},
		{"preauth allowed, degraded outcome in window", obs(fromPreauth, failmode.Allowed), hadDegrade, [4]State{d, d, u, m}, "auth degraded (1 degraded outcomes in the last 1m)"},
		{"preauth denied, empty window", obs(fromPreauth, failmode.Denied), empty, [4]State{o, o, u, m}, ""},
		{"preauth denied, slow window", obs(fromPreauth, failmode.Denied), slow, [4]State{d, d, u, m}, ""},
		{"preauth unreachable, first", obs(fromPreauth, failmode.Unreachable), withCount(empty, 1), [4]State{o, o, u, m}, ""},
		{"preauth unreachable, second, degraded window", obs(fromPreauth, failmode.Unreachable), withCount(hadDegrade, 2), [4]State{d, d, u, m}, ""},
		{"preauth unreachable, third", obs(fromPreauth, failmode.Unreachable), withCount(empty, 3), [4]State{u, u, u, m}, "3 consecutive preauth calls unreachable"},
		{"preauth unreachable, fourth", obs(fromPreauth, failmode.Unreachable), withCount(fast, 4), [4]State{u, u, u, m}, "4 consecutive preauth calls unreachable"},
		{"preauth unreachable, third, a probe failed too", obs(fromPreauth, failmode.Unreachable), probeHadFailed(withCount(empty, 3)), [4]State{u, u, u, m}, "3 consecutive preauth calls and probes unreachable"},
		{"preauth unreachable, third, logins vetoed probes", obs(fromPreauth, failmode.Unreachable), vetoed(withCount(empty, 3)), [4]State{u, u, u, m}, "3 consecutive preauth calls unreachable"},
		{"preauth unreachable, tenth, contradicted", obs(fromPreauth, failmode.Unreachable), contradicted(withCount(hadDegrade, 10)), [4]State{d, d, u, m}, "preauth unreachable"},
		{"preauth rate limited", obs(fromPreauth, failmode.Degraded), withCount(hadDegrade, 0), [4]State{d, d, u, m}, "preauth degraded"},
		{"preauth misconfigured", obs(fromPreauth, failmode.Misconfigured), empty, [4]State{m, m, m, m}, "preauth misconfigured"},
		{"preauth untrusted", obs(fromPreauth, failmode.Untrusted), empty, [4]State{m, m, m, m}, "preauth untrusted"},
		{"preauth rejected, slow window", obs(fromPreauth, failmode.Rejected), slow, [4]State{o, d, u, m}, ""},
		{"preauth unknown, slow window", obs(fromPreauth, failmode.Unknown), withCount(slow, 9), [4]State{o, d, u, m}, ""},
		{"preauth local, slow window", obs(fromPreauth, failmode.Local), withCount(slow, 9), [4]State{o, d, u, m}, ""},
		// auth traffic
		{"auth allowed, empty window", obs(fromAuth, failmode.Allowed), empty, [4]State{o, o, u, m}, ""},
		{"auth denied, degraded window", obs(fromAuth, failmode.Denied), hadDegrade, [4]State{d, d, u, m}, ""},
		{"auth unreachable", obs(fromAuth, failmode.Unreachable), withCount(empty, 5), [4]State{d, d, u, m}, "auth unreachable"},
		{"auth degraded (timeout)", obs(fromAuth, failmode.Degraded), empty, [4]State{d, d, u, m}, "auth degraded"},
		{"auth misconfigured", obs(fromAuth, failmode.Misconfigured), empty, [4]State{m, m, m, m}, "auth misconfigured"},
		{"auth untrusted", obs(fromAuth, failmode.Untrusted), empty, [4]State{m, m, m, m}, "auth untrusted"},
		{"auth rejected, degraded window", obs(fromAuth, failmode.Rejected), hadDegrade, [4]State{o, d, u, m}, ""},
		{"auth unknown", obs(fromAuth, failmode.Unknown), hadDegrade, [4]State{o, d, u, m}, ""},
		{"auth local", obs(fromAuth, failmode.Local), hadDegrade, [4]State{o, d, u, m}, ""},
		// traffic at other endpoints
		{"other allowed", obs(fromOther, failmode.Allowed), empty, [4]State{o, o, u, m}, ""},
		{"other unreachable", obs(fromOther, failmode.Unreachable), withCount(empty, 7), [4]State{o, o, u, m}, ""},
		{"other rate limited", obs(fromOther, failmode.Degraded), empty, [4]State{d, d, u, m}, "auth_status degraded"},
		{"other misconfigured", obs(fromOther, failmode.Misconfigured), empty, [4]State{m, m, m, m}, ""},
		// probes
		{"probe ok, empty window, a probe had failed", obs(fromProbe, failmode.Allowed), probeHadFailed(empty), [4]State{o, o, o, o}, "no degraded outcome in the last 1m"},
		{"probe ok, empty window, unreachable on traffic alone", obs(fromProbe, failmode.Allowed), empty, [4]State{o, o, d, o}, "no degraded outcome in the last 1m"},
		{"probe ok, slow window", obs(fromProbe, failmode.Allowed), probeHadFailed(slow), [4]State{d, d, d, d}, "preauth latency 3.4s over 3s (mean of 3 calls in the last 1m)"},
		{"probe ok, degraded window", obs(fromProbe, failmode.Allowed), hadDegrade, [4]State{d, d, d, d}, ""},
		{"probe ok, contradicted, degraded window", obs(fromProbe, failmode.Allowed), contradicted(hadDegrade), [4]State{d, d, d, d}, ""},
		{"probe denied (not a success)", obs(fromProbe, failmode.Denied), empty, [4]State{o, o, u, m}, ""},
		{"probe refused", probeRefused, withCount(empty, 1), [4]State{u, u, u, m}, "check: connection refused"},
		{"probe refused, logins vetoed it", probeRefused, vetoed(withCount(empty, 5)), [4]State{o, o, u, m}, ""},
		{"probe timed out, first", probeTimeout, withCount(empty, 1), [4]State{o, o, u, m}, ""},
		{"probe timed out, second, degraded window", probeTimeout, withCount(hadDegrade, 2), [4]State{d, d, u, m}, ""},
		{"probe timed out, third", probeTimeout, withCount(empty, 3), [4]State{u, u, u, m}, "check: no answer within 10s (3 consecutive preauth calls and probes unreachable)"},
		{"probe timed out, ninth, logins vetoed it", probeTimeout, vetoed(withCount(slow, 9)), [4]State{d, d, u, m}, ""},
		{"probe timed out, third, contradicted", probeTimeout, contradicted(withCount(hadDegrade, 3)), [4]State{u, u, u, m}, ""},
		{"probe rate limited", probe429, withCount(empty, 0), [4]State{d, d, d, m}, "check: HTTP 429"},
		{"probe misconfigured", probe401, empty, [4]State{m, m, m, m}, "check: HTTP 401: invalid signature"},
		{"probe untrusted", obs(fromProbe, failmode.Untrusted), empty, [4]State{m, m, m, m}, "check untrusted"},
		{"probe unknown", obs(fromProbe, failmode.Unknown), slow, [4]State{o, d, u, m}, ""},
		{"probe local", obs(fromProbe, failmode.Local), slow, [4]State{o, d, u, m}, ""},
		{"probe out-of-range class", obs(fromProbe, failmode.Class(42)), empty, [4]State{o, d, u, m}, ""},
		// trial binds (the Gate, while Unreachable)
		{"trial answered, empty window", obs(fromTrial, failmode.Allowed), empty, [4]State{o, d, o, m}, "trial bind answered by Duo"},
		{"trial answered, slow window", obs(fromTrial, failmode.Allowed), slow, [4]State{o, d, d, m}, "trial bind answered by Duo, but preauth latency 3.4s over 3s (mean of 3 calls in the last 1m)"},
	}
	for _, tt := range rows {
		firstChange := true
		for i, from := range States() {
			t.Run(fmt.Sprintf("%s/from %s", tt.name, from), func(t *testing.T) {
				got, reason := transition(testLimits, from, tt.o, tt.r)
				if got != tt.want[i] {
					t.Fatalf("got %s (%q), want %s", got, reason, tt.want[i])
				}
				if (got != from) != (reason != "") {
					t.Fatalf("reason %q: a reason must come exactly with a change", reason)
				}
				if got != from && firstChange && tt.reason != "" && reason != tt.reason {
					t.Errorf("reason %q, want %q", reason, tt.reason)
				}
			})
			if tt.want[i] != from {
				firstChange = false
			}
		}
	}
}

func TestRecoveryReasons(t *testing.T) {
	ok := obs(fromProbe, failmode.Allowed)
	for _, from := range []State{Unreachable, Misconfigured} {
		if _, reason := transition(testLimits, from, ok, probeHadFailed(empty)); reason != "check ok" {
			t.Errorf("%s → ok: reason %q", from, reason)
		}
		to, reason := transition(testLimits, from, ok, probeHadFailed(slow))
		if to != Degraded || !strings.HasPrefix(reason, "check ok, but preauth latency 3.4s over 3s") {
			t.Errorf("%s → %s: reason %q", from, to, reason)
		}
	}
	to, reason := transition(testLimits, Degraded, ok, fast)
	if to != OK || !strings.Contains(reason, "200ms") {
		t.Errorf("degraded → %s: reason %q", to, reason)
	}
	to, reason = transition(testLimits, Unreachable, ok, empty)
	if to != Degraded || reason != "check ok, but preauth calls fail: Duo answers, so degraded" {
		t.Errorf("unreachable on traffic alone → %s: reason %q", to, reason)
	}
}

// TestTransitionInvariants walks every state × source × class × memory and
// checks the promises of the package independently of how transition is
// written.
func TestTransitionInvariants(t *testing.T) {
	classes := append(failmode.Classes(), failmode.Class(-1), failmode.Class(99))
	windows := []recent{empty, fast, slow, slowFew, atLimit, hadDegrade}
	sources := []source{fromPreauth, fromAuth, fromOther, fromProbe, fromTrial}
	n := 0
	for _, from := range States() {
		for _, src := range sources {
			for _, class := range classes {
				for _, w := range windows {
					for _, count := range []int{0, 1, 2, 3, 10} {
						for flags := range 16 {
							n++
							o := obs(src, class)
							o.decisive = flags&1 != 0 && src == fromProbe && class == failmode.Unreachable
							r := withCount(w, count)
							r.vetoed, r.contradicted, r.probeFailed = flags&2 != 0, flags&4 != 0, flags&8 != 0
							checkInvariants(t, from, o, r)
						}
					}
				}
			}
		}
	}
	if want := 4 * len(sources) * len(classes) * 6 * 5 * 16; n != want {
		t.Fatalf("walked %d cases, want %d", n, want)
	}
}

func checkInvariants(t *testing.T, from State, o observation, r recent) {
	t.Helper()
	to, reason := transition(testLimits, from, o, r)
	name := fmt.Sprintf("from=%s o=%+v r=%+v", from, o, r)
	src, class := o.src, o.class
	if !slices.Contains(States(), to) {
		t.Fatalf("%s: unknown state %q", name, to)
	}
	if (to != from) != (reason != "") {
		t.Errorf("%s: reason %q with to=%s", name, reason, to)
	}
	if o.ignored() && to != from {
		t.Errorf("%s: an outcome that says nothing about Duo changed the state to %s", name, to)
	}
	if (class == failmode.Unknown || class == failmode.Local || class == failmode.Rejected) && to != from {
		t.Errorf("%s: %s changed the state to %s", name, class, to)
	}
	misClass := class == failmode.Misconfigured || class == failmode.Untrusted
	if from != Misconfigured && (misClass && src != fromTrial) != (to == Misconfigured) {
		// A trial's own result carries no class: Observe saw its calls.
		t.Errorf("%s: misconfigured/untrusted must, and only they may, enter misconfigured (got %s)", name, to)
	}
	if from == Misconfigured && to != from && !(src == fromProbe && class == failmode.Allowed) {
		t.Errorf("%s: only a successful probe leaves misconfigured (got %s)", name, to)
	}
	if from == Unreachable && src != fromProbe && src != fromTrial && to != from && to != Misconfigured {
		t.Errorf("%s: traffic outside a trial took the state out of unreachable to %s", name, to)
	}
	if src == fromTrial && to != from && (from != Unreachable || to == Unreachable || to == Misconfigured) {
		t.Errorf("%s: a trial may only take the state out of unreachable (got %s)", name, to)
	}
	if from == Unreachable && to == OK && !r.probeFailed && src == fromProbe {
		t.Errorf("%s: a probe alone ended an outage seen on preauth alone (must be degraded)", name)
	}
	if to == Unreachable && from != Unreachable {
		switch {
		case class != failmode.Unreachable:
			t.Errorf("%s: only an unreachable outcome may enter unreachable", name)
		case src == fromProbe && r.vetoed:
			t.Errorf("%s: a probe vetoed by working logins entered unreachable", name)
		case src == fromProbe && !o.decisive && r.consecutive < testLimits.unreachableAfter:
			t.Errorf("%s: a probe that is not decisive entered unreachable below the threshold", name)
		case src == fromPreauth && (r.contradicted || r.consecutive < testLimits.unreachableAfter):
			t.Errorf("%s: preauth traffic entered unreachable below the threshold or while contradicted", name)
		case src != fromProbe && src != fromPreauth:
			t.Errorf("%s: only preauth calls and probes may enter unreachable", name)
		}
	}
}

func TestStates(t *testing.T) {
	want := []State{"ok", "degraded", "unreachable", "misconfigured"}
	if got := States(); !slices.Equal(got, want) {
		t.Fatalf("States() = %v", got)
	}
	for _, s := range States() {
		if s.down() != (s == Unreachable || s == Misconfigured) {
			t.Errorf("%s.down() = %v", s, s.down())
		}
	}
}

func TestWindow(t *testing.T) {
	w := newWindow(time.Minute) // 1s slots
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sum := func(at time.Time) recent {
		var r recent
		w.summary(at, &r)
		return r
	}
	w.addLatency(t0, 1*time.Second)
	w.addLatency(t0.Add(10*time.Second), 3*time.Second)
	w.addDegraded(t0.Add(20*time.Second), "auth degraded")
	if r := sum(t0.Add(30 * time.Second)); r.samples != 2 || r.mean != 2*time.Second || r.degraded != 1 || r.degradedDetail != "auth degraded" {
		t.Fatalf("at +30s: %+v", r)
	}
	if r := sum(t0.Add(65 * time.Second)); r.samples != 1 || r.mean != 3*time.Second || r.degraded != 1 {
		t.Fatalf("at +65s the first sample must have left: %+v", r)
	}
	if r := sum(t0.Add(81 * time.Second)); r.samples != 0 || r.degraded != 0 || r.degradedDetail != "" {
		t.Fatalf("at +81s the window must be empty: %+v", r)
	}
	// A slot reused a window later starts empty.
	w.addLatency(t0.Add(60*time.Second), 5*time.Second)
	if r := sum(t0.Add(60 * time.Second)); r.samples != 2 || r.mean != 4*time.Second {
		t.Fatalf("after reuse: %+v", r)
	}
	// Samples from the future (a clock stepped back) are not counted.
	if r := sum(t0.Add(5 * time.Second)); r.samples != 0 || r.degraded != 0 {
		t.Fatalf("clock stepped back: %+v", r)
	}
	// A tiny window still works.
	tiny := newWindow(10)
	tiny.addLatency(t0, time.Second)
	var r recent
	tiny.summary(t0, &r)
	if r.samples != 1 {
		t.Fatalf("tiny window: %+v", r)
	}
}

// TestEvidence: what counts towards Unreachable, what resets the count, and
// what a probe failure tells about recovery, whatever the state.
func TestEvidence(t *testing.T) {
	probeFail := observation{src: fromProbe, class: failmode.Unreachable, name: "check"}
	type row struct {
		name   string
		state  State
		m      memory
		o      observation
		vetoed bool
		want   memory
	}
	rows := []row{
		{"preauth unreachable counts", OK, memory{consecutive: 1}, obs(fromPreauth, failmode.Unreachable), false, memory{consecutive: 2}},
		{"preauth unreachable counts even when vetoed", OK, memory{consecutive: 1}, obs(fromPreauth, failmode.Unreachable), true, memory{consecutive: 2}},
		{"probe unreachable counts", OK, memory{consecutive: 1}, probeFail, false, memory{consecutive: 2, probeFailed: true}},
		{"vetoed probe does not count, but is remembered", OK, memory{consecutive: 1}, probeFail, true, memory{consecutive: 1, probeFailed: true}},
		{"auth unreachable does not count", OK, memory{consecutive: 1}, obs(fromAuth, failmode.Unreachable), false, memory{consecutive: 1}},
		{"preauth allowed resets", OK, memory{consecutive: 2, probeFailed: true}, obs(fromPreauth, failmode.Allowed), false, memory{}},
		{"preauth denied resets", Degraded, memory{consecutive: 2}, obs(fromPreauth, failmode.Denied), false, memory{}},
		{"preauth rejected resets", OK, memory{consecutive: 2}, obs(fromPreauth, failmode.Rejected), false, memory{}},
		{"auth rejected resets", OK, memory{consecutive: 2}, obs(fromAuth, failmode.Rejected), false, memory{}},
		{"auth allowed resets", OK, memory{consecutive: 2}, obs(fromAuth, failmode.Allowed), false, memory{}},
		{"preauth rate limited resets", OK, memory{consecutive: 2}, obs(fromPreauth, failmode.Degraded), false, memory{}},
		{"probe ok resets and trusts the probe again", OK, memory{consecutive: 2, distrustProbe: true}, obs(fromProbe, failmode.Allowed), false, memory{}},
		{"untrusted is no answer", OK, memory{consecutive: 2}, obs(fromPreauth, failmode.Untrusted), false, memory{consecutive: 2}},
		{"local is ignored", OK, memory{consecutive: 2}, obs(fromPreauth, failmode.Local), false, memory{consecutive: 2}},
		{"unknown is ignored", OK, memory{consecutive: 2}, obs(fromProbe, failmode.Unknown), false, memory{consecutive: 2}},
		{"local probe is ignored", OK, memory{consecutive: 2}, obs(fromProbe, failmode.Local), false, memory{consecutive: 2}},
		{"a straggler's answer keeps the probe's failure while unreachable", Unreachable, memory{consecutive: 4, probeFailed: true}, obs(fromPreauth, failmode.Allowed), false, memory{probeFailed: true}},
		{"contradiction is not evidence's business", Degraded, memory{consecutive: 4, contradicted: true}, obs(fromPreauth, failmode.Unreachable), false, memory{consecutive: 5, contradicted: true}},
		{"a trial Duo answered resets", Unreachable, memory{consecutive: 4, probeFailed: true}, obs(fromTrial, failmode.Allowed), false, memory{probeFailed: true}},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if got := evidence(tt.m, tt.state, tt.o, tt.vetoed); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSettle: when the contradiction starts and ends, and what leaving
// Unreachable forgets.
func TestSettle(t *testing.T) {
	probeOK := obs(fromProbe, failmode.Allowed)
	probeFail := observation{src: fromProbe, class: failmode.Unreachable, name: "check"}
	type row struct {
		name     string
		m        memory
		from, to State
		o        observation
		r        recent
		want     memory
	}
	rows := []row{
		{"probe ok after an outage on preauth alone: contradicted", memory{}, Unreachable, Degraded, probeOK, empty, memory{contradicted: true}},
		{"probe ok after a probe had failed too: recovered", memory{probeFailed: true}, Unreachable, OK, probeOK, probeHadFailed(empty), memory{}},
		{"more failures keep it", memory{contradicted: true}, Degraded, Degraded, obs(fromPreauth, failmode.Unreachable), hadDegrade, memory{contradicted: true}},
		{"good answers keep it while the window is dirty", memory{contradicted: true}, Degraded, Degraded, obs(fromPreauth, failmode.Allowed), hadDegrade, memory{contradicted: true}},
		{"a failed probe ends it", memory{contradicted: true}, Degraded, Degraded, probeFail, hadDegrade, memory{}},
		{"a clean window ends it", memory{contradicted: true}, Degraded, Degraded, obs(fromPreauth, failmode.Allowed), slow, memory{}},
		{"leaving degraded ends it", memory{contradicted: true}, Degraded, OK, probeOK, empty, memory{}},
		{"misconfigured ends it", memory{contradicted: true}, Degraded, Misconfigured, obs(fromPreauth, failmode.Misconfigured), hadDegrade, memory{}},
		{"a trial out of unreachable distrusts the probe", memory{probeFailed: true, consecutive: 3}, Unreachable, OK, obs(fromTrial, failmode.Allowed), probeHadFailed(empty), memory{consecutive: 3, distrustProbe: true}},
		{"staying unreachable keeps the probe's failure", memory{probeFailed: true}, Unreachable, Unreachable, obs(fromPreauth, failmode.Unreachable), empty, memory{probeFailed: true}},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			if got := settle(tt.m, tt.from, tt.to, tt.o, tt.r); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVetoedAt(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		lastGood time.Time
		now      time.Time
		want     bool
	}{
		{"never a good answer", time.Time{}, t0, false},
		{"just now", t0, t0, true},
		{"59s ago", t0, t0.Add(59 * time.Second), true},
		{"a window ago", t0, t0.Add(time.Minute), false},
		{"clock stepped back", t0, t0.Add(-time.Hour), true},
	} {
		if got := vetoedAt(tt.lastGood, tt.now, time.Minute); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestTrialAdmission(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const every = time.Second
	for _, tt := range []struct {
		name  string
		tr    trials
		state State
		now   time.Time
		want  bool
	}{
		{"first trial while unreachable", trials{}, Unreachable, t0, true},
		{"never while ok", trials{}, OK, t0, false},
		{"never while degraded", trials{}, Degraded, t0, false},
		{"never while misconfigured", trials{}, Misconfigured, t0, false},
		{"one at a time", trials{inFlight: true, last: t0.Add(-time.Hour)}, Unreachable, t0, false},
		{"not twice within the interval", trials{last: t0}, Unreachable, t0.Add(999 * time.Millisecond), false},
		{"again after the interval", trials{last: t0}, Unreachable, t0.Add(every), true},
		{"a clock stepped back does not hold trials off", trials{last: t0}, Unreachable, t0.Add(-time.Hour), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.tr.admit(tt.state, tt.now, every)
			if ok != tt.want {
				t.Fatalf("admit = %v, want %v", ok, tt.want)
			}
			switch {
			case ok && (got != trials{inFlight: true, last: tt.now}):
				t.Fatalf("admitted, bookkeeping %+v", got)
			case !ok && got != tt.tr:
				t.Fatalf("refused, but bookkeeping changed to %+v", got)
			}
		})
	}
	// A long trial: the next one waits for an interval after it ended.
	tr, _ := trials{}.admit(Unreachable, t0, every)
	tr = tr.end(t0.Add(10 * time.Second))
	if _, ok := tr.admit(Unreachable, t0.Add(10*time.Second+every-1), every); ok {
		t.Fatal("admitted within an interval of the last trial's end")
	}
	if _, ok := tr.admit(Unreachable, t0.Add(10*time.Second+every), every); !ok {
		t.Fatal("refused an interval after the last trial's end")
	}
}
