package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/redistest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestFallbackRedisOutage: with Redis stopped, budgets fall back to the
// local store, the cache misses, a Forget is kept and made on the first
// Recall once Redis is back, UseOnce fails closed; each change of Redis's
// health is reported once; with Redis back, calls go to it again.
func TestFallbackRedisOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := redistest.Start(t)
	r := openTestRedis(t, srv.URL)
	local, err := Open(Options{MaxKeys: 100})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []HealthChange
	h := NewHealth(r.Ping, 50*time.Millisecond, func(c HealthChange) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})
	go h.Run(ctx)
	f := NewFallback(r, local, h, time.Minute)
	got := func() []HealthChange { mu.Lock(); defer mu.Unlock(); return append([]HealthChange(nil), changes...) }
	two := Budget{N: 2, Window: time.Hour}

	f.Spend(ctx, "u", two)
	f.Spend(ctx, "u", two)
	if ok, _ := f.Spend(ctx, "u", two); ok {
		t.Fatal("a third spend allowed with Redis up")
	}
	if err := f.Remember(ctx, "g", "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Recall(ctx, "g", "k"); !ok {
		t.Fatal("not recalled with Redis up")
	}
	if ok, err := f.UseOnce(ctx, "code"); err != nil || !ok {
		t.Fatalf("use with Redis up: %v, %v", ok, err)
	}

	srv.Stop()
	// The budget falls back to this instance's own (fresh) count.
	if ok, err := f.Spend(ctx, "u", two); err != nil || !ok {
		t.Fatalf("spend with Redis down: %v, %v; want the local budget", ok, err)
	}
	if h.Up() {
		t.Fatal("health still up after a failed call")
	}
	if ok, err := f.Recall(ctx, "g", "k"); err != nil || ok {
		t.Fatalf("recall with Redis down: %v, %v; want a miss", ok, err)
	}
	if ok, err := f.UseOnce(ctx, "other-code"); err == nil || ok || !IsUnavailable(err) {
		t.Fatalf("use with Redis down: %v, %v; want refused with an unavailable error", ok, err)
	}
	if err := f.Forget(ctx, "g"); err != nil {
		t.Fatalf("forget with Redis down: %v", err)
	}
	if problem, _ := h.Problem(); problem == "" {
		t.Fatal("no problem reported while down")
	}

	srv.Start()
	testutil.WaitFor(t, 5*time.Second, h.Up, "the probe to find Redis back")
	// Redis restarted empty here (no persistence): Remember again to see
	// that the Forget kept while down is made before any recall.
	if err := r.Remember(ctx, "g", "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Recall(ctx, "g", "k"); ok {
		t.Fatal("an entry of a group forgotten while Redis was down was recalled")
	}
	if ok, _ := r.Recall(ctx, "g", "k"); ok {
		t.Fatal("the kept Forget was not made in Redis")
	}
	if err := f.Remember(ctx, "g", "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Recall(ctx, "g", "k"); !ok {
		t.Fatal("not recalled once Redis is back")
	}
	// A use this instance made stays refused here though Redis lost it.
	if ok, err := f.UseOnce(ctx, "code"); err != nil || ok {
		t.Fatalf("reuse after Redis lost it: %v, %v; want refused by the local record", ok, err)
	}
	ch := got()
	if len(ch) != 2 || ch[0].Up || ch[0].Err == nil || !ch[1].Up {
		t.Fatalf("health changes %+v; want one down, one up", ch)
	}
}
