package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/redistest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// impl is one Store implementation under the contract: a fresh, empty
// store per test.
type impl struct {
	name string
	open func(t *testing.T) Store
}

// impls are the implementations, for top (whose end stops the
// redis-server they share; each test gets a key prefix of its own).
func impls(top *testing.T) []impl {
	var srv *redistest.Server
	return []impl{
		{"memory", func(t *testing.T) Store {
			l, err := Open(Options{MaxKeys: 1000})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}},
		{"redis", func(t *testing.T) Store {
			if srv == nil {
				srv = redistest.Start(top)
			}
			return openTestRedis(t, srv.URL)
		}},
	}
}

func openTestRedis(t *testing.T, url string) *Redis {
	t.Helper()
	r, err := OpenRedis(RedisOptions{URL: url, Timeout: 500 * time.Millisecond, Prefix: "test:" + t.Name() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestStoreContract runs one table against every implementation: the
// policies must not be able to tell them apart.
func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	two := Budget{N: 2, Window: 10 * time.Minute}
	type check func(t *testing.T, s Store)
	cases := []struct {
		name string
		run  check
	}{
		{"a budget allows N, then refuses, and Spent says so", func(t *testing.T, s Store) {
			if spent, err := s.Spent(ctx, "u", two); err != nil || spent {
				t.Fatalf("fresh key: spent %v, %v", spent, err)
			}
			for i, want := range []bool{true, true, false, false} {
				if ok, err := s.Spend(ctx, "u", two); err != nil || ok != want {
					t.Fatalf("spend %d: %v, %v; want %v", i, ok, err, want)
				}
			}
			if spent, err := s.Spent(ctx, "u", two); err != nil || !spent {
				t.Fatalf("after N: spent %v, %v", spent, err)
			}
			if ok, _ := s.Spend(ctx, "other", two); !ok {
				t.Fatal("another key shares the budget")
			}
		}},
		{"Reset gives the budget back", func(t *testing.T, s Store) {
			s.Spend(ctx, "u", two)
			s.Spend(ctx, "u", two)
			if err := s.Reset(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			if spent, _ := s.Spent(ctx, "u", two); spent {
				t.Fatal("spent after reset")
			}
			if err := s.Reset(ctx, "never-seen"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a budget refills one every Window/N", func(t *testing.T, s Store) {
			fast := Budget{N: 2, Window: 600 * time.Millisecond}
			s.Spend(ctx, "u", fast)
			s.Spend(ctx, "u", fast)
			if ok, _ := s.Spend(ctx, "u", fast); ok {
				t.Fatal("third spend allowed at once")
			}
			start := time.Now()
			testutil.WaitFor(t, 3*time.Second, func() bool { ok, _ := s.Spend(ctx, "u", fast); return ok }, "a refilled event")
			if d := time.Since(start); d < 200*time.Millisecond {
				t.Fatalf("refilled after %s; want about 300ms", d)
			}
		}},
		{"a block refuses whatever the budget holds, and Reset lifts it", func(t *testing.T, s Store) {
			if err := s.Block(ctx, "u", time.Minute); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Spend(ctx, "u", two); ok {
				t.Fatal("spend allowed while blocked")
			}
			if spent, _ := s.Spent(ctx, "u", two); !spent {
				t.Fatal("not spent while blocked")
			}
			if err := s.Reset(ctx, "u"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Spend(ctx, "u", two); !ok {
				t.Fatal("refused after reset")
			}
		}},
		{"a block ends", func(t *testing.T, s Store) {
			if err := s.Block(ctx, "u", 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Spend(ctx, "u", two); ok {
				t.Fatal("allowed while blocked")
			}
			testutil.WaitFor(t, 3*time.Second, func() bool { ok, _ := s.Spend(ctx, "u", two); return ok }, "the block to end")
		}},
		{"the cache remembers per group and key, and Forget drops a group", func(t *testing.T, s Store) {
			for _, e := range [][2]string{{"g1", "a"}, {"g1", "b"}, {"g2", "a"}} {
				if err := s.Remember(ctx, e[0], e[1], time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range []struct {
				g, k string
				want bool
			}{{"g1", "a", true}, {"g1", "b", true}, {"g2", "a", true}, {"g2", "b", false}, {"g3", "a", false}} {
				if ok, err := s.Recall(ctx, c.g, c.k); err != nil || ok != c.want {
					t.Fatalf("recall %s/%s: %v, %v; want %v", c.g, c.k, ok, err, c.want)
				}
			}
			if err := s.Forget(ctx, "g1"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Recall(ctx, "g1", "a"); ok {
				t.Fatal("g1/a recalled after Forget")
			}
			if ok, _ := s.Recall(ctx, "g2", "a"); !ok {
				t.Fatal("Forget of g1 dropped g2")
			}
			if err := s.Remember(ctx, "g1", "a", time.Minute); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Recall(ctx, "g1", "a"); !ok {
				t.Fatal("not remembered again after Forget")
			}
		}},
		{"a cache entry expires with its ttl", func(t *testing.T, s Store) {
			if err := s.Remember(ctx, "g", "k", 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.Recall(ctx, "g", "k"); !ok {
				t.Fatal("not recalled within ttl")
			}
			testutil.WaitFor(t, 3*time.Second, func() bool { ok, _ := s.Recall(ctx, "g", "k"); return !ok }, "the entry to expire")
		}},
		{"UseOnce is first once", func(t *testing.T, s Store) {
			for i, want := range []bool{true, false, false} {
				if ok, err := s.UseOnce(ctx, "breakglass/x"); err != nil || ok != want {
					t.Fatalf("use %d: %v, %v; want %v", i, ok, err, want)
				}
			}
			if ok, _ := s.UseOnce(ctx, "breakglass/y"); !ok {
				t.Fatal("another key refused")
			}
		}},
		{"concurrent spends take no more than the budget", func(t *testing.T, s Store) {
			five := Budget{N: 5, Window: time.Hour}
			var got atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if ok, err := s.Spend(ctx, "c", five); err != nil {
						t.Error(err)
					} else if ok {
						got.Add(1)
					}
				})
			}
			wg.Wait()
			if got.Load() != 5 {
				t.Fatalf("%d spends allowed, want 5", got.Load())
			}
		}},
		{"concurrent uses: exactly one is first", func(t *testing.T, s Store) {
			var firsts atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					if ok, err := s.UseOnce(ctx, "k"); err != nil {
						t.Error(err)
					} else if ok {
						firsts.Add(1)
					}
				})
			}
			wg.Wait()
			if firsts.Load() != 1 {
				t.Fatalf("%d firsts, want 1", firsts.Load())
			}
		}},
		{"bad arguments are errors", func(t *testing.T, s Store) {
			if _, err := s.Spend(ctx, "u", Budget{N: 0, Window: time.Minute}); err == nil {
				t.Fatal("N 0 accepted")
			}
			if err := s.Block(ctx, "u", 0); err == nil {
				t.Fatal("a block of 0 accepted")
			}
			if err := s.Remember(ctx, "g", "k", -time.Second); err == nil {
				t.Fatal("a negative ttl accepted")
			}
		}},
		{"a cancelled context is an error, and not unavailability", func(t *testing.T, s Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Spend(cctx, "u", two)
			if err == nil || !errors.Is(err, context.Canceled) || IsUnavailable(err) {
				t.Fatalf("spend: %v; want context.Canceled, not unavailable", err)
			}
			if ok, err := s.UseOnce(cctx, "k"); ok || err == nil {
				t.Fatalf("use once: %v, %v", ok, err)
			}
			if ok, _ := s.UseOnce(ctx, "k"); !ok {
				t.Fatal("the cancelled use was recorded")
			}
		}},
	}
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, im.open(t)) })
			}
		})
	}
}
