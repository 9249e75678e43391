package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestPasswordChecksUseABoundedPool: clients that have not been let in
// share max_connections directory connections. While two checks hang on a
// paused directory, a third client is told busy at once; refused binds give
// their connection back for reuse, a good bind keeps its own, and nothing
// else stays open on the directory.
func TestPasswordChecksUseABoundedPool(t *testing.T) {
	dir := slapdtest.Start(t)
	d := newTestDirectory(t, DirectoryConfig{URLs: []string{dir.URL}, Timeout: 20 * time.Second,
		BaseDN: sampledata.BaseDN, MaxConnections: 2})
	approve := fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, nil
	}}
	addr := serveTest(t, Config{Name: "pool"}, d, approve, nil)

	alice := person(t, "alice")
	// Warm the pool with one refused bind, so the paused directory holds a
	// connection it already accepted.
	if err := dialProxy(t, addr).Bind(alice.DN(), "wrong"); testutil.ResultCode(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	if len(d.pool.idle) != 1 || len(d.pool.slots) != 0 {
		t.Fatalf("after a refused bind: %d idle, %d lent; want 1, 0", len(d.pool.idle), len(d.pool.slots))
	}

	dir.Pause(t)
	hung := make(chan error, 2)
	for range 2 {
		c := dialProxy(t, addr)
		go func() { hung <- c.Bind(alice.DN(), "wrong") }()
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(d.pool.slots) == 2 }, "two checks to hold the pool")
	start := time.Now()
	err := dialProxy(t, addr).Bind(alice.DN(), alice.Password)
	if testutil.ResultCode(err) != ldap.LDAPResultBusy {
		t.Fatalf("third check with the pool full: %v, want busy (51)", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("busy took %v: a full pool must answer at once", waited)
	}
	dir.Resume(t)
	for range 2 {
		if err := <-hung; testutil.ResultCode(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("hung check: %v", err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return len(d.pool.slots) == 0 }, "the pool to be returned")
	if n := len(d.pool.idle); n != 2 {
		t.Fatalf("%d idle connections after two refused binds, want 2 (reused)", n)
	}
	good := dialProxy(t, addr)
	if err := good.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("good bind: %v", err)
	}
	if n := len(d.pool.idle); n != 1 {
		t.Fatalf("%d idle after a good bind, want 1: the session took its connection", n)
	}
	if who, err := good.WhoAmI(nil); err != nil || who.AuthzID != "dn:"+alice.DN() {
		t.Fatalf("the kept connection is not alice's: %+v %v", who, err)
	}
}

func person(t *testing.T, uid string) sampledata.Person {
	t.Helper()
	p, ok := sampledata.Lookup(uid)
	if !ok {
		t.Fatalf("no sample person %q", uid)
	}
	return p
}
