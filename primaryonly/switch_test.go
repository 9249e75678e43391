package primaryonly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, fmt.Sprintf("%s %v %s", e.Server, e.Enabled, e.Reason))
	}
	return out
}

var sections = map[string]failmode.Mode{"ldap": failmode.Safe, "mail": failmode.Safe, "vpn": failmode.Secure}

func newTest(t *testing.T, secs map[string]failmode.Mode) (*Switch, *clock, *recorder) {
	t.Helper()
	c := &clock{t: t0}
	r := &recorder{}
	return New(secs, c.now, r.on), c, r
}

// on lists the sections Status shows as on, with minutes left.
func on(s *Switch, now time.Time) []string {
	var out []string
	for _, e := range s.Status() {
		if !e.Until.IsZero() {
			out = append(out, fmt.Sprintf("%s+%s", e.Server, human.Duration(e.Until.Sub(now))))
		}
	}
	return out
}

func TestEnable(t *testing.T) {
	tests := []struct {
		name     string
		sections map[string]failmode.Mode
		servers  []string
		d        time.Duration
		wantErr  string // exact text; "" = success
		wantIs   error
		wantOn   []string // Status afterwards
	}{
		{name: "default scope is every safe section", servers: nil, d: 30 * time.Minute, wantOn: []string{"ldap+30m", "mail+30m"}},
		{name: "one named section", servers: []string{"mail"}, d: time.Hour, wantOn: []string{"mail+1h"}},
		{name: "duplicates collapse", servers: []string{"mail", "mail"}, d: time.Hour, wantOn: []string{"mail+1h"}},
		{name: "exactly the maximum", servers: []string{"ldap"}, d: MaxDuration, wantOn: []string{"ldap+4h"}},
		{name: "secure section refused", servers: []string{"vpn"}, d: time.Hour,
			wantErr: "section vpn is failmode secure; primary-only mode applies only to safe sections", wantIs: ErrSecureSection},
		{name: "over the maximum refused", servers: nil, d: 5 * time.Hour,
			wantErr: "refused: 5h exceeds the 4h maximum", wantIs: ErrDuration},
		{name: "just over the maximum refused", servers: []string{"ldap"}, d: MaxDuration + time.Second,
			wantErr: "refused: 4h0m1s exceeds the 4h maximum", wantIs: ErrDuration},
		{name: "zero duration refused", servers: []string{"ldap"}, d: 0,
			wantErr: "refused: duration must be positive, got 0s", wantIs: ErrDuration},
		{name: "negative duration refused", servers: []string{"ldap"}, d: -time.Minute,
			wantErr: "refused: duration must be positive, got -1m", wantIs: ErrDuration},
		{name: "unknown section refused", servers: []string{"nope"}, d: time.Hour,
			wantErr: `unknown section "nope"; sections are ldap, mail, vpn`, wantIs: ErrUnknownSection},
		{name: "all or nothing with a secure section", servers: []string{"ldap", "vpn"}, d: time.Hour,
			wantErr: "section vpn is failmode secure; primary-only mode applies only to safe sections", wantIs: ErrSecureSection},
		{name: "all or nothing with an unknown section", servers: []string{"mail", "nope", "ldap"}, d: time.Hour,
			wantErr: `unknown section "nope"; sections are ldap, mail, vpn`, wantIs: ErrUnknownSection},
		{name: "every problem reported", servers: []string{"vpn", "nope"}, d: time.Hour,
			wantErr: "unknown section \"nope\"; sections are ldap, mail, vpn\nsection vpn is failmode secure; primary-only mode applies only to safe sections", wantIs: ErrSecureSection},
		{name: "no safe section to default to", sections: map[string]failmode.Mode{"vpn": failmode.Secure}, d: time.Hour,
			wantErr: "refused: no section is failmode safe; primary-only mode applies only to safe sections", wantIs: ErrNoSafeSection},
		{name: "unrecognised mode counts as secure", sections: map[string]failmode.Mode{"odd": "bogus"}, servers: []string{"odd"}, d: time.Hour,
			wantErr: "section odd is failmode secure; primary-only mode applies only to safe sections", wantIs: ErrSecureSection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secs := tc.sections
			if secs == nil {
				secs = sections
			}
			s, c, r := newTest(t, secs)
			entries, err := s.Enable(tc.servers, tc.d)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !errors.Is(err, tc.wantIs) {
					t.Errorf("errors.Is(err, %v) = false", tc.wantIs)
				}
				if entries != nil {
					t.Errorf("entries = %v on error", entries)
				}
				if got := on(s, c.now()); len(got) != 0 {
					t.Errorf("after refusal, on = %v, want nothing", got)
				}
				if got := r.got(); len(got) != 0 {
					t.Errorf("after refusal, events = %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Enable: %v", err)
			}
			if got := on(s, c.now()); !slices.Equal(got, tc.wantOn) {
				t.Errorf("on = %v, want %v", got, tc.wantOn)
			}
			var names []string
			for _, e := range entries {
				names = append(names, fmt.Sprintf("%s+%s", e.Server, human.Duration(e.Until.Sub(c.now()))))
				if e.Failmode != failmode.Safe {
					t.Errorf("entry %s failmode = %q", e.Server, e.Failmode)
				}
			}
			if !slices.Equal(names, tc.wantOn) {
				t.Errorf("returned entries = %v, want %v", names, tc.wantOn)
			}
			for _, e := range r.events {
				want := "enabled by admin socket for " + human.Duration(tc.d)
				if !e.Enabled || e.Reason != want || !e.At.Equal(t0) || !e.Until.Equal(t0.Add(tc.d)) {
					t.Errorf("event = %+v, want enabled %q", e, want)
				}
			}
			if len(r.events) != len(tc.wantOn) {
				t.Errorf("events = %v", r.got())
			}
		})
	}
}

func TestDisable(t *testing.T) {
	tests := []struct {
		name       string
		servers    []string
		wantErr    string
		wantOn     []string
		wantEvents []string
		wantNames  []string
	}{
		{name: "no names disables all", servers: nil, wantOn: nil,
			wantEvents: []string{"ldap false disabled by admin socket", "mail false disabled by admin socket"},
			wantNames:  []string{"ldap", "mail", "vpn"}},
		{name: "one named", servers: []string{"mail"}, wantOn: []string{"ldap+1h"},
			wantEvents: []string{"mail false disabled by admin socket"}, wantNames: []string{"mail"}},
		{name: "secure section is already off", servers: []string{"vpn"}, wantOn: []string{"ldap+1h", "mail+1h"},
			wantNames: []string{"vpn"}},
		{name: "unknown refused, nothing changes", servers: []string{"ldap", "nope"}, wantOn: []string{"ldap+1h", "mail+1h"},
			wantErr: `unknown section "nope"; sections are ldap, mail, vpn`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c, r := newTest(t, sections)
			if _, err := s.Enable(nil, time.Hour); err != nil {
				t.Fatal(err)
			}
			r.events = nil
			entries, err := s.Disable(tc.servers)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrUnknownSection) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := on(s, c.now()); !slices.Equal(got, tc.wantOn) {
				t.Errorf("on = %v, want %v", got, tc.wantOn)
			}
			if got := r.got(); !slices.Equal(got, tc.wantEvents) {
				t.Errorf("events = %v, want %v", got, tc.wantEvents)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Server)
				if !e.Until.IsZero() {
					t.Errorf("entry %s still on after disable", e.Server)
				}
			}
			if !slices.Equal(names, tc.wantNames) {
				t.Errorf("entries = %v, want %v", names, tc.wantNames)
			}
		})
	}
}

func TestReenableReplacesUntil(t *testing.T) {
	s, c, _ := newTest(t, sections)
	if _, err := s.Enable([]string{"ldap"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	c.add(50 * time.Minute)
	if _, err := s.Enable([]string{"ldap"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Until("ldap"), t0.Add(110*time.Minute); !got.Equal(want) {
		t.Errorf("extended Until = %v, want %v", got, want)
	}
	if _, err := s.Enable([]string{"ldap"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Until("ldap"), t0.Add(51*time.Minute); !got.Equal(want) {
		t.Errorf("shortened Until = %v, want %v", got, want)
	}
}

func TestActiveFlipsAtUntil(t *testing.T) {
	s, c, r := newTest(t, sections)
	if s.Active("ldap") {
		t.Fatal("active before enable")
	}
	if _, err := s.Enable([]string{"ldap"}, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	until := t0.Add(30 * time.Minute)
	for _, tc := range []struct {
		name   string
		at     time.Time
		server string
		want   bool
	}{
		{"just enabled", t0, "ldap", true},
		{"other safe section untouched", t0, "mail", false},
		{"secure section never", t0, "vpn", false},
		{"unknown section never", t0, "nope", false},
		{"a nanosecond before", until.Add(-time.Nanosecond), "ldap", true},
		{"at Until", until, "ldap", false},
		{"after Until", until.Add(time.Hour), "ldap", false},
	} {
		c.mu.Lock()
		c.t = tc.at
		c.mu.Unlock()
		if got := s.Active(tc.server); got != tc.want {
			t.Errorf("%s: Active(%s) = %v, want %v", tc.name, tc.server, got, tc.want)
		}
		wantUntil := time.Time{}
		if tc.want {
			wantUntil = until
		}
		if got := s.Until(tc.server); !got.Equal(wantUntil) {
			t.Errorf("%s: Until(%s) = %v, want %v", tc.name, tc.server, got, wantUntil)
		}
	}
	// Expired but not yet reaped (no Run): Status shows it off...
	if got := on(s, c.now()); len(got) != 0 {
		t.Errorf("Status after expiry shows %v on", got)
	}
	// ...and the next change reports the expiry, not a disable.
	if _, err := s.Disable(nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"ldap true enabled by admin socket for 30m", "ldap false expired"}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestStatusSorted(t *testing.T) {
	secs := map[string]failmode.Mode{"zeta": failmode.Safe, "alpha": failmode.Secure, "mid": failmode.Safe, "beta": ""}
	s, _, _ := newTest(t, secs)
	if _, err := s.Enable([]string{"mid"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got := s.Status()
	want := []Entry{
		{Server: "alpha", Failmode: failmode.Secure},
		{Server: "beta", Failmode: failmode.Secure},
		{Server: "mid", Failmode: failmode.Safe, Until: t0.Add(time.Hour)},
		{Server: "zeta", Failmode: failmode.Safe},
	}
	if len(got) != len(want) {
		t.Fatalf("Status = %+v", got)
	}
	for i := range want {
		if got[i].Server != want[i].Server || got[i].Failmode != want[i].Failmode || !got[i].Until.Equal(want[i].Until) {
			t.Errorf("Status[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestEntryJSON(t *testing.T) {
	b, err := json.Marshal([]Entry{
		{Server: "ldap", Failmode: failmode.Safe},
		{Server: "mail", Failmode: failmode.Safe, Until: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"server":"ldap","failmode":"safe"},{"server":"mail","failmode":"safe","until":"2026-03-01T12:00:00Z"}]`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

// events returns a switch on the real clock whose events arrive on a channel.
func withChan(secs map[string]failmode.Mode) (*Switch, chan Event) {
	ch := make(chan Event, 64)
	return New(secs, nil, func(e Event) { ch <- e }), ch
}

func next(t *testing.T, ch chan Event) Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}

func TestRunFiresExpiredOnce(t *testing.T) {
	s, ch := withChan(sections)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	// A long entry first, so Run's timer must be re-armed for the short one.
	if _, err := s.Enable([]string{"mail"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Server != "mail" || !e.Enabled {
		t.Fatalf("event = %+v", e)
	}
	for round := range 2 {
		if _, err := s.Enable([]string{"ldap"}, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		en := next(t, ch)
		if en.Server != "ldap" || !en.Enabled || en.Reason != "enabled by admin socket for 20ms" {
			t.Fatalf("round %d: event = %+v", round, en)
		}
		// Events are delivered in order, so a duplicate "expired" from the
		// first round would show up here before the second round's "enabled".
		ex := next(t, ch)
		if ex.Server != "ldap" || ex.Enabled || ex.Reason != "expired" || !ex.Until.IsZero() {
			t.Fatalf("round %d: event = %+v, want ldap expired", round, ex)
		}
		if ex.At.Before(en.Until) {
			t.Errorf("round %d: expired at %v, before Until %v", round, ex.At, en.Until)
		}
		if s.Active("ldap") || !s.Active("mail") {
			t.Errorf("round %d: Active ldap=%v mail=%v after expiry", round, s.Active("ldap"), s.Active("mail"))
		}
	}
	if _, err := s.Disable([]string{"mail"}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Server != "mail" || e.Reason != "disabled by admin socket" {
		t.Fatalf("event = %+v", e)
	}
	select {
	case e := <-ch:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

func TestRunReturnsOnCancel(t *testing.T) {
	s, _ := withChan(sections)
	if _, err := s.Enable(nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// onChange runs outside the state lock, so it may read the switch.
func TestOnChangeMayReadSwitch(t *testing.T) {
	var s *Switch
	var seen []string
	s = New(sections, nil, func(e Event) {
		seen = append(seen, fmt.Sprintf("%s active=%v entries=%d", e.Server, s.Active(e.Server), len(s.Status())))
	})
	if _, err := s.Enable([]string{"ldap"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Disable(nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"ldap active=true entries=3", "ldap active=false entries=3"}
	if !slices.Equal(seen, want) {
		t.Errorf("seen = %v, want %v", seen, want)
	}
}

func TestConcurrent(t *testing.T) {
	s, ch := withChan(sections)
	go func() {
		for range ch {
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.Active("ldap")
				_ = s.Until("mail")
				_ = s.Active("vpn")
				_ = s.Status()
			}
		})
	}
	for i := range 200 {
		names := [][]string{nil, {"ldap"}, {"mail"}}[i%3]
		if _, err := s.Enable(names, time.Duration(1+i%5)*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if _, err := s.Disable(names); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if s.Active("vpn") {
		t.Error("secure section became active")
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	s, _, _ := newTest(t, sections)
	_, err := s.Enable([]string{"vpn"}, 5*time.Hour)
	if !errors.Is(err, ErrDuration) || strings.Contains(err.Error(), "vpn") {
		t.Errorf("duration is checked first, got %v", err)
	}
}
