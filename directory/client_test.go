package directory

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestLookupHonoursContext: a client that hangs up ends its lookup on a
// directory that stopped answering, at once rather than after the
// directory timeout, and its cancellation does not mark the directory
// down (our own fault says nothing about the directory).
func TestLookupHonoursContext(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleClient(t, time.Minute, lookupPassword(), dir.URL)
	if _, err := d.FindUser(context.Background(), nil, "alice"); err != nil {
		t.Fatal(err) // the lookup connection is open and bound
	}
	dir.Pause(t)
	defer dir.Resume(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := d.FindUser(ctx, nil, "bob"); done <- err }()
	time.AfterFunc(100*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled lookup: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lookup ignored its context (directory timeout is 1m)")
	}
	if !d.Up() {
		t.Fatal("a cancelled lookup marked the directory down")
	}
}

// TestProbeReportsTheOneAnswer: Probe pings on its interval and reports
// Up, flagging changes: down when slapd stops, up again when it returns;
// after runs with every probe.
func TestProbeReportsTheOneAnswer(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleClient(t, time.Second, lookupPassword(), dir.URL)
	type report struct{ up, changed bool }
	var mu sync.Mutex
	var reports []report
	var afters atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Probe(ctx, 50*time.Millisecond, func(context.Context) { afters.Add(1) }, func(up, changed bool, _ error) {
			mu.Lock()
			reports = append(reports, report{up, changed})
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	saw := func(want report) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(reports, want)
		}
	}
	testutil.WaitFor(t, 10*time.Second, saw(report{true, false}), "a first probe: up, unchanged")
	dir.Stop()
	testutil.WaitFor(t, 10*time.Second, saw(report{false, true}), "the probe to see slapd gone")
	dir.Restart(t)
	testutil.WaitFor(t, 10*time.Second, saw(report{true, true}), "the probe to see slapd back")
	if afters.Load() == 0 {
		t.Fatal("after never ran")
	}
}

// TestFailover: a directory URL that refuses connections is skipped in
// favour of the next one; with every URL dead, a lookup is unavailable,
// never "no such user".
func TestFailover(t *testing.T) {
	dir := slapdtest.Start(t)
	dead := "ldap://" + testutil.FreeAddr(t) // nothing listens there
	d := sampleClient(t, 2*time.Second, lookupPassword(), dead, dir.URL)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("ping with the first URL dead: %v", err)
	}
	id, err := d.FindUser(context.Background(), nil, "alice")
	if err != nil || id.DN != sampledata.PersonDN("alice") || id.Username != "alice" {
		t.Fatalf("FindUser: %+v %v", id, err)
	}

	d2 := sampleClient(t, time.Second, lookupPassword(), dead)
	if _, err := d2.FindUser(context.Background(), nil, "alice"); !IsUnavailable(err) {
		t.Fatalf("all URLs dead: %v, want an UnavailableError", err)
	}
	if d2.Up() {
		t.Fatal("Up() after every URL failed")
	}
}

// TestHungServer: a directory URL that accepts connections but never
// answers costs one timeout; after it, new connections go to the next URL
// first.
func TestHungServer(t *testing.T) {
	dir := slapdtest.Start(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accept, never answer
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	d := sampleClient(t, 300*time.Millisecond, lookupPassword(), "ldap://"+hung.Addr().String(), dir.URL)
	// The lookup account's first connection lands on the hung server, times
	// out, and the retry goes to the next URL.
	if id, err := d.FindUser(context.Background(), nil, "alice"); err != nil || id.Username != "alice" {
		t.Fatalf("FindUser across a hung first URL: %+v %v", id, err)
	}
	// A client's own connection now starts with the URL that answers.
	conn, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice := person(t, "alice")
	if _, err := d.Bind(context.Background(), conn, alice.DN(), alice.Password, nil); err != nil {
		t.Fatalf("bind after failover: %v", err)
	}
}

// TestSearchOnAClosingConnectionIsNotAnAnswer: go-ldap ends a search on a
// connection already closing with no entry and no error. The client must
// not read that as "nothing matches": a user looked up on a connection
// the directory just dropped is unavailable (52), never "no such user"
// (49), and nothing counts as the directory's answer.
func TestSearchOnAClosingConnectionIsNotAnAnswer(t *testing.T) {
	dir := slapdtest.Start(t)
	d := newTestClient(t, Config{URLs: []string{dir.URL}})
	conn, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	alice := person(t, "alice")
	if _, err := d.Bind(context.Background(), conn, alice.DN(), alice.Password, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close() // what go-ldap's reader does when the directory goes away
	_, err = d.FindUser(context.Background(), conn, "alice")
	if errors.Is(err, ErrNoSuchUser) || !IsUnavailable(err) {
		t.Fatalf("FindUser on a closed connection: %v, want unavailable", err)
	}
	if _, ok := Answered(err); ok {
		t.Fatalf("%v reads as the directory's answer", err)
	}
}
