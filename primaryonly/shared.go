package primaryonly

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

// State is a section's switch as a fleet shares it: Until (zero: off)
// and Changed, when it was set; a later Changed wins.
type State struct {
	Until   time.Time
	Changed time.Time
}

// Shared is the record a fleet of instances shares (the Redis state
// store): every instance publishes the changes made on it and applies
// those made on the others.
type Shared interface {
	// Read returns the recorded state of each section that has one.
	Read(ctx context.Context, servers []string) (map[string]State, error)
	// Write records st for ttl, unless a later change is recorded.
	Write(ctx context.Context, server string, st State, ttl time.Duration) error
}

// stamp is a change's time as a fleet records it (milliseconds), so that
// a change read back compares equal to the one written.
func stamp(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()) }

// states returns every section's state and when it was set.
func (s *Switch) states() map[string]State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := map[string]State{}
	for n := range *s.modes.Load() {
		st := State{Changed: s.changed[n]}
		if u, ok := s.until[n]; ok && now.Before(u) {
			st.Until = u
		}
		out[n] = st
	}
	return out
}

// Apply sets server's state to st, changed on another instance, when st
// is later than what this instance has. The rules hold here too: an
// unknown or secure section is not switched on, nor one whose expiry is
// further than MaxDuration (plus skew, for the instances' clocks) from
// now; a refused state is still taken as seen, so it is refused once.
// It reports whether the state changed; an Event says so as for a local
// change.
func (s *Switch) Apply(server string, st State, skew time.Duration) (bool, error) {
	s.mu.Lock()
	now := s.now()
	events := s.reapLocked(now)
	if !st.Changed.After(s.changed[server]) {
		s.publishAndEmit(events)
		return false, nil
	}
	s.changed[server] = st.Changed
	mode, known := (*s.modes.Load())[server]
	var err error
	changed := false
	switch {
	case st.Until.IsZero() || !now.Before(st.Until):
		if _, on := s.until[server]; on {
			delete(s.until, server)
			changed = true
			events = append(events, Event{Server: server, At: now, Reason: "disabled on another instance"})
		}
	case !known:
		err = ruleError{ErrUnknownSection, fmt.Sprintf("primary-only mode of another instance refused: unknown section %q", server)}
	case mode != failmode.Safe:
		err = ruleError{ErrSecureSection, fmt.Sprintf("primary-only mode of another instance refused: section %s is failmode %s here", server, mode)}
	case st.Until.Sub(now) > MaxDuration+skew:
		err = ruleError{ErrDuration, fmt.Sprintf("primary-only mode of another instance refused on %s: it ends in %s, beyond the %s maximum",
			server, human.Duration(st.Until.Sub(now).Round(time.Second)), human.Duration(MaxDuration))}
	case !s.until[server].Equal(st.Until):
		s.until[server] = st.Until
		changed = true
		events = append(events, Event{Server: server, Enabled: true, Until: st.Until, At: now,
			Reason: "enabled on another instance for " + human.Duration(st.Until.Sub(now).Round(time.Second))})
	}
	s.publishAndEmit(events)
	return changed, err
}

// Sync keeps the switch and a fleet's shared record in step, every
// `every` until ctx is done: a change recorded later than this
// instance's state is applied (Apply), and a change made here later than
// the record is written (on for the time it has left, off for
// MaxDuration, so that every instance sees it). onErr hears of a failed
// read or write and of a refused state; it must not block.
func (s *Switch) Sync(ctx context.Context, sh Shared, every, skew time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.SyncOnce(ctx, sh, skew, onErr)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SyncOnce is one round of Sync.
func (s *Switch) SyncOnce(ctx context.Context, sh Shared, skew time.Duration, onErr func(error)) {
	local := s.states()
	names := slices.Sorted(maps.Keys(local))
	remote, err := sh.Read(ctx, names)
	if err != nil {
		onErr(err)
		return
	}
	now := s.now()
	for _, n := range names {
		l, r := local[n], remote[n]
		switch {
		case r.Changed.After(l.Changed):
			if _, err := s.Apply(n, r, skew); err != nil {
				onErr(err)
			}
		case l.Changed.After(r.Changed):
			ttl := MaxDuration - now.Sub(l.Changed)
			if !l.Until.IsZero() {
				ttl = l.Until.Sub(now)
			}
			if ttl <= 0 {
				continue
			}
			if err := sh.Write(ctx, n, l, ttl); err != nil {
				onErr(err)
				return
			}
		}
	}
}
