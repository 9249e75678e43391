package proxy

import (
	"context"
	"errors"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
)

// identify works out who passed the password: the DN decides exemptions;
// the entry gives the Duo username and the groups that make a user
// privileged. Membership that cannot be read counts as privileged.
func (s *Server) identify(ctx context.Context, a *attempt) *bindResult {
	sess := a.sess
	fail := func(code int, diag, rule string, stage Stage, err error) *bindResult {
		sess.closeUpstream()
		return a.reject(code, diag, rule, stage, err)
	}
	if a.id.DN == "" && !isDN(a.name) {
		// No lookup account: find the entry as the user just bound.
		id, err := s.dir.FindUser(ctx, sess.up, a.name)
		if err != nil {
			code, diag, rule := lookupFailure(err)
			return fail(code, diag, rule, StagePrimary, err)
		}
		a.id = id
	}
	dn, perr := ldap.ParseDN(a.dn())
	if perr != nil {
		return fail(gldap.ResultInvalidCredentials, msgInvalid, RuleLookupFailed, StagePrimary, perr)
	}
	a.subject = failmode.Subject{
		ExemptDN:    s.isExempt(dn),
		PrimaryBind: a.first && s.cfg.ExemptPrimaryBind,
	}
	if a.subject.ExemptDN {
		return nil
	}
	var err error
	if a.id.Username != "" {
		// Resolving the name already read the username: only the groups
		// are missing.
		a.id.Groups, err = s.dir.Groups(ctx, sess.up, a.dn())
	} else {
		var full Identity
		if full, err = s.dir.Identify(ctx, sess.up, a.dn()); full.Username != "" {
			a.id = full
		}
	}
	a.subject.SecureGroup = err != nil || s.inSecureGroup(a.id.Groups)
	if a.id.Username != "" {
		return nil
	}
	// Without a Duo username there is no second factor to ask.
	if err != nil {
		code, diag, rule := lookupFailure(err)
		return fail(code, diag, rule, StageSecondary, err)
	}
	return fail(gldap.ResultInvalidCredentials, msgInvalid, RuleNoUsername, StageSecondary,
		errors.New("the entry has no username attribute"))
}

// decide plans (exemptions, primary-only mode), asks the second factor when
// the plan says so, and lets failmode decide. It always ends the bind.
func (s *Server) decide(ctx context.Context, a *attempt) *bindResult {
	sess := a.sess
	policy := s.cfg.Policy()
	decision, decided := failmode.Plan(policy, a.subject)
	ev := BindEvent{DN: a.dn(), Username: a.id.Username, Stage: StageSecondary}
	var sfErr error
	if !decided {
		ev.Factor = string(a.factor)
		verdict, err := s.sf.Verify(ctx, failmode.Attempt{Username: a.id.Username, ClientIP: sess.clientIP, Factor: a.factor, Passcode: a.passcode})
		outcome := failmode.OutcomeOf(verdict, err)
		if err != nil && ctx.Err() != nil {
			outcome.Detail = "client went away"
		}
		decision = failmode.Decide(policy, a.subject, outcome)
		sfErr = err
	}
	ev.Status = decision.Status()
	ev.Rule = string(decision.Rule)
	ev.Failmode = decision.Failmode
	ev.Msg = decision.Reason

	if !decision.Allow {
		// The upstream connection is authenticated as the user: it must not
		// outlive a refusal.
		sess.closeUpstream()
		return &bindResult{code: gldap.ResultInvalidCredentials, diag: decision.Diagnostic, event: ev, err: sfErr}
	}
	sess.authed = true
	sess.dn = a.dn()
	if decision.Failmode || decision.Rule == failmode.RulePrimaryOnly {
		s.log.Warn("allowed a bind without second factor", "conn", sess.id, "dn", a.dn(), "rule", decision.Rule, "reason", decision.Reason)
	}
	return &bindResult{code: gldap.ResultSuccess, controls: a.response, event: ev}
}
