// Package primaryonly is the emergency switch that lets failmode=safe sections
// accept binds on the password alone for a bounded time, e.g. during a Duo
// degradation that failmode does not cover. It survives nothing: a restart
// clears it.
//
// The switch is per server section and always time-boxed: every enable carries
// an expiry no later than MaxDuration from now, and Active reports false the
// moment that expiry passes, whether or not Run has noticed yet. Secure
// sections can never be switched on; keeping privileged users (secure groups)
// on Duo is the caller's job, via failmode.Policy.PrimaryOnly.
package primaryonly

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

const (
	// DefaultDuration is how long an enable lasts when the operator names no duration.
	DefaultDuration = time.Hour
	// MaxDuration is the longest a single enable may last. Longer outages need
	// a fresh, deliberate enable, so the switch cannot be forgotten.
	MaxDuration = 4 * time.Hour
)

// Errors returned by Enable and Disable, for errors.Is. The error text names
// the section or duration; these only classify it.
var (
	ErrUnknownSection = errors.New("unknown section")
	ErrSecureSection  = errors.New("section is failmode secure")
	ErrNoSafeSection  = errors.New("no failmode safe section")
	ErrDuration       = errors.New("duration out of range")
)

// Entry is the state of one server section.
type Entry struct {
	Server   string        `json:"server"`
	Failmode failmode.Mode `json:"failmode"`
	// Until is when primary-only mode ends; zero means it is off.
	// (omitzero, not omitempty: encoding/json never omits a zero time.Time
	// under omitempty.)
	Until time.Time `json:"until,omitzero"`
}

// Event is a change of a section's state, for logs and alerts.
type Event struct {
	Server  string
	Enabled bool
	Until   time.Time // zero when Enabled is false
	At      time.Time
	// Reason is "enabled by admin socket for 30m", "disabled by admin socket"
	// or "expired".
	Reason string
}

// Switch holds primary-only state for every server section. It is safe for
// concurrent use. The zero value is not usable; call New.
type Switch struct {
	// modes is replaced by SetSections (under mu); readers load it
	modes    atomic.Pointer[map[string]failmode.Mode]
	now      func() time.Time
	onChange func(Event)

	mu    sync.Mutex // serialises writers; readers use active
	until map[string]time.Time
	// changed is when each section's state was last set, here or on
	// another instance (shared.go): a fleet's later change wins.
	changed map[string]time.Time
	// active is an immutable copy of until, replaced on every change, so the
	// per-bind Active check takes no lock.
	active atomic.Pointer[map[string]time.Time]
	// emit keeps onChange calls in the order the changes happened. It is taken
	// before mu is released and held only while calling onChange, so onChange
	// runs outside mu (and may call Status, Active or Until, but not Enable or
	// Disable).
	emit sync.Mutex
	wake chan struct{} // re-arms Run's timer; capacity 1
}

// New returns a switch for the given sections (name → failmode), all off.
// Any mode other than failmode.Safe is treated as failmode.Secure. now may be
// nil (time.Now). onChange may be nil; it is called outside the switch's
// state lock, one event at a time in order, and must not block or call
// Enable or Disable.
func New(sections map[string]failmode.Mode, now func() time.Time, onChange func(Event)) *Switch {
	if now == nil {
		now = time.Now
	}
	modes := make(map[string]failmode.Mode, len(sections))
	for name, m := range sections {
		if m != failmode.Safe {
			m = failmode.Secure
		}
		modes[name] = m
	}
	s := &Switch{
		now:      now,
		onChange: onChange,
		until:    map[string]time.Time{},
		changed:  map[string]time.Time{},
		wake:     make(chan struct{}, 1),
	}
	s.active.Store(&map[string]time.Time{})
	s.modes.Store(&modes)
	return s
}

// SetSections replaces the sections (a configuration reload). A section
// that is gone, or is no longer failmode safe, is switched off (its Event
// says why); every other section keeps its state. Like Enable, it must not
// be called from onChange.
func (s *Switch) SetSections(sections map[string]failmode.Mode) {
	modes := make(map[string]failmode.Mode, len(sections))
	for name, m := range sections {
		if m != failmode.Safe {
			m = failmode.Secure
		}
		modes[name] = m
	}
	s.mu.Lock()
	now := s.now()
	events := s.reapLocked(now)
	s.modes.Store(&modes)
	for _, n := range slices.Sorted(maps.Keys(s.until)) {
		m, ok := modes[n]
		switch {
		case !ok:
			events = append(events, Event{Server: n, At: now, Reason: "section removed by a configuration reload"})
		case m != failmode.Safe:
			events = append(events, Event{Server: n, At: now, Reason: "section is failmode " + string(m) + " after a configuration reload"})
		default:
			continue
		}
		delete(s.until, n)
		s.changed[n] = stamp(now)
	}
	s.publishAndEmit(events)
}

// Enable switches primary-only mode on for the named sections until now+d,
// replacing any earlier expiry (so it can extend or shorten). No names means
// every safe section. It is all-or-nothing: if any name is unknown or secure,
// or d is not in (0, MaxDuration], nothing changes and the error lists every
// problem. It returns the named sections' entries, sorted by name.
func (s *Switch) Enable(servers []string, d time.Duration) ([]Entry, error) {
	if d <= 0 {
		return nil, ruleError{ErrDuration, fmt.Sprintf("refused: duration must be positive, got %s", human.Duration(d))}
	}
	if d > MaxDuration {
		return nil, ruleError{ErrDuration, fmt.Sprintf("refused: %s exceeds the %s maximum", human.Duration(d), human.Duration(MaxDuration))}
	}
	names, err := s.resolve(servers, true)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, ruleError{ErrNoSafeSection, "refused: no section is failmode safe; primary-only mode applies only to safe sections"}
	}

	s.mu.Lock()
	now := s.now()
	events := s.reapLocked(now)
	until := now.Add(d)
	reason := "enabled by admin socket for " + human.Duration(d)
	for _, n := range names {
		if (*s.modes.Load())[n] != failmode.Safe {
			continue // SetSections took it away since resolve
		}
		s.until[n] = until
		s.changed[n] = stamp(now)
		events = append(events, Event{Server: n, Enabled: true, Until: until, At: now, Reason: reason})
	}
	entries := s.entriesLocked(names, now)
	s.publishAndEmit(events)
	return entries, nil
}

// Disable switches primary-only mode off for the named sections; no names
// means every section. Naming a secure section is allowed (it is already
// off). An unknown name is an error and nothing changes. It returns the named
// sections' entries (all of them if none were named), sorted by name.
func (s *Switch) Disable(servers []string) ([]Entry, error) {
	names, err := s.resolve(servers, false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	now := s.now()
	events := s.reapLocked(now)
	for _, n := range names {
		// Stamped even when off here: another instance of a fleet may
		// have it on (shared.go).
		s.changed[n] = stamp(now)
		if _, on := s.until[n]; on {
			delete(s.until, n)
			events = append(events, Event{Server: n, At: now, Reason: "disabled by admin socket"})
		}
	}
	entries := s.entriesLocked(names, now)
	s.publishAndEmit(events)
	return entries, nil
}

// Status returns every section, sorted by name. Sections whose expiry has
// passed are shown as off even if Run has not reaped them yet.
func (s *Switch) Status() []Entry {
	now := s.now()
	m := *s.active.Load()
	modes := *s.modes.Load()
	out := make([]Entry, 0, len(modes))
	for _, n := range slices.Sorted(maps.Keys(modes)) {
		out = append(out, entry(n, modes[n], m[n], now))
	}
	return out
}

// Active reports whether primary-only mode is on for server right now. It is
// called on every bind: one atomic load, one map lookup and a clock read. It
// is false for unknown and secure sections and from the instant the expiry
// passes.
func (s *Switch) Active(server string) bool {
	u, ok := (*s.active.Load())[server]
	return ok && s.now().Before(u)
}

// Until returns when primary-only mode ends for server, or the zero time if
// it is off.
func (s *Switch) Until(server string) time.Time {
	u, ok := (*s.active.Load())[server]
	if !ok || !s.now().Before(u) {
		return time.Time{}
	}
	return u
}

// Run reports expiries: when a section's time is up it is switched off and
// onChange receives an Event with Reason "expired", once. It keeps one timer,
// on the earliest expiry, re-armed after every change, and returns when ctx
// is done. Run one per Switch. Without Run, expired sections are still inactive; their "expired"
// events are then sent by the next Enable or Disable.
func (s *Switch) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		next, ok := s.earliestLocked()
		s.mu.Unlock()
		if ok {
			timer.Reset(max(next.Sub(s.now()), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
			s.mu.Lock()
			events := s.reapLocked(s.now())
			s.publishAndEmit(events)
		}
	}
}

// resolve checks the names and returns them deduplicated and sorted. With no
// names it returns every safe section (forEnable) or every section.
func (s *Switch) resolve(servers []string, forEnable bool) ([]string, error) {
	modes := *s.modes.Load()
	if len(servers) == 0 {
		var names []string
		for n, m := range modes {
			if !forEnable || m == failmode.Safe {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		return names, nil
	}
	var errs []error
	names := slices.Compact(slices.Sorted(slices.Values(servers)))
	for _, n := range names {
		m, ok := modes[n]
		switch {
		case !ok:
			errs = append(errs, ruleError{ErrUnknownSection, fmt.Sprintf("unknown section %q; sections are %s", n, s.sectionList())})
		case forEnable && m != failmode.Safe:
			errs = append(errs, ruleError{ErrSecureSection, fmt.Sprintf("section %s is failmode %s; primary-only mode applies only to safe sections", n, m)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return names, nil
}

func (s *Switch) sectionList() string {
	modes := *s.modes.Load()
	if len(modes) == 0 {
		return "(none)"
	}
	return strings.Join(slices.Sorted(maps.Keys(modes)), ", ")
}

// reapLocked removes expired entries and returns their "expired" events.
func (s *Switch) reapLocked(now time.Time) []Event {
	var events []Event
	for _, n := range slices.Sorted(maps.Keys(s.until)) {
		if u := s.until[n]; !now.Before(u) {
			delete(s.until, n)
			events = append(events, Event{Server: n, At: now, Reason: "expired"})
		}
	}
	return events
}

func (s *Switch) earliestLocked() (time.Time, bool) {
	var next time.Time
	for _, u := range s.until {
		if next.IsZero() || u.Before(next) {
			next = u
		}
	}
	return next, !next.IsZero()
}

func (s *Switch) entriesLocked(names []string, now time.Time) []Entry {
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		out = append(out, entry(n, (*s.modes.Load())[n], s.until[n], now))
	}
	return out
}

// publishAndEmit must be called with mu held; it releases mu. If anything
// changed it publishes the new state for readers, wakes Run, and sends the
// events in order, outside mu.
func (s *Switch) publishAndEmit(events []Event) {
	if len(events) == 0 {
		s.mu.Unlock()
		return
	}
	snap := maps.Clone(s.until)
	s.active.Store(&snap)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.emit.Lock()
	s.mu.Unlock()
	defer s.emit.Unlock()
	if s.onChange != nil {
		for _, e := range events {
			s.onChange(e)
		}
	}
}

func entry(name string, mode failmode.Mode, until, now time.Time) Entry {
	e := Entry{Server: name, Failmode: mode}
	if !until.IsZero() && now.Before(until) {
		e.Until = until
	}
	return e
}

// ruleError is a refusal with an exact, operator-facing message and a
// sentinel for errors.Is.
type ruleError struct {
	kind error
	msg  string
}

func (e ruleError) Error() string { return e.msg }
func (e ruleError) Unwrap() error { return e.kind }
