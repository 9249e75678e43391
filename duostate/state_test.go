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
	name := map[source]string{fromPreauth: "preauth", fromAuth: "auth", fromOther: "auth_status", fromProbe: "check"}[src]
	return observation{src: src, class: class, name: name}
}

func withCount(r recent, n int) recent { r.consecutive = n; return r }

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
	probeFail := observation{src: fromProbe, class: failmode.Unreachable, name: "check", detail: "check: connection refused"}
	probe401 := observation{src: fromProbe, class: failmode.Misconfigured, name: "check", detail: "check: HTTP 401: invalid signature"}
	probe429 := observation{src: fromProbe, class: failmode.Degraded, name: "check", detail: "check: HTTP 429"}
	rows := []row{
		// preauth traffic
		{"preauth allowed, empty window", obs(fromPreauth, failmode.Allowed), empty, [4]State{o, o, u, m}, "no degraded outcome in the last 60s"},
		{"preauth allowed, fast window", obs(fromPreauth, failmode.Allowed), fast, [4]State{o, o, u, m}, "no degraded outcome and preauth latency 200ms (mean of 5 calls) in the last 60s"},
		{"preauth allowed, slow window", obs(fromPreauth, failmode.Allowed), slow, [4]State{d, d, u, m}, "preauth latency 3.4s over 3s (mean of 3 calls in the last 60s)"},
		{"preauth allowed, too few slow samples", obs(fromPreauth, failmode.Allowed), slowFew, [4]State{o, o, u, m}, ""},
		{"preauth allowed, mean exactly at the limit", obs(fromPreauth, failmode.Allowed), atLimit, [4]State{o, o, u, m}, ""},
		{"preauth allowed, degraded outcome in window", obs(fromPreauth, failmode.Allowed), hadDegrade, [4]State{d, d, u, m}, "auth degraded (1 degraded outcomes in the last 60s)"},
		{"preauth denied, empty window", obs(fromPreauth, failmode.Denied), empty, [4]State{o, o, u, m}, ""},
		{"preauth denied, slow window", obs(fromPreauth, failmode.Denied), slow, [4]State{d, d, u, m}, ""},
		{"preauth unreachable, first", obs(fromPreauth, failmode.Unreachable), withCount(empty, 1), [4]State{o, o, u, m}, ""},
		{"preauth unreachable, second, degraded window", obs(fromPreauth, failmode.Unreachable), withCount(hadDegrade, 2), [4]State{d, d, u, m}, ""},
		{"preauth unreachable, third", obs(fromPreauth, failmode.Unreachable), withCount(empty, 3), [4]State{u, u, u, m}, "3 consecutive preauth calls unreachable"},
		{"preauth unreachable, fourth", obs(fromPreauth, failmode.Unreachable), withCount(fast, 4), [4]State{u, u, u, m}, "4 consecutive preauth calls unreachable"},
		{"preauth rate limited", obs(fromPreauth, failmode.Degraded), withCount(hadDegrade, 0), [4]State{d, d, u, m}, "preauth degraded"},
		{"preauth misconfigured", obs(fromPreauth, failmode.Misconfigured), empty, [4]State{m, m, m, m}, "preauth misconfigured"},
		{"preauth untrusted", obs(fromPreauth, failmode.Untrusted), empty, [4]State{m, m, m, m}, "preauth untrusted"},
		{"preauth unknown, slow window", obs(fromPreauth, failmode.Unknown), withCount(slow, 9), [4]State{o, d, u, m}, ""},
		// auth traffic
		{"auth allowed, empty window", obs(fromAuth, failmode.Allowed), empty, [4]State{o, o, u, m}, ""},
		{"auth denied, degraded window", obs(fromAuth, failmode.Denied), hadDegrade, [4]State{d, d, u, m}, ""},
		{"auth unreachable", obs(fromAuth, failmode.Unreachable), withCount(empty, 5), [4]State{d, d, u, m}, "auth unreachable"},
		{"auth degraded (timeout)", obs(fromAuth, failmode.Degraded), empty, [4]State{d, d, u, m}, "auth degraded"},
		{"auth misconfigured", obs(fromAuth, failmode.Misconfigured), empty, [4]State{m, m, m, m}, "auth misconfigured"},
		{"auth untrusted", obs(fromAuth, failmode.Untrusted), empty, [4]State{m, m, m, m}, "auth untrusted"},
		{"auth unknown", obs(fromAuth, failmode.Unknown), hadDegrade, [4]State{o, d, u, m}, ""},
		// traffic at other endpoints
		{"other allowed", obs(fromOther, failmode.Allowed), empty, [4]State{o, o, u, m}, ""},
		{"other unreachable", obs(fromOther, failmode.Unreachable), withCount(empty, 7), [4]State{o, o, u, m}, ""},
		{"other rate limited", obs(fromOther, failmode.Degraded), empty, [4]State{d, d, u, m}, "auth_status degraded"},
		{"other misconfigured", obs(fromOther, failmode.Misconfigured), empty, [4]State{m, m, m, m}, ""},
		// probes
		{"probe ok, empty window", obs(fromProbe, failmode.Allowed), empty, [4]State{o, o, o, o}, "no degraded outcome in the last 60s"},
		{"probe ok, slow window", obs(fromProbe, failmode.Allowed), slow, [4]State{d, d, d, d}, "preauth latency 3.4s over 3s (mean of 3 calls in the last 60s)"},
		{"probe ok, degraded window", obs(fromProbe, failmode.Allowed), hadDegrade, [4]State{d, d, d, d}, ""},
		{"probe denied (not a success)", obs(fromProbe, failmode.Denied), empty, [4]State{o, o, u, m}, ""},
		{"probe unreachable", probeFail, withCount(empty, 1), [4]State{u, u, u, m}, "check: connection refused"},
		{"probe rate limited", probe429, withCount(empty, 0), [4]State{d, d, d, m}, "check: HTTP 429"},
		{"probe misconfigured", probe401, empty, [4]State{m, m, m, m}, "check: HTTP 401: invalid signature"},
		{"probe untrusted", obs(fromProbe, failmode.Untrusted), empty, [4]State{m, m, m, m}, "check untrusted"},
		{"probe unknown", obs(fromProbe, failmode.Unknown), slow, [4]State{o, d, u, m}, ""},
		{"probe out-of-range class", obs(fromProbe, failmode.Class(42)), empty, [4]State{o, o, u, m}, ""},
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
		if _, reason := transition(testLimits, from, ok, empty); reason != "check ok" {
			t.Errorf("%s → ok: reason %q", from, reason)
		}
		to, reason := transition(testLimits, from, ok, slow)
		if to != Degraded || !strings.HasPrefix(reason, "check ok, but preauth latency 3.4s over 3s") {
			t.Errorf("%s → %s: reason %q", from, to, reason)
		}
	}
	to, reason := transition(testLimits, Degraded, ok, fast)
	if to != OK || !strings.Contains(reason, "200ms") {
		t.Errorf("degraded → %s: reason %q", to, reason)
	}
}

// TestTransitionInvariants walks every state × source × class × window and
// checks the promises of the package independently of how transition is
// written.
func TestTransitionInvariants(t *testing.T) {
	classes := append(failmode.Classes(), failmode.Class(-1), failmode.Class(99))
	windows := []recent{empty, fast, slow, slowFew, atLimit, hadDegrade}
	n := 0
	for _, from := range States() {
		for _, src := range []source{fromPreauth, fromAuth, fromOther, fromProbe} {
			for _, class := range classes {
				for _, w := range windows {
					for _, count := range []int{0, 1, 2, 3, 10} {
						n++
						o := obs(src, class)
						r := withCount(w, count)
						to, reason := transition(testLimits, from, o, r)
						name := fmt.Sprintf("from=%s src=%d class=%s window=%+v", from, src, class, r)
						if !slices.Contains(States(), to) {
							t.Fatalf("%s: unknown state %q", name, to)
						}
						if (to != from) != (reason != "") {
							t.Errorf("%s: reason %q with to=%s", name, reason, to)
						}
						if class == failmode.Unknown && to != from {
							t.Errorf("%s: an unknown outcome changed the state to %s", name, to)
						}
						misClass := class == failmode.Misconfigured || class == failmode.Untrusted
						if from != Misconfigured && misClass != (to == Misconfigured) {
							t.Errorf("%s: misconfigured/untrusted must, and only they may, enter misconfigured (got %s)", name, to)
						}
						if from == Misconfigured && to != from && !(src == fromProbe && class == failmode.Allowed) {
							t.Errorf("%s: only a successful probe leaves misconfigured (got %s)", name, to)
						}
						if from == Unreachable && src != fromProbe && to != from && to != Misconfigured {
							t.Errorf("%s: traffic took the state out of unreachable to %s", name, to)
						}
						if to == Unreachable && from != Unreachable && class != failmode.Unreachable {
							t.Errorf("%s: only an unreachable outcome may enter unreachable", name)
						}
						if to == Unreachable && from != Unreachable && src != fromProbe && (src != fromPreauth || count < testLimits.unreachableAfter) {
							t.Errorf("%s: entered unreachable below the threshold", name)
						}
					}
				}
			}
		}
	}
	if n != 4*4*9*6*5 {
		t.Fatalf("walked %d cases", n)
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

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:                 "60s",
		3 * time.Second:             "3s",
		3400 * time.Millisecond:     "3.4s",
		3400123 * time.Microsecond:  "3.4s",
		200 * time.Millisecond:      "200ms",
		1500 * time.Microsecond:     "2ms",
		10 * time.Millisecond:       "10ms",
		0:                           "0s",
		90 * time.Second:            "90s",
		1234567 * time.Microsecond:  "1.235s",
		1*time.Hour + 1*time.Second: "3601s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
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
