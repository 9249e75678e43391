package proxy

import (
	"errors"
	"slices"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
)

// Client-facing diagnostics for binds decided before the second factor.
// Short and generic: the detail goes to the operator's log, not to whoever
// is guessing passwords.
const (
	msgEmptyPassword = "unauthenticated bind (empty password) is not allowed"
	msgAnonymous     = "anonymous bind is not allowed"
	msgSASL          = "SASL bind is not supported; use a simple bind"
	msgTLSRequired   = "StartTLS is required before bind"
	msgInvalid       = "invalid credentials"
	msgDirectoryDown = "directory unavailable"
	msgDirectoryBusy = "directory busy, try again"
	msgBindFirst     = "bind first"
)

// outcome is how a bind decided before (or without) the second factor
// answers the client and reads in the auth log.
type outcome struct {
	code   int    // LDAP result code
	diag   string // what the client is told
	status failmode.Status
}

// outcomes is the one table from a primary rule to the LDAP result code,
// the client message and the status. Decisions after the second factor
// come from failmode.Decision. Two rows are completed where they happen:
// directory_refused relays the directory's own code and message, and
// unsupported_bind answers with the code the request calls for.
var outcomes = map[string]outcome{
	RuleTLSRequired:          {gldap.ResultConfidentialityRequired, msgTLSRequired, failmode.StatusError},
	RuleEmptyPassword:        {gldap.ResultInvalidCredentials, msgEmptyPassword, failmode.StatusReject},
	RuleAnonymous:            {gldap.ResultSuccess, "", failmode.StatusAllow},
	RuleAnonymousRefused:     {gldap.ResultInvalidCredentials, msgAnonymous, failmode.StatusReject},
	RuleUnsupportedBind:      {gldap.ResultAuthMethodNotSupported, msgSASL, failmode.StatusError},
	RuleInvalidCredentials:   {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	RuleDirectoryRefused:     {gldap.ResultOperationsError, "", failmode.StatusError},
	RuleDirectoryUnavailable: {gldap.ResultUnavailable, msgDirectoryDown, failmode.StatusError},
	RuleDirectoryBusy:        {gldap.ResultBusy, msgDirectoryBusy, failmode.StatusError},
	RuleLookupFailed:         {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	RuleIdentityMismatch:     {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	RuleNoUsername:           {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
}

// PrimaryRules lists the rules of the outcomes table, for bounded metric
// labels.
func PrimaryRules() []string {
	rules := make([]string, 0, len(outcomes))
	for r := range outcomes {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	return rules
}

// end ends the bind with the outcome of rule. err, when set, is logged for
// the operator (never sent to the client).
func (a *attempt) end(rule string, stage Stage, err error) *bindResult {
	o, ok := outcomes[rule]
	if !ok || (o.code == gldap.ResultSuccess) != (o.status == failmode.StatusAllow) {
		// A rule without a row is a bug; it must never answer success.
		o = outcome{gldap.ResultOther, msgDirectoryDown, failmode.StatusError}
		err = errors.Join(err, errors.New("proxy: bind outcome without a table row: "+rule))
	}
	return &bindResult{code: o.code, diag: o.diag, err: err,
		event: BindEvent{BindName: a.name, DN: a.id.DN, Stage: stage, Status: o.status, Rule: rule, Msg: o.diag}}
}

// directoryRefused relays the directory's own refusal of a bind: its code
// and message, rule invalid_credentials for 49 and directory_refused for
// anything else.
func (a *attempt) directoryRefused(le *ldap.Error, controls []ldap.Control) *bindResult {
	rule := RuleInvalidCredentials
	if le.ResultCode != ldap.LDAPResultInvalidCredentials {
		rule = RuleDirectoryRefused
	}
	out := a.end(rule, StagePrimary, nil)
	out.code, out.diag = int(le.ResultCode), diagnostic(le)
	out.event.Msg = "directory refused the bind: " + ldap.LDAPResultCodeMap[le.ResultCode]
	out.controls = controls
	return out
}

// lookupRule names a failed user lookup: a name that matches no single
// entry is invalid credentials; anything else (the directory down, the
// lookup account refused) is the directory being unavailable, never the
// user's password being wrong.
func lookupRule(err error) string {
	if errors.Is(err, ErrNoSuchUser) || errors.Is(err, ErrAmbiguousUser) {
		return RuleInvalidCredentials
	}
	return RuleDirectoryUnavailable
}
