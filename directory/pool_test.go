package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestPoolDoesNotWaitOnAHungDirectory: while max_connections password
// checks hang on a paused directory, the next check is told busy at once
// rather than queued behind them; when the directory answers again the
// refused checks give their connections back, for reuse.
func TestPoolDoesNotWaitOnAHungDirectory(t *testing.T) {
	dir := slapdtest.Start(t)
	d := newTestClient(t, Config{URLs: []string{dir.URL}, Timeout: 20 * time.Second, MaxConnections: 2})
	ctx := context.Background()
	alice := person(t, "alice")

	// Warm the pool with one refused bind, so the paused directory holds a
	// connection it already accepted.
	warm, err := d.CheckConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bind(ctx, warm.Conn, alice.DN(), "wrong", nil); !isCode(err, 49) {
		t.Fatalf("wrong password: %v", err)
	}
	warm.Release()
	if len(d.pool.idle) != 1 || len(d.pool.slots) != 0 {
		t.Fatalf("after a refused bind: %d idle, %d lent; want 1, 0", len(d.pool.idle), len(d.pool.slots))
	}

	dir.Pause(t)
	hung := make(chan error, 2)
	for range 2 {
		lease, err := d.CheckConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := d.Bind(ctx, lease.Conn, alice.DN(), "wrong", nil)
			lease.Release()
			hung <- err
		}()
	}
	start := time.Now()
	if _, err := d.CheckConn(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("third check with the pool full: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("busy took %v: a full pool must answer at once", waited)
	}
	dir.Resume(t)
	for range 2 {
		if err := <-hung; !isCode(err, 49) {
			t.Fatalf("hung check: %v", err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return len(d.pool.slots) == 0 }, "the pool to be returned")
	if n := len(d.pool.idle); n != 2 {
		t.Fatalf("%d idle connections after two refused binds, want 2 (reused)", n)
	}
}

// TestIdleConnectionsBounded: however many connections come back at once
// (clients that bound and left after a burst), the pool keeps MaxIdle of
// them open and closes the rest; a closed pool keeps none.
func TestIdleConnectionsBounded(t *testing.T) {
	dir := slapdtest.Start(t)
	d := newTestClient(t, Config{URLs: []string{dir.URL}, MaxConnections: 8, MaxIdle: 3})
	ctx := context.Background()
	var conns []*ldap.Conn
	for range 6 {
		c, err := d.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		d.Recycle(c)
	}
	kept := 0
	for _, c := range conns {
		if !c.IsClosing() {
			kept++
		}
	}
	if kept != 3 || len(d.pool.idle) != 3 {
		t.Fatalf("%d of 6 recycled connections kept open, %d idle; want MaxIdle, 3", kept, len(d.pool.idle))
	}
	d.Close()
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Recycle(c)
	if !c.IsClosing() || len(d.pool.idle) != 0 {
		t.Fatal("a closed pool kept a connection")
	}
}
