package metrics

import (
	"github.com/ldapgate/ldapgate/failmode"
)

// outcomes are the values ldapgate_binds_total's outcome label may take
// (besides "other"): the failmode rules, second-factor and primary.
var outcomes = func() map[failmode.Rule]bool {
	m := map[failmode.Rule]bool{}
	for _, r := range append(failmode.Rules(), failmode.PrimaryRules()...) {
		m[r] = true
	}
	return m
}()

// OutcomeOther is the outcome of a bind whose rule is not a known one. It
// keeps the label set bounded and keeps anything unexpected in a BindEvent's
// Rule out of the metrics.
const OutcomeOther = "other"

// Outcome is the outcome label for a BindEvent's Rule: the rule itself when
// it is one of the known failmode rules or primary outcomes, else
// OutcomeOther.
func Outcome(rule failmode.Rule) string {
	if outcomes[rule] {
		return string(rule)
	}
	return OutcomeOther
}

// FailmodeDecision derives the failmode ("safe", "secure") and decision
// ("allow", "deny") labels of a failmode event from its rule: failmode_safe
// is safe/allow, failmode_secure secure/deny, secure_group safe/deny. Any
// other rule gives failmode "unknown" and a decision from the event's status.
func FailmodeDecision(e failmode.BindEvent) (mode, decision string) {
	switch e.Rule {
	case failmode.RuleFailmodeSafe:
		return string(failmode.Safe), "allow"
	case failmode.RuleFailmodeDeny:
		return string(failmode.Secure), "deny"
	case failmode.RuleSecureGroup:
		return string(failmode.Safe), "deny"
	}
	if e.Status == failmode.StatusAllow {
		return "unknown", "allow"
	}
	return "unknown", "deny"
}

// endpointLabel is the endpoint label of a stage: preauth, auth or check
// (the Duo endpoint each stage calls), else other.
func endpointLabel(stage failmode.Stage) string {
	switch stage {
	case failmode.StagePreauth, failmode.StageAuth, failmode.StageCheck:
		return stage.String()
	}
	return "other"
}

// classLabel is the class label of a Duo error; out-of-range classes are
// unknown.
func classLabel(c failmode.Class) string {
	for _, k := range failmode.Classes() {
		if k == c {
			return c.String()
		}
	}
	return failmode.Unknown.String()
}
