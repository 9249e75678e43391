package failmode

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// flow runs the whole decision the way the proxy does: Plan first, and Decide
// with the outcome only when Plan left it open.
func flow(p Policy, s Subject, o Outcome) (Decision, bool) {
	if d, done := Plan(p, s); done {
		return d, false
	}
	return Decide(p, s, o), true
}

func TestDecideTable(t *testing.T) {
	safe, secure := Policy{Mode: Safe}, Policy{Mode: Secure}
	user, admin := Subject{}, Subject{SecureGroup: true}
	refused := Outcome{Class: Unreachable, Stage: StagePreauth, Detail: "connection refused"}

	tests := []struct {
		name      string
		policy    Policy
		subject   Subject
		outcome   Outcome
		wantAllow bool
		wantRule  Rule
		wantAsked bool
		wantFM    bool
		wantText  string // substring of Reason
	}{
		{"approved", secure, user, Outcome{Class: Allowed}, true, RuleSecondFactor, true, false, "approved"},
		{"duo bypass", secure, user, Outcome{Class: Allowed, Bypass: true}, true, RuleBypass, true, false, "Duo bypass: no second factor asked"},
		{"local error safe user", safe, user, Outcome{Class: Local, Stage: StagePreauth, Detail: "too many open files"}, false, RuleLocalError, true, false, "never invoked"},
		{"local error secure", secure, user, Outcome{Class: Local, Stage: StagePreauth}, false, RuleLocalError, true, false, "own fault"},
		{"rejected request safe user", safe, user, Outcome{Class: Rejected, Stage: StageAuth, Detail: "HTTP 400"}, false, RuleRejected, true, false, "HTTP 400"},
		{"denied by duo", safe, user, Outcome{Class: Denied, Detail: "Login request denied."}, false, RuleDenied, true, false, "Login request denied."},
		{"unreachable safe user", safe, user, refused, true, RuleFailmodeSafe, true, true, "failmode safe: allowed without second factor (duo unreachable: connection refused)"},
		{"unreachable safe admin", safe, admin, refused, false, RuleSecureGroup, true, true, "secure group"},
		{"unreachable secure user", secure, user, refused, false, RuleFailmodeDeny, true, true, "failmode secure: denied (duo unreachable: connection refused)"},
		{"unreachable secure admin", secure, admin, refused, false, RuleFailmodeDeny, true, true, "failmode secure"},
		{"unreachable at auth is degradation", safe, user, Outcome{Class: Unreachable, Stage: StageAuth}, false, RuleDegraded, true, false, "not invoked"},
		{"degraded safe", safe, user, Outcome{Class: Degraded, Stage: StageAuth, Detail: "no answer within 60s"}, false, RuleDegraded, true, false, "no answer within 60s"},
		{"degraded at preauth (429) safe", safe, user, Outcome{Class: Degraded, Stage: StagePreauth, Detail: "HTTP 429"}, false, RuleDegraded, true, false, "429"},
		{"misconfigured safe", safe, user, Outcome{Class: Misconfigured, Detail: "HTTP 401"}, false, RuleMisconfigured, true, false, "never invoked"},
		{"untrusted safe", safe, user, Outcome{Class: Untrusted, Detail: "x509"}, false, RuleUntrusted, true, false, "untrusted certificate"},
		{"unknown class safe", safe, user, Outcome{Class: Unknown}, false, RuleUnknown, true, false, "unrecognised"},
		{"out of range class safe", safe, user, Outcome{Class: Class(42), Stage: StagePreauth}, false, RuleUnknown, true, false, "unrecognised"},
		{"exempt DN skips duo", secure, Subject{ExemptDN: true}, Outcome{}, true, RuleExempt, false, false, "exempt"},
		{"exempt DN in secure group still exempt", secure, Subject{ExemptDN: true, SecureGroup: true}, Outcome{}, true, RuleExempt, false, false, "exempt"},
		{"primary bind exempt", secure, Subject{PrimaryBind: true}, Outcome{}, true, RulePrimaryBind, false, false, "exempt_primary_bind"},
		{"primary bind never exempts admins", secure, Subject{PrimaryBind: true, SecureGroup: true}, Outcome{Class: Denied}, false, RuleDenied, true, false, "denied"},
		{"primary-only safe user", Policy{Mode: Safe, PrimaryOnly: true}, user, Outcome{}, true, RulePrimaryOnly, false, false, "primary-only"},
		{"primary-only safe admin asks duo", Policy{Mode: Safe, PrimaryOnly: true}, admin, Outcome{Class: Allowed}, true, RuleSecondFactor, true, false, "approved"},
		{"primary-only secure section asks duo", Policy{Mode: Secure, PrimaryOnly: true}, user, refused, false, RuleFailmodeDeny, true, true, "failmode secure"},
		{"zero policy is secure", Policy{}, user, refused, false, RuleFailmodeDeny, true, true, "failmode secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, asked := flow(tt.policy, tt.subject, tt.outcome)
			if d.Allow != tt.wantAllow || d.Rule != tt.wantRule || asked != tt.wantAsked || d.Failmode != tt.wantFM {
				t.Fatalf("got allow=%v rule=%s asked=%v failmode=%v, want allow=%v rule=%s asked=%v failmode=%v (reason %q)",
					d.Allow, d.Rule, asked, d.Failmode, tt.wantAllow, tt.wantRule, tt.wantAsked, tt.wantFM, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.wantText) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.wantText)
			}
			if !d.Allow && d.Diagnostic == "" {
				t.Errorf("a denial must carry a diagnostic for the client")
			}
		})
	}
}

// TestDecideMatrix walks every class × stage × failmode × secure group ×
// exemption × primary-only combination and checks the invariants the product
// promises, independently of how Decide is written.
func TestDecideMatrix(t *testing.T) {
	classes := append(Classes(), Class(-1), Class(99))
	stages := []Stage{StagePreauth, StageAuth, StageCheck}
	n := 0
	for _, c := range classes {
		for _, st := range stages {
			for _, mode := range []Mode{Safe, Secure, ""} {
				for _, po := range []bool{false, true} {
					for _, sg := range []bool{false, true} {
						for _, ex := range []bool{false, true} {
							for _, pb := range []bool{false, true} {
								p := Policy{Mode: mode, PrimaryOnly: po}
								s := Subject{ExemptDN: ex, PrimaryBind: pb, SecureGroup: sg}
								o := Outcome{Class: c, Stage: st}
								d, asked := flow(p, s, o)
								n++
								name := fmt.Sprintf("class=%s stage=%s mode=%q primaryOnly=%v secureGroup=%v exempt=%v primaryBind=%v", c, st, mode, po, sg, ex, pb)
								checkInvariants(t, name, p, s, o, d, asked)
							}
						}
					}
				}
			}
		}
	}
	if n != (len(Classes())+2)*3*3*2*2*2*2 {
		t.Fatalf("matrix walked %d cases", n)
	}
}

func checkInvariants(t *testing.T, name string, p Policy, s Subject, o Outcome, d Decision, asked bool) {
	t.Helper()
	fail := func(why string) { t.Errorf("%s: %s (got %+v asked=%v)", name, why, d, asked) }
	allowedWithoutDuo := s.ExemptDN ||
		(s.PrimaryBind && !s.SecureGroup) ||
		(p.PrimaryOnly && p.Mode == Safe && !s.SecureGroup)
	if asked == allowedWithoutDuo {
		fail("duo must be asked exactly when no exemption applies")
	}
	if !asked {
		if !d.Allow {
			fail("an exemption must allow")
		}
		return
	}
	failOpen := o.Class == Unreachable && o.Stage == StagePreauth && p.Mode == Safe && !s.SecureGroup
	want := o.Class == Allowed || failOpen
	if d.Allow != want {
		fail(fmt.Sprintf("allow should be %v", want))
	}
	if d.Failmode != (o.Class == Unreachable && o.Stage == StagePreauth) {
		fail("failmode must be invoked exactly for unreachable at preauth")
	}
	if !d.Allow && d.Diagnostic == "" {
		fail("denials need a diagnostic")
	}
	if d.Allow && d.Diagnostic != "" {
		fail("allows carry no diagnostic")
	}
	if d.Rule == "" || d.Reason == "" {
		fail("every decision names its rule and reason")
	}
	if !slices.Contains(Rules(), d.Rule) {
		fail("the rule must be one Rules lists")
	}
	if d.Cause != o {
		fail("a decision after Duo carries the outcome it rests on")
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		d    Decision
		want Status
	}{
		{Decision{Allow: true, Rule: RuleFailmodeSafe}, StatusAllow},
		{Decision{Rule: RuleDenied}, StatusReject},
		{Decision{Rule: RuleFailmodeDeny}, StatusError},
		{Decision{}, StatusError},
	} {
		if got := tt.d.Status(); got != tt.want {
			t.Errorf("%+v: status %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestOutcomeOf(t *testing.T) {
	classified := fmt.Errorf("preauth: %w", &Error{Class: Unreachable, Stage: StagePreauth, Detail: "connection refused", Err: errors.New("dial tcp: refused")})
	tests := []struct {
		name    string
		verdict Verdict
		err     error
		want    Outcome
	}{
		{"allowed", Verdict{Allowed: true, Message: "Success."}, nil, Outcome{Class: Allowed, Detail: "Success."}},
		{"bypass", Verdict{Allowed: true, Bypass: true}, nil, Outcome{Class: Allowed, Bypass: true}},
		{"denied", Verdict{Message: "Login request denied."}, nil, Outcome{Class: Denied, Detail: "Login request denied."}},
		{"wrapped classified error", Verdict{Allowed: true}, classified, Outcome{Class: Unreachable, Stage: StagePreauth, Detail: "connection refused"}},
		{"unclassified error never allows", Verdict{Allowed: true, Bypass: true}, errors.New("boom"), Outcome{Class: Unknown, Detail: "unclassified error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OutcomeOf(tt.verdict, tt.err); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Class: Degraded, Stage: StageAuth, Detail: "no answer within 60s", Err: errors.New("context deadline exceeded")}
	if got, want := e.Error(), "duo auth degraded: no answer within 60s: context deadline exceeded"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(e, e.Err) {
		t.Fatal("Error must unwrap to its cause")
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": Secure, "secure": Secure, "safe": Safe} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"open", "Safe", "SECURE", " safe"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}

func TestClassString(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Classes() {
		s := c.String()
		if seen[s] || strings.HasPrefix(s, "class(") {
			t.Errorf("class %d has a bad or duplicate name %q", int(c), s)
		}
		seen[s] = true
	}
	if Class(99).String() != "class(99)" {
		t.Error("out of range class must still print")
	}
}

func TestParseFactor(t *testing.T) {
	for in, want := range map[string]Factor{"": FactorAuto, "auto": FactorAuto, "push": FactorPush, "phone": FactorPhone} {
		if got, err := ParseFactor(in); err != nil || got != want {
			t.Errorf("ParseFactor(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"passcode", "sms", "Push"} {
		if _, err := ParseFactor(bad); err == nil {
			t.Errorf("ParseFactor(%q) accepted", bad)
		}
	}
}

func TestCauseText(t *testing.T) {
	for o, want := range map[Outcome]string{
		{Class: Unreachable, Detail: "connection refused"}: "duo unreachable: connection refused",
		{Class: Misconfigured}:                             "duo misconfigured",
		{Class: Local, Detail: "too many open files"}:      "ldapgate local_error: too many open files",
	} {
		if got := o.CauseText(); got != want {
			t.Errorf("%+v: %q, want %q", o, got, want)
		}
	}
}

func TestIntegrationName(t *testing.T) {
	if got := Integration("API-X.DuoSecurity.com", "DIABC"); got != "api-x.duosecurity.com/DIABC" {
		t.Fatalf("Integration = %q", got)
	}
}
