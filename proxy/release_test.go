package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/demodir"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// heldSF is a second factor whose every push waits until the test answers
// it.
type heldSF struct {
	asked  chan struct{}
	answer chan failmode.Verdict
}

func newHeldSF() *heldSF {
	return &heldSF{asked: make(chan struct{}, 16), answer: make(chan failmode.Verdict, 16)}
}

func (h *heldSF) Verify(ctx context.Context, _ failmode.Attempt) (failmode.Verdict, error) {
	h.asked <- struct{}{}
	select {
	case v := <-h.answer:
		return v, nil
	case <-ctx.Done():
		return failmode.Verdict{}, ctx.Err()
	}
}

// startReleasing serves a secure section over a fresh in-memory directory
// whose binds release their directory connection after `after`.
func startReleasing(t *testing.T, after time.Duration, sf SecondFactor) (string, *demodir.Directory) {
	t.Helper()
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dir.URL())
	return serveTest(t, Config{ReleaseUpstreamAfter: after}, d, sf, nil), dir
}

// TestPendingPushHoldsNoDirectoryConnection: a bind waiting on its push
// gives up its directory connection (bound as the user) once it has waited
// ReleaseUpstreamAfter; allowed, it is bound again, and the client's
// operations are relayed as the user as before.
func TestPendingPushHoldsNoDirectoryConnection(t *testing.T) {
	sf := newHeldSF()
	addr, dir := startReleasing(t, 20*time.Millisecond, sf)
	alice := person(t, "alice")
	conn := dialProxy(t, addr)
	done := make(chan error, 1)
	go func() { done <- conn.Bind(alice.DN(), alice.Password) }()
	<-sf.asked
	testutil.WaitFor(t, 5*time.Second, func() bool { return dir.BoundAs(alice.DN()) == 0 },
		"the pending bind to release its directory connection")
	sf.answer <- failmode.Verdict{Allowed: true}
	if err := <-done; err != nil {
		t.Fatalf("bind allowed by Duo after the release: %v", err)
	}
	if n := dir.BoundAs(alice.DN()); n != 1 {
		t.Fatalf("%d directory connections bound as alice after the bind, want 1", n)
	}
	res, err := conn.WhoAmI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.AuthzID != "dn:"+alice.DN() {
		t.Fatalf("relayed Who Am I answers %q, want alice", res.AuthzID)
	}
}

// TestQuickAnswerKeepsDirectoryConnection: an answer within
// ReleaseUpstreamAfter keeps the connection the password was checked on.
func TestQuickAnswerKeepsDirectoryConnection(t *testing.T) {
	sf := newHeldSF()
	addr, dir := startReleasing(t, time.Hour, sf)
	alice := person(t, "alice")
	conn := dialProxy(t, addr)
	done := make(chan error, 1)
	go func() { done <- conn.Bind(alice.DN(), alice.Password) }()
	<-sf.asked
	if n := dir.BoundAs(alice.DN()); n != 1 {
		t.Fatalf("%d directory connections bound as alice while the push waits, want the one kept", n)
	}
	sf.answer <- failmode.Verdict{Allowed: true}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReleasedBindDeniedWhenDirectoryGone: Duo allows, but the directory
// cannot bind the user again: the bind is unavailable (52), never a
// success without a connection the directory just accepted.
func TestReleasedBindDeniedWhenDirectoryGone(t *testing.T) {
	sf := newHeldSF()
	events := make(chan failmode.BindEvent, 4)
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dir.URL())
	addr := serveTest(t, Config{ReleaseUpstreamAfter: 20 * time.Millisecond}, d, sf,
		failmode.RecorderFunc(func(e failmode.BindEvent) { events <- e }))
	alice := person(t, "alice")
	conn := dialProxy(t, addr)
	done := make(chan error, 1)
	go func() { done <- conn.Bind(alice.DN(), alice.Password) }()
	<-sf.asked
	testutil.WaitFor(t, 5*time.Second, func() bool { return dir.BoundAs(alice.DN()) == 0 },
		"the pending bind to release its directory connection")
	if err := dir.Stop(); err != nil {
		t.Fatal(err)
	}
	sf.answer <- failmode.Verdict{Allowed: true}
	err = <-done
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailable) {
		t.Fatalf("bind = %v, want unavailable (52)", err)
	}
	ev := <-events
	if ev.Status != failmode.StatusError || ev.Rule != failmode.RuleDirectoryUnavailable || ev.Username != "alice" {
		t.Fatalf("event %+v, want a refusal by rule directory_unavailable naming alice", ev)
	}
}

// allowSF lets every second factor through at once.
var allowSF = fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
	return failmode.Verdict{Allowed: true}, nil
}}

// TestBindOnlyConnectionIsRecycled: the directory connection of a client
// that bound and left goes back to the password-check pool, and the next
// client's bind replaces its identity there instead of dialling; one on
// which an operation was relayed is closed with its client, whatever state
// of that client's it may carry.
func TestBindOnlyConnectionIsRecycled(t *testing.T) {
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dir.URL())
	addr := serveTest(t, Config{}, d, allowSF, nil)
	alice, bob, carol := person(t, "alice"), person(t, "bob"), person(t, "carol")

	bindAndLeave := func(p sampledata.Person, relay bool) {
		t.Helper()
		c, err := ldap.DialURL("ldap://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Bind(p.DN(), p.Password); err != nil {
			t.Fatalf("bind as %s: %v", p.UID, err)
		}
		if relay {
			if _, err := c.WhoAmI(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	bindAndLeave(alice, false)
	// The lookup account's connection and alice's.
	testutil.WaitFor(t, 5*time.Second, func() bool { return dir.Opened() == 2 && dir.BoundAs(alice.DN()) == 1 },
		"alice's connection to wait in the pool")
	bindAndLeave(bob, true)
	if n := dir.Opened(); n != 2 {
		t.Fatalf("the directory accepted %d connections, want 2: bob's bind dialled instead of taking alice's", n)
	}
	if n := dir.BoundAs(alice.DN()); n != 0 {
		t.Fatalf("%d connections still bound as alice after bob's bind on hers", n)
	}
	// bob relayed an operation: his connection is closed, not pooled, so
	// carol's bind dials.
	testutil.WaitFor(t, 5*time.Second, func() bool { return dir.BoundAs(bob.DN()) == 0 }, "bob's connection to close")
	bindAndLeave(carol, false)
	if n := dir.Opened(); n != 3 {
		t.Fatalf("the directory accepted %d connections, want 3: carol must not get bob's relayed-on connection", n)
	}
}

// TestRecycledConnectionNeverActsAsItsLastUser is the attack on recycling:
// alice binds and leaves, and her connection, still bound as alice at the
// directory, waits in the pool. Mallory, who has no password, binds with a
// wrong one: the bind on alice's connection is refused and nothing Mallory
// asks is relayed. Carol binds next on the same connection: what is
// relayed for her runs as carol, never as alice.
func TestRecycledConnectionNeverActsAsItsLastUser(t *testing.T) {
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dir.URL())
	addr := serveTest(t, Config{}, d, allowSF, nil)
	alice, bob, carol := person(t, "alice"), person(t, "bob"), person(t, "carol")

	a := dialProxy(t, addr)
	if err := a.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	a.Close()
	testutil.WaitFor(t, 5*time.Second, func() bool { return dir.Opened() == 2 && dir.BoundAs(alice.DN()) == 1 },
		"alice's connection to wait in the pool")

	m := dialProxy(t, addr)
	if err := m.Bind(bob.DN(), "not-bobs-password"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("wrong password on a recycled connection: %v, want 49", err)
	}
	if res, err := m.WhoAmI(nil); err == nil {
		t.Fatalf("after a refused bind Mallory's Who Am I was answered %q", res.AuthzID)
	}
	m.Close()

	c := dialProxy(t, addr)
	if err := c.Bind(carol.DN(), carol.Password); err != nil {
		t.Fatal(err)
	}
	res, err := c.WhoAmI(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.AuthzID != "dn:"+carol.DN() {
		t.Fatalf("carol's relayed Who Am I answers %q", res.AuthzID)
	}
	if n := dir.Opened(); n != 2 {
		t.Fatalf("the directory accepted %d connections, want 2: the binds did not run on the recycled one", n)
	}
}
