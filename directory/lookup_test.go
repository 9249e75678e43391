package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

// TestLookupPoolBounds: searches spread over the least busy connection,
// never more than perConn on one; past size×perConn a lookup waits, and
// is told busy when no place frees within the wait.
func TestLookupPoolBounds(t *testing.T) {
	p := newLookupPool(2, 3)
	ctx := context.Background()
	var held []*lookupSlot
	for range 6 {
		s, err := p.acquire(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
	}
	for i, s := range p.conns {
		if s.inFlight != 3 {
			t.Fatalf("slot %d has %d in flight, want 3 on each", i, s.inFlight)
		}
	}
	if _, err := p.acquire(ctx, 20*time.Millisecond); !errors.Is(err, ErrLookupBusy) {
		t.Fatalf("7th search on a full pool: %v, want ErrLookupBusy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.acquire(cctx, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v, want context.Canceled", err)
	}
	got := make(chan *lookupSlot)
	go func() {
		s, err := p.acquire(ctx, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	p.release(held[0])
	if s := <-got; s != held[0] {
		t.Fatal("the waiting search did not take the place freed")
	}
}

// TestLookupsWithinTheDirectorysPendingLimit: a directory closes a
// connection with too many requests waiting on it (slapd past
// conn_max_pending_auth once its threads are busy), failing every lookup
// on it. Bounded in flight per connection, a burst of lookups far larger
// than that limit all get their answer. The premise is checked too: one
// connection with no bound (what ldapgate had) loses lookups to it.
func TestLookupsWithinTheDirectorysPendingLimit(t *testing.T) {
	dir := slapdtest.Start(t, slapdtest.WithGlobal("threads 2", "conn_max_pending_auth 4"))
	for _, tc := range []struct {
		conns, inFlight int
		fails           bool
	}{{4, 4, false}, {1, 1000, true}} {
		t.Run(fmt.Sprintf("%d×%d", tc.conns, tc.inFlight), func(t *testing.T) {
			d := newTestClient(t, Config{URLs: []string{dir.URL}, BindDN: lookupDN(), BindPassword: lookupPassword(),
				LookupConnections: tc.conns, LookupInFlight: tc.inFlight})
			const burst = 400
			var wg sync.WaitGroup
			errs := make(chan error, burst)
			for i := range burst {
				name := []string{"alice", "bob", "carol", "dave"}[i%4]
				wg.Go(func() {
					if _, err := d.FindUser(context.Background(), nil, name); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			n := 0
			var first error
			for err := range errs {
				if n == 0 {
					first = err
				}
				n++
			}
			switch {
			case tc.fails && n == 0:
				t.Fatalf("premise: one unbounded connection lost no lookup; the directory's limit was not reached")
			case tc.fails:
				t.Logf("one unbounded connection: %d of %d lookups failed, e.g. %v", n, burst, first)
			case n > 0:
				t.Fatalf("%d of %d lookups failed, e.g. %v", n, burst, first)
			}
		})
	}
}
