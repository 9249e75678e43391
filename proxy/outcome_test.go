package proxy

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
)

// TestOutcomesTable: only an allowing row answers success; every refusal
// tells the client something (but directory_refused, which relays the
// directory's own message); a rule with no row never lets anyone in.
func TestOutcomesTable(t *testing.T) {
	for rule, o := range outcomes {
		if (o.code == gldap.ResultSuccess) != (o.status == failmode.StatusAllow) {
			t.Errorf("%s: code %d with status %s", rule, o.code, o.status)
		}
		if o.status != failmode.StatusAllow && o.diag == "" && rule != failmode.RuleDirectoryRefused {
			t.Errorf("%s: a refusal without a client message", rule)
		}
	}
	a := &attempt{name: "alice"}
	res := a.end("no_such_rule", failmode.AuthPrimary, nil)
	if res.code == gldap.ResultSuccess || res.event.Status == failmode.StatusAllow || res.err == nil {
		t.Fatalf("a rule without a row: %+v", res)
	}
	// The vocabulary (failmode) and this table name the same rules.
	for _, r := range failmode.PrimaryRules() {
		if _, ok := outcomes[r]; !ok {
			t.Errorf("primary rule %s has no row", r)
		}
	}
	if got := failmode.PrimaryRules(); len(got) != len(outcomes) {
		t.Fatalf("failmode.PrimaryRules lists %d rules, the table has %d", len(got), len(outcomes))
	}
}

// TestLookupRule: a name that matches no single entry is invalid
// credentials; every lookup connection at its bound is busy; a refused
// lookup account, an unreachable directory or anything else is the
// directory being unavailable, never the user's password being wrong.
func TestLookupRule(t *testing.T) {
	for err, want := range map[error]int{
		directory.ErrNoSuchUser:                                ldap.LDAPResultInvalidCredentials,
		fmt.Errorf("x: %w", directory.ErrAmbiguousUser):        ldap.LDAPResultInvalidCredentials,
		fmt.Errorf("%w: refused", directory.ErrLookupAccount):  ldap.LDAPResultUnavailable,
		&directory.UnavailableError{Op: "search", Err: io.EOF}: ldap.LDAPResultUnavailable,
		fmt.Errorf("find: %w", directory.ErrLookupBusy):        ldap.LDAPResultBusy,
		errors.New("anything else"):                            ldap.LDAPResultUnavailable,
	} {
		if code := outcomes[lookupRule(err)].code; code != want {
			t.Errorf("lookupRule(%v) answers %d, want %d", err, code, want)
		}
	}
}
