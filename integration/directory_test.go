package integration

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

// TestDirectoryDown: a directory that is down or silent is "unavailable"
// (52), never "invalid credentials", never a Duo call; ldapgate recovers
// with the directory.
func TestDirectoryDown(t *testing.T) {
	// its own slapd: it stops and pauses it; in parallel: a paused slapd is
	// waited out
	e := startParallel(t, []section{secureSection, safeSection}, withOwnSlapd())
	alice := person(t, "alice")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name        string
		down, up    func(testing.TB)
		dn          string
		sectionName string
	}{
		{"stopped, DN bind", func(tb testing.TB) { e.slapd.Stop() }, e.slapd.Restart, alice.DN(), "secure"},
		{"stopped, name bind", func(tb testing.TB) { e.slapd.Stop() }, e.slapd.Restart, "alice", "safe"},
		{"silent (SIGSTOP)", e.slapd.Pause, e.slapd.Resume, alice.DN(), "safe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.down(t)
			e.duo.ResetCalls()
			err := e.bind(tt.sectionName, tt.dn, alice.Password)
			if code(err) != ldap.LDAPResultUnavailable {
				t.Errorf("bind while the directory is down: %v, want unavailable (52)", err)
			}
			if c := e.duo.Calls(); c.Preauth != 0 {
				t.Errorf("a bind with no directory reached Duo: %+v", c)
			}
			tt.up(t)
			if err := e.bind(tt.sectionName, tt.dn, alice.Password); err != nil {
				t.Errorf("bind after the directory came back: %v", err)
			}
		})
	}
}

// TestReferrals: search references reach the client intact.
func TestReferrals(t *testing.T) {
	const ref = "ldap://other.example.com/ou=elsewhere,dc=example,dc=com"
	e := start(t, []section{secureSection}, withSlapd(slapdtest.WithExtraLDIF(
		"dn: ou=elsewhere,"+sampledata.BaseDN+"\nobjectClass: referral\nobjectClass: extensibleObject\nou: elsewhere\nref: "+ref+"\n")))
	alice := person(t, "alice")
	conn := e.dial("secure")
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Search(ldap.NewSearchRequest(sampledata.BaseDN, ldap.ScopeSingleLevel, 0, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range res.Referrals {
		// slapd appends the scope to the URL ("??base").
		if strings.HasPrefix(r, ref) {
			found = true
		}
	}
	if !found {
		t.Fatalf("referrals %q do not include %s", res.Referrals, ref)
	}
}
