package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for the memory under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestMemory(t *testing.T, maxKeys int) (*memory, *clock) {
	t.Helper()
	m, err := newMemory(maxKeys)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	m.now = c.now
	return m, c
}

// step is one operation on the memory and what it must answer.
type step struct {
	op      string // spend, spent, block, reset, remember, recall, forget, wait
	key     string
	group   string
	d       time.Duration // block, remember's ttl, wait
	want    bool          // spend, spent, recall
	wantErr bool
}

var threePer10m = Budget{N: 3, Window: 10 * time.Minute}

func TestMemory(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"a budget allows N, then refuses", []step{
			{op: "spent", key: "u", want: false},
			{op: "spend", key: "u", want: true},
			{op: "spend", key: "u", want: true},
			{op: "spent", key: "u", want: false},
			{op: "spend", key: "u", want: true},
			{op: "spent", key: "u", want: true},
			{op: "spend", key: "u", want: false},
			{op: "spend", key: "u", want: false},
		}},
		{"keys are independent", []step{
			{op: "spend", key: "a", want: true}, {op: "spend", key: "a", want: true}, {op: "spend", key: "a", want: true},
			{op: "spend", key: "a", want: false},
			{op: "spend", key: "b", want: true},
		}},
		{"one event comes back every window/N", []step{
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
			{op: "wait", d: 3 * time.Minute},
			{op: "spend", key: "u", want: false},
			{op: "wait", d: time.Minute},
			{op: "spend", key: "u", want: true},
			{op: "spend", key: "u", want: false},
		}},
		{"a full window gives the whole budget back", []step{
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
			{op: "wait", d: 10 * time.Minute},
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
			{op: "spend", key: "u", want: false},
		}},
		{"spent takes nothing", []step{
			{op: "spent", key: "u"}, {op: "spent", key: "u"}, {op: "spent", key: "u"}, {op: "spent", key: "u"},
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
		}},
		{"a block refuses whatever the budget holds, until it ends", []step{
			{op: "block", key: "u", d: 10 * time.Minute},
			{op: "spent", key: "u", want: true},
			{op: "spend", key: "u", want: false},
			{op: "wait", d: 9 * time.Minute},
			{op: "spend", key: "u", want: false},
			{op: "wait", d: time.Minute},
			{op: "spend", key: "u", want: true},
		}},
		{"a shorter block does not shorten a longer one", []step{
			{op: "block", key: "u", d: 10 * time.Minute},
			{op: "block", key: "u", d: time.Minute},
			{op: "wait", d: 2 * time.Minute},
			{op: "spend", key: "u", want: false},
		}},
		{"reset forgets spending and blocks", []step{
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
			{op: "block", key: "u", d: time.Hour},
			{op: "reset", key: "u"},
			{op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true}, {op: "spend", key: "u", want: true},
			{op: "spend", key: "u", want: false},
		}},
		{"the cache remembers until the ttl ends", []step{
			{op: "recall", group: "g", key: "k", want: false},
			{op: "remember", group: "g", key: "k", d: time.Minute},
			{op: "recall", group: "g", key: "k", want: true},
			{op: "recall", group: "g", key: "other", want: false},
			{op: "recall", group: "other", key: "k", want: false},
			{op: "wait", d: 59 * time.Second},
			{op: "recall", group: "g", key: "k", want: true},
			{op: "wait", d: time.Second},
			{op: "recall", group: "g", key: "k", want: false},
		}},
		{"forget drops every key of the group and only those", []step{
			{op: "remember", group: "g", key: "a", d: time.Minute},
			{op: "remember", group: "g", key: "b", d: time.Minute},
			{op: "remember", group: "h", key: "a", d: time.Minute},
			{op: "forget", group: "g"},
			{op: "recall", group: "g", key: "a", want: false},
			{op: "recall", group: "g", key: "b", want: false},
			{op: "recall", group: "h", key: "a", want: true},
		}},
		{"group and key cannot run into each other", []step{
			{op: "remember", group: "ab", key: "c", d: time.Minute},
			{op: "recall", group: "a", key: "bc", want: false},
			{op: "forget", group: "a"},
			{op: "recall", group: "ab", key: "c", want: true},
		}},
		{"budgets and cache keys are apart", []step{
			{op: "remember", group: "u", key: "", d: time.Minute},
			{op: "spend", key: "u", want: true},
			{op: "reset", key: "u"},
			{op: "recall", group: "u", key: "", want: true},
		}},
		{"long keys are kept apart too", []step{
			{op: "spend", key: strings.Repeat("x", 1000) + "1", want: true},
			{op: "spend", key: strings.Repeat("x", 1000) + "1", want: true},
			{op: "spend", key: strings.Repeat("x", 1000) + "1", want: true},
			{op: "spend", key: strings.Repeat("x", 1000) + "1", want: false},
			{op: "spend", key: strings.Repeat("x", 1000) + "2", want: true},
		}},
		{"bad arguments are errors", []step{
			{op: "block", key: "u", d: 0, wantErr: true},
			{op: "remember", group: "g", key: "k", d: -time.Second, wantErr: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, c := newTestMemory(t, 100)
			ctx := context.Background()
			for i, s := range tt.steps {
				var got bool
				var err error
				switch s.op {
				case "spend":
					got, err = m.spend(ctx, s.key, threePer10m)
				case "spent":
					got, err = m.spent(ctx, s.key, threePer10m)
				case "block":
					err = m.block(ctx, s.key, s.d)
				case "reset":
					err = m.reset(ctx, s.key)
				case "remember":
					err = m.remember(ctx, s.group, s.key, s.d)
				case "recall":
					got, err = m.recall(ctx, s.group, s.key)
				case "forget":
					err = m.forget(ctx, s.group)
				case "wait":
					c.advance(s.d)
					continue
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d (%s %q): err = %v, want error %t", i, s.op, s.key, err, s.wantErr)
				}
				if got != s.want {
					t.Fatalf("step %d (%s %q%q): %t, want %t", i, s.op, s.group, s.key, got, s.want)
				}
			}
		})
	}
}

func TestMemoryBadBudget(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	for _, b := range []Budget{{N: 0, Window: time.Minute}, {N: 3, Window: 0}, {N: 5, Window: 4}} {
		if ok, err := m.spend(context.Background(), "u", b); ok || !errors.Is(err, errInvalid) {
			t.Errorf("spend with %+v = %t, %v; want false and errInvalid", b, ok, err)
		}
		// A budget that cannot be read counts as spent.
		if spent, err := m.spent(context.Background(), "u", b); !spent || !errors.Is(err, errInvalid) {
			t.Errorf("spent with %+v = %t, %v; want true and errInvalid", b, spent, err)
		}
	}
	if _, err := newMemory(0); !errors.Is(err, errInvalid) {
		t.Errorf("newMemory(0): %v, want errInvalid", err)
	}
}

// TestMemoryContext: a cancelled context is honoured by every call, and
// refuses rather than allows.
func TestMemoryContext(t *testing.T) {
	m, _ := newTestMemory(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := m.spend(ctx, "u", threePer10m); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("spend: %t, %v", ok, err)
	}
	if spent, err := m.spent(ctx, "u", threePer10m); !spent || !errors.Is(err, context.Canceled) {
		t.Errorf("spent: %t, %v", spent, err)
	}
	if ok, err := m.recall(ctx, "g", "k"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("recall: %t, %v", ok, err)
	}
	for name, err := range map[string]error{
		"block":    m.block(ctx, "u", time.Minute),
		"reset":    m.reset(ctx, "u"),
		"remember": m.remember(ctx, "g", "k", time.Minute),
		"forget":   m.forget(ctx, "g"),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
	if n := m.len(); n != 0 {
		t.Errorf("a cancelled call stored %d entries", n)
	}
}

// TestMemoryBoundUnderFlood: a flood of distinct keys of every kind never
// grows memory past MaxKeys, and the keys still in use survive it.
func TestMemoryBoundUnderFlood(t *testing.T) {
	const maxKeys = 100
	m, c := newTestMemory(t, maxKeys)
	ctx := context.Background()
	for range 3 {
		if ok, _ := m.spend(ctx, "victim", threePer10m); !ok {
			t.Fatal("victim's first spends refused")
		}
	}
	for i := range 20000 {
		var err error
		switch i % 3 {
		case 0:
			_, err = m.spend(ctx, fmt.Sprintf("addr-%d", i), threePer10m)
		case 1:
			err = m.block(ctx, fmt.Sprintf("user-%d", i), time.Hour)
		case 2:
			err = m.remember(ctx, fmt.Sprintf("dn-%d", i), "k", time.Hour)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			// The victim keeps trying: its counter is in use and stays.
			if ok, _ := m.spend(ctx, "victim", threePer10m); ok {
				t.Fatalf("after %d flood keys the victim's spent budget was forgotten", i)
			}
		}
		if n := m.len(); n > maxKeys {
			t.Fatalf("after %d flood keys memory holds %d entries, more than MaxKeys %d", i+1, n, maxKeys)
		}
		c.advance(time.Millisecond)
	}
	m.mu.Lock()
	lists, groups := m.lru.Len(), 0
	for _, g := range m.groups {
		groups += len(g)
	}
	m.mu.Unlock()
	if lists != m.len() || groups > maxKeys {
		t.Fatalf("indexes disagree: list %d, map %d, groups %d", lists, m.len(), groups)
	}
}

// TestMemorySweep: expired entries go without anyone asking for them.
func TestMemorySweep(t *testing.T) {
	m, c := newTestMemory(t, 1000)
	ctx := context.Background()
	for i := range 50 {
		_ = m.remember(ctx, fmt.Sprintf("g%d", i), "k", time.Minute)
		_, _ = m.spend(ctx, fmt.Sprintf("u%d", i), threePer10m)
		_ = m.block(ctx, fmt.Sprintf("b%d", i), 2*time.Minute)
	}
	_ = m.remember(ctx, "long", "k", time.Hour)
	if n := m.len(); n != 151 {
		t.Fatalf("%d entries, want 151", n)
	}
	// Ten minutes on: caches and blocks expired, budgets full again.
	c.advance(10 * time.Minute)
	if _, err := m.recall(ctx, "long", "k"); err != nil {
		t.Fatal(err)
	}
	if n := m.len(); n != 1 {
		t.Fatalf("after the sweep %d entries remain, want 1 (the unexpired cache entry)", n)
	}
}

// TestMemoryConcurrent: under -race, concurrent spenders of one budget
// never get more than N between them.
func TestMemoryConcurrent(t *testing.T) {
	m, err := newMemory(1000)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := Budget{N: 5, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := range 50 {
		wg.Go(func() {
			if ok, _ := m.spend(ctx, "shared", b); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
			_ = m.remember(ctx, "g", fmt.Sprint(i), time.Minute)
			_, _ = m.recall(ctx, "g", fmt.Sprint(i-1))
			_ = m.forget(ctx, "g")
			_, _ = m.spent(ctx, fmt.Sprint(i), b)
		})
	}
	wg.Wait()
	if allowed != b.N {
		t.Fatalf("%d concurrent spends allowed, want %d", allowed, b.N)
	}
}

// TestLocalStore: Local hands budgets and the cache to memory.
func TestLocalStore(t *testing.T) {
	l, err := Open(Options{MaxKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if ok, err := l.Spend(ctx, "k", Budget{N: 1, Window: time.Minute}); !ok || err != nil {
		t.Fatalf("Spend: %t, %v", ok, err)
	}
	if spent, err := l.Spent(ctx, "k", Budget{N: 1, Window: time.Minute}); !spent || err != nil {
		t.Fatalf("Spent: %t, %v", spent, err)
	}
	if err := l.Remember(ctx, "g", "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Recall(ctx, "g", "k"); !ok || err != nil {
		t.Fatalf("Recall: %t, %v", ok, err)
	}
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without MaxKeys succeeded")
	}
}
