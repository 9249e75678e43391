package failmode

import "time"

// AuthStage is the step at which a bind was decided.
type AuthStage string

const (
	AuthPrimary   AuthStage = "primary"   // the password step (directory)
	AuthSecondary AuthStage = "secondary" // the second-factor step
)

// BindEvent describes one bind decision: what the auth log writes, metrics
// count and alerts watch. It never holds a password or a passcode.
type BindEvent struct {
	Time     time.Time
	Server   string
	ClientIP string
	// BindName is the name as the client typed it. It is never an identity:
	// only DN is.
	BindName string
	// DN is the entry the directory authenticated, as the directory spells
	// it; "" when the bind never got that far (or was anonymous).
	DN       string
	Username string // the name sent (or that would be sent) to Duo
	Stage    AuthStage
	Factor   string // auto, push, phone, passcode; "" when Duo was not asked
	Status   Status
	// Rule is the rule of a second-factor decision (Plan, Decide), or a
	// primary rule (PrimaryRules).
	Rule     Rule
	Failmode bool
	// Cause is the second-factor outcome a decision after Duo rests on
	// (zero before it): the class and detail, as values.
	Cause    Outcome
	Msg      string
	Duration time.Duration
}

// Recorder receives one BindEvent per bind decision: the auth event log,
// metrics, alerts. It must not block.
type Recorder interface {
	RecordBind(BindEvent)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(BindEvent)

// RecordBind calls f.
func (f RecorderFunc) RecordBind(e BindEvent) { f(e) }

// Rules of binds decided before (or without) the second factor. How each
// answers the client (its LDAP result code and message) is the LDAP
// server's table.
const (
	RuleInvalidCredentials   Rule = "invalid_credentials"   // the directory refused the password, or no such user
	RuleDirectoryUnavailable Rule = "directory_unavailable" // the directory (or the lookup account) failed
	RuleEmptyPassword        Rule = "empty_password"        // unauthenticated bind refused
	RuleDirectoryRefused     Rule = "directory_refused"     // the directory refused the bind with a code other than invalidCredentials
	RuleDirectoryBusy        Rule = "directory_busy"        // every password-check connection to the directory was in use
	RuleAnonymous            Rule = "anonymous"             // anonymous bind allowed by allow_anonymous
	RuleAnonymousRefused     Rule = "anonymous_refused"     // anonymous bind refused
	RuleTLSRequired          Rule = "tls_required"          // bind on a plaintext connection where TLS is required
	RuleLookupFailed         Rule = "lookup_failed"         // the entry could not be identified
	RuleIdentityMismatch     Rule = "identity_mismatch"     // the directory authenticated someone other than the entry found
	RuleNoUsername           Rule = "no_username"           // the entry has no username attribute for Duo
	RuleUnsupportedBind      Rule = "unsupported_bind"      // SASL, LDAPv2, an unknown authentication choice or a malformed bind

	// The abuse guards (README "Abuse resistance").
	RuleThrottled      Rule = "throttled"       // too many failed binds from the address, or of the name from it: refused before the directory is asked
	RulePushBudget     Rule = "push_budget"     // the user's push and phone budget is spent, or pushes are blocked after a fraud report: refused without asking Duo
	RulePasscodeBudget Rule = "passcode_budget" // the user's passcode attempts are spent: refused without asking Duo
	RuleBindCache      Rule = "bind_cache"      // password checked by the directory; the second factor of a recent identical bind reused (bind_cache_ttl)
)

// PrimaryRules lists the rules of binds decided before the second factor,
// for bounded metric labels.
func PrimaryRules() []Rule {
	return []Rule{RuleInvalidCredentials, RuleDirectoryUnavailable, RuleEmptyPassword, RuleDirectoryRefused,
		RuleDirectoryBusy, RuleAnonymous, RuleAnonymousRefused, RuleTLSRequired, RuleLookupFailed,
		RuleIdentityMismatch, RuleNoUsername, RuleUnsupportedBind,
		RuleThrottled, RulePushBudget, RulePasscodeBudget, RuleBindCache}
}
