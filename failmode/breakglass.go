package failmode

// Break-glass codes: one-time codes an administrator issued to named users,
// typed after the password, that stand in for the second factor only while
// Duo is known to be unreachable and the section would otherwise deny.
const (
	RuleBreakGlass        Rule = "break_glass"         // a break-glass code let the user in while Duo was unreachable
	RuleBreakGlassInvalid Rule = "break_glass_invalid" // the code was wrong, used, another user's, or the user is not listed: denied
	RuleBreakGlassRefused Rule = "break_glass_refused" // a code was typed while Duo was not known unreachable: denied, the code untouched
)

// MsgBreakGlassRefused is what a client is told when its code was not
// considered: Duo is not down, so the user must use Duo.
const MsgBreakGlassRefused = "break-glass code not accepted: use your second factor"

// BreakGlassEligible reports whether a break-glass code may be checked for
// a bind that d decided: only when Duo is known unreachable (unreachable:
// the integration's health state, not one failed call) and failmode denied
// the bind because Duo could not be reached at preauth — a secure section,
// or a secure group in a safe section. A bind failmode lets in needs no
// code; every other refusal (Duo said no, degraded, misconfigured,
// untrusted, our own fault) is never overridden.
func BreakGlassEligible(d Decision, unreachable bool) bool {
	return unreachable && !d.Allow && d.Failmode &&
		d.Cause.Class == Unreachable && d.Cause.Stage == StagePreauth &&
		(d.Rule == RuleFailmodeDeny || d.Rule == RuleSecureGroup)
}

// BreakGlass is the decision on an eligible bind (BreakGlassEligible(d))
// once its code was checked: accepted lets the user in, anything else is
// a denial like a wrong password. d is the decision it replaces; its cause
// is kept. An ineligible d is returned as it is.
func BreakGlass(d Decision, unreachable, accepted bool) Decision {
	if !BreakGlassEligible(d, unreachable) {
		return d
	}
	cause := d.Cause.CauseText()
	if accepted {
		return Decision{Allow: true, Rule: RuleBreakGlass, Cause: d.Cause,
			Reason: "break-glass code accepted: allowed without second factor, which failmode would have denied (" + cause + ")"}
	}
	return Decision{Rule: RuleBreakGlassInvalid, Cause: d.Cause, Diagnostic: MsgDenied,
		Reason: "break-glass code not accepted (wrong, used, another user's, or user not listed); " + d.Reason}
}

// BreakGlassRefused is the decision on a bind that carries a break-glass
// code while Duo is not known unreachable. Duo is not asked (the user meant
// to skip it, and a push would surprise them), the code is not checked and
// stays valid; the bind is denied.
func BreakGlassRefused() Decision {
	return Decision{Rule: RuleBreakGlassRefused, Diagnostic: MsgBreakGlassRefused,
		Reason: "break-glass code refused: duo is not known unreachable; codes work only while it is"}
}
