package proxy

import (
	"testing"

	"github.com/jimlambrt/gldap"

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
