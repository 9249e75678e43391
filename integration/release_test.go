package integration

import (
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestPasswordChangedWhileThePushWaits: a bind whose push waits gives up
// its directory connection (config.ReleaseUpstreamAfter) and, once Duo
// allows, binds the entry again with the password it was given. When the
// password was changed (or the account's password reset by an
// administrator) meanwhile, that bind is refused and so is the login: Duo's
// yes never lets in a password the directory no longer accepts.
func TestPasswordChangedWhileThePushWaits(t *testing.T) {
	push := 3 * config.ReleaseUpstreamAfter
	e := start(t, []section{lookupSection}, withOwnSlapd(), // a password changes
		withDuo("push_timeout", (push+10*time.Second).String()))
	alice := person(t, "alice")
	e.duo.SetPushDelay(push)
	before := e.duo.Calls().Auth

	done := make(chan int, 1)
	go func() {
		c, _ := tryBind(e.addr["lookup"], alice.DN(), alice.Password)
		done <- c
	}()
	// The push is at Duo: the directory accepted the password already.
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.duo.Calls().Auth > before }, "the push to reach Duo")
	admin := e.slapd.Conn(t, slapdtest.RootDN, slapdtest.RootPassword)
	mod := ldap.NewModifyRequest(alice.DN(), nil)
	mod.Replace("userPassword", []string{"a-new-password-9"})
	if err := admin.Modify(mod); err != nil {
		t.Fatalf("reset alice's password: %v", err)
	}
	select {
	case c := <-done:
		if c != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("login whose password was reset while its push waited: code %d, want 49; auth log: %v", c, e.authEvents())
		}
	case <-time.After(push + 10*time.Second):
		t.Fatal("the bind was never answered")
	}
}
