package failmode

import "fmt"

// Rule names the rule that produced a Decision. It is stable text, fit for a
// metric label or a log field.
type Rule string

const (
	RuleExempt        Rule = "exempt"          // exempt DN: no second factor
	RulePrimaryBind   Rule = "primary_bind"    // exempt_primary_bind: no second factor
	RulePrimaryOnly   Rule = "primary_only"    // emergency switch in a safe section
	RuleSecondFactor  Rule = "second_factor"   // Duo approved the second factor
	RuleBypass        Rule = "bypass"          // Duo's preauth allowed the user without a second factor
	RuleDenied        Rule = "denied"          // Duo said no
	RuleFailmodeSafe  Rule = "failmode_safe"   // Duo unreachable, safe section: allowed
	RuleFailmodeDeny  Rule = "failmode_secure" // Duo unreachable, secure section: denied
	RuleSecureGroup   Rule = "secure_group"    // Duo unreachable, safe section, privileged user: denied
	RuleDegraded      Rule = "degraded"        // Duo answered but could not finish: denied
	RuleMisconfigured Rule = "misconfigured"   // Duo rejected our keys or request: denied
	RuleUntrusted     Rule = "untrusted"       // Duo's certificate did not verify: denied
	RuleLocalError    Rule = "local_error"     // ldapgate's own fault (descriptors, memory, cancelled, panic): denied
	RuleRejected      Rule = "rejected"        // Duo refused this user's request as invalid (HTTP 400): denied
	RuleUnknown       Rule = "unknown"         // anything unrecognised: denied
)

// Rules lists every Rule Plan and Decide return; metrics use it to keep
// their label set bounded.
func Rules() []Rule {
	return []Rule{RuleExempt, RulePrimaryBind, RulePrimaryOnly, RuleSecondFactor, RuleBypass, RuleDenied,
		RuleFailmodeSafe, RuleFailmodeDeny, RuleSecureGroup, RuleDegraded, RuleMisconfigured, RuleUntrusted,
		RuleLocalError, RuleRejected, RuleUnknown, RuleBreakGlass, RuleBreakGlassInvalid, RuleBreakGlassRefused}
}

// Status is how an auth event log reports a decision, in the vocabulary SIEM
// rules for the reference proxy already use.
type Status string

const (
	StatusAllow  Status = "Allow"
	StatusReject Status = "Reject" // the user was refused: Duo said no
	StatusError  Status = "Error"  // refused because something is broken
)

// User-facing diagnostic messages. They go to LDAP clients, so they are short,
// actionable and never carry internal detail.
const (
	MsgDenied      = "second factor denied"
	MsgUnavailable = "second factor unavailable"
)

// Decision is the verdict on one bind. Allow false is the zero value.
type Decision struct {
	Allow bool
	Rule  Rule
	// Failmode is true when the failmode setting decided (Duo unreachable).
	Failmode bool
	// Reason is a full sentence for operators and the auth log.
	Reason string
	// Diagnostic is the short text returned to the LDAP client on denial.
	Diagnostic string
	// Cause is the second-factor outcome Decide decided on (zero for Plan's
	// decisions): what alerts and metrics read, instead of parsing Reason.
	Cause Outcome
}

// CauseText is the outcome as operators read it: "duo unreachable:
// connection refused", or "ldapgate local_error: ..." for our own fault.
func (o Outcome) CauseText() string {
	who := "duo "
	if o.Class == Local {
		who = "ldapgate "
	}
	text := who + o.Class.String()
	if o.Detail != "" {
		text += ": " + o.Detail
	}
	return text
}

// Status reports the decision for the auth event log.
func (d Decision) Status() Status {
	switch {
	case d.Allow:
		return StatusAllow
	case d.Rule == RuleDenied, d.Rule == RuleRejected, d.Rule == RuleBreakGlassInvalid, d.Rule == RuleBreakGlassRefused:
		return StatusReject
	}
	return StatusError
}

// Plan decides what can be decided before Duo is asked. It returns the
// decision and true when no second factor is needed, or false when the caller
// must ask Duo and then call Decide.
//
// Exempt DNs always skip Duo: an administrator named them. The primary-bind
// exemption and primary-only mode never cover secure-group members, because
// those are the accounts an attacker wants.
func Plan(p Policy, s Subject) (Decision, bool) {
	switch {
	case s.ExemptDN:
		return Decision{Allow: true, Rule: RuleExempt, Reason: "exempt DN: second factor not required"}, true
	case s.PrimaryBind && !s.SecureGroup:
		return Decision{Allow: true, Rule: RulePrimaryBind, Reason: "first bind on the connection is exempt (exempt_primary_bind)"}, true
	case p.PrimaryOnly && p.Mode == Safe && !s.SecureGroup:
		return Decision{Allow: true, Rule: RulePrimaryOnly, Reason: "primary-only mode: allowed without second factor"}, true
	}
	return Decision{}, false
}

// Decide returns the verdict on a bind after Duo was asked (or found to be
// unreachable). Only an Unreachable outcome at preauth consults the failmode;
// every class it does not know is denied.
func Decide(p Policy, s Subject, o Outcome) Decision {
	d := decide(p, s, o)
	d.Cause = o
	return d
}

func decide(p Policy, s Subject, o Outcome) Decision {
	cause := o.Class.String()
	if o.Detail != "" {
		cause += ": " + o.Detail
	}
	switch o.Class {
	case Allowed:
		if o.Bypass {
			return Decision{Allow: true, Rule: RuleBypass, Reason: "Duo bypass: no second factor asked"}
		}
		return Decision{Allow: true, Rule: RuleSecondFactor, Reason: "second factor approved"}
	case Denied:
		reason := "second factor denied"
		if o.Detail != "" {
			reason += ": " + o.Detail
		}
		return Decision{Rule: RuleDenied, Reason: reason, Diagnostic: MsgDenied}
	case Unreachable:
		if o.Stage != StagePreauth {
			// Duo was reachable for preauth; losing it mid-login is degradation.
			return refuse(Degraded, cause)
		}
		switch {
		case p.Mode == Safe && s.SecureGroup:
			return Decision{Rule: RuleSecureGroup, Failmode: true, Diagnostic: MsgUnavailable,
				Reason: fmt.Sprintf("failmode safe: denied, member of a secure group (duo %s)", cause)}
		case p.Mode == Safe:
			return Decision{Allow: true, Rule: RuleFailmodeSafe, Failmode: true,
				Reason: fmt.Sprintf("failmode safe: allowed without second factor (duo %s)", cause)}
		default:
			return Decision{Rule: RuleFailmodeDeny, Failmode: true, Diagnostic: MsgUnavailable,
				Reason: fmt.Sprintf("failmode secure: denied (duo %s)", cause)}
		}
	case Degraded, Misconfigured, Untrusted, Local, Rejected:
		return refuse(o.Class, cause)
	}
	return Decision{Rule: RuleUnknown, Diagnostic: MsgUnavailable,
		Reason: fmt.Sprintf("denied: unrecognised second-factor outcome (%s)", cause)}
}

// refusals are the classes denied whatever the policy: none is evidence
// that Duo is unreachable, so failmode never decides them. Each has its
// rule, the client's diagnostic and the reason, %s standing for the cause.
var refusals = map[Class]struct {
	rule       Rule
	diagnostic string
	reason     string
}{
	Degraded:      {RuleDegraded, MsgUnavailable, "denied: duo %s; failmode is not invoked when duo is reachable"},
	Misconfigured: {RuleMisconfigured, MsgUnavailable, "denied: duo %s; failmode is never invoked for misconfiguration"},
	Untrusted:     {RuleUntrusted, MsgUnavailable, "denied: duo %s; failmode is never invoked for an untrusted certificate"},
	Local:         {RuleLocalError, MsgUnavailable, "denied: %s; ldapgate's own fault, not evidence about duo, so failmode is never invoked"},
	Rejected:      {RuleRejected, MsgDenied, "denied: duo %s; duo refused this request for this user"},
}

func refuse(class Class, cause string) Decision {
	r := refusals[class]
	return Decision{Rule: r.rule, Diagnostic: r.diagnostic, Reason: fmt.Sprintf(r.reason, cause)}
}
