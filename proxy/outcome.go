package proxy

import (
	"errors"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
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

// outcomes is the one table from a primary rule (failmode.PrimaryRules) to
// the LDAP result code,
// the client message and the status. Decisions after the second factor
// come from failmode.Decision. Two rows are completed where they happen:
// directory_refused relays the directory's own code and message, and
// unsupported_bind answers with the code the request calls for.
var outcomes = map[failmode.Rule]outcome{
	failmode.RuleTLSRequired:          {gldap.ResultConfidentialityRequired, msgTLSRequired, failmode.StatusError},
	failmode.RuleEmptyPassword:        {gldap.ResultInvalidCredentials, msgEmptyPassword, failmode.StatusReject},
	failmode.RuleAnonymous:            {gldap.ResultSuccess, "", failmode.StatusAllow},
	failmode.RuleAnonymousRefused:     {gldap.ResultInvalidCredentials, msgAnonymous, failmode.StatusReject},
	failmode.RuleUnsupportedBind:      {gldap.ResultAuthMethodNotSupported, msgSASL, failmode.StatusError},
	failmode.RuleInvalidCredentials:   {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	failmode.RuleDirectoryRefused:     {gldap.ResultOperationsError, "", failmode.StatusError},
	failmode.RuleDirectoryUnavailable: {gldap.ResultUnavailable, msgDirectoryDown, failmode.StatusError},
	failmode.RuleDirectoryBusy:        {gldap.ResultBusy, msgDirectoryBusy, failmode.StatusError},
	failmode.RuleLookupFailed:         {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	failmode.RuleIdentityMismatch:     {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	failmode.RuleNoUsername:           {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	// The guards (guards.go). A throttled bind answers as a wrong password
	// does: no oracle telling a guesser that it was throttled.
	failmode.RuleThrottled:      {gldap.ResultInvalidCredentials, msgInvalid, failmode.StatusReject},
	failmode.RulePushBudget:     {gldap.ResultInvalidCredentials, msgTooMany, failmode.StatusReject},
	failmode.RulePasscodeBudget: {gldap.ResultInvalidCredentials, msgTooMany, failmode.StatusReject},
	failmode.RuleBindCache:      {gldap.ResultSuccess, "", failmode.StatusAllow},
}

// end ends the bind with the outcome of rule. err, when set, is logged for
// the operator (never sent to the client).
func (a *attempt) end(rule failmode.Rule, stage failmode.AuthStage, err error) *bindResult {
	o, ok := outcomes[rule]
	if !ok || (o.code == gldap.ResultSuccess) != (o.status == failmode.StatusAllow) {
		// A rule without a row is a bug; it must never answer success.
		o = outcome{gldap.ResultOther, msgDirectoryDown, failmode.StatusError}
		err = errors.Join(err, errors.New("proxy: bind outcome without a table row: "+string(rule)))
	}
	return &bindResult{code: o.code, diag: o.diag, err: err,
		event: failmode.BindEvent{BindName: a.name, DN: a.id.DN, Stage: stage, Status: o.status, Rule: rule, Msg: o.diag}}
}

// directoryRefused relays the directory's own refusal of a bind: its code
// and message, rule invalid_credentials for 49 and directory_refused for
// anything else.
func (a *attempt) directoryRefused(le *ldap.Error, controls []ldap.Control) *bindResult {
	rule := failmode.RuleInvalidCredentials
	if le.ResultCode != ldap.LDAPResultInvalidCredentials {
		rule = failmode.RuleDirectoryRefused
	}
	out := a.end(rule, failmode.AuthPrimary, nil)
	out.code, out.diag = int(le.ResultCode), diagnostic(le)
	out.event.Msg = "directory refused the bind: " + ldap.LDAPResultCodeMap[le.ResultCode]
	out.controls = controls
	return out
}

// lookupRule names a failed user lookup: a name that matches no single
// entry is invalid credentials; every lookup connection at its bound is
// busy; anything else (the directory down, the
// lookup account refused) is the directory being unavailable, never the
// user's password being wrong.
func lookupRule(err error) failmode.Rule {
	if errors.Is(err, directory.ErrNoSuchUser) || errors.Is(err, directory.ErrAmbiguousUser) {
		return failmode.RuleInvalidCredentials
	}
	if errors.Is(err, directory.ErrLookupBusy) {
		return failmode.RuleDirectoryBusy
	}
	return failmode.RuleDirectoryUnavailable
}
