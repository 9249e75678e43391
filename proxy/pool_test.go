package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestPasswordChecksUseTheBoundedPool: while every password-check
// connection of the directory is lent, a client that has not been let in
// is told busy (51) at once, and the second factor is never asked; once
// one comes back, a refused bind and then a good one go through, and the
// good one keeps its connection, bound as that user.
func TestPasswordChecksUseTheBoundedPool(t *testing.T) {
	d := newTestDirectory(t, directory.Config{URLs: []string{memoryDirectory(t)}, BaseDN: sampledata.BaseDN, MaxConnections: 2})
	asked := make(chan string, 4)
	approve := fakeSF{verify: func(_ context.Context, a failmode.Attempt) (failmode.Verdict, error) {
		asked <- a.Username
		return failmode.Verdict{Allowed: true}, nil
	}}
	addr := serveTest(t, Config{Name: "pool"}, d, approve, nil)
	alice := person(t, "alice")

	var held []*directory.Lease
	for range 2 {
		l, err := d.CheckConn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	start := time.Now()
	if err := dialProxy(t, addr).Bind(alice.DN(), alice.Password); testutil.ResultCode(err) != ldap.LDAPResultBusy {
		t.Fatalf("bind with the pool full: %v, want busy (51)", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("busy took %v: a full pool must answer at once", waited)
	}
	if len(asked) != 0 {
		t.Fatal("the second factor was asked for a bind the directory never checked")
	}
	for _, l := range held {
		l.Release()
	}
	if err := dialProxy(t, addr).Bind(alice.DN(), "wrong"); testutil.ResultCode(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("wrong password: %v", err)
	}
	good := dialProxy(t, addr)
	if err := good.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("good bind: %v", err)
	}
	if who, err := good.WhoAmI(nil); err != nil || who.AuthzID != "dn:"+alice.DN() {
		t.Fatalf("the kept connection is not alice's: %+v %v", who, err)
	}
	if got := <-asked; got != "alice" {
		t.Fatalf("second factor asked about %q", got)
	}
}
