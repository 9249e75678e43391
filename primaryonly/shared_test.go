package primaryonly

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// memShared is a fleet's record in memory, with the compare-by-Changed
// rule of the real one (store.Redis.WriteStamped).
type memShared struct {
	mu sync.Mutex
	m  map[string]State
}

func (m *memShared) Read(_ context.Context, servers []string) (map[string]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]State{}
	for _, n := range servers {
		if st, ok := m.m[n]; ok {
			out[n] = st
		}
	}
	return out, nil
}

func (m *memShared) Write(_ context.Context, server string, st State, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.m[server]; ok && !st.Changed.After(cur.Changed) {
		return nil
	}
	m.m[server] = st
	return nil
}

// TestSyncTwoSwitches: an enable on one switch reaches the other with
// the same expiry and an event there; a disable too; a secure section
// and a too-long expiry are refused on the instance that applies them.
func TestSyncTwoSwitches(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	sh := &memShared{m: map[string]State{}}
	var bEvents []Event
	a := New(map[string]failmode.Mode{"wiki": failmode.Safe, "vpn": failmode.Secure}, now, nil)
	b := New(map[string]failmode.Mode{"wiki": failmode.Safe, "vpn": failmode.Secure}, now, func(e Event) { bEvents = append(bEvents, e) })
	var errs []error
	onErr := func(err error) { errs = append(errs, err) }

	if _, err := a.Enable([]string{"wiki"}, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Second)
	a.SyncOnce(ctx, sh, time.Minute, onErr)
	b.SyncOnce(ctx, sh, time.Minute, onErr)
	if !b.Active("wiki") || !b.Until("wiki").Equal(a.Until("wiki")) {
		t.Fatalf("b: active %v until %v; a until %v", b.Active("wiki"), b.Until("wiki"), a.Until("wiki"))
	}
	if len(bEvents) != 1 || !bEvents[0].Enabled || bEvents[0].Reason != "enabled on another instance for 29m59s" {
		t.Fatalf("b's events %+v", bEvents)
	}
	// Nothing changes when nothing changed.
	a.SyncOnce(ctx, sh, time.Minute, onErr)
	b.SyncOnce(ctx, sh, time.Minute, onErr)
	if len(bEvents) != 1 || len(errs) != 0 {
		t.Fatalf("events %+v, errors %v after a quiet round", bEvents, errs)
	}

	clock = clock.Add(time.Second)
	if _, err := b.Disable(nil); err != nil {
		t.Fatal(err)
	}
	b.SyncOnce(ctx, sh, time.Minute, onErr)
	a.SyncOnce(ctx, sh, time.Minute, onErr)
	if a.Active("wiki") {
		t.Fatal("a disable on b did not reach a")
	}

	clock = clock.Add(time.Second)
	later := State{Until: clock.Add(time.Hour), Changed: clock}
	if _, err := a.Apply("vpn", later, time.Minute); !errors.Is(err, ErrSecureSection) || a.Active("vpn") {
		t.Fatalf("secure section: %v, active %v", err, a.Active("vpn"))
	}
	tooLong := State{Until: clock.Add(MaxDuration + 2*time.Minute), Changed: clock}
	if _, err := a.Apply("wiki", tooLong, time.Minute); !errors.Is(err, ErrDuration) || a.Active("wiki") {
		t.Fatalf("too long: %v, active %v", err, a.Active("wiki"))
	}
	// A state already seen (refused) is not tried again.
	if changed, err := a.Apply("wiki", tooLong, time.Minute); changed || err != nil {
		t.Fatalf("the same state again: %v, %v", changed, err)
	}
}
