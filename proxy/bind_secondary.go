package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// identify works out what the authenticated entry is allowed: its DN
// decides exemptions; its username goes to Duo; its groups make it
// privileged. Membership that cannot be read counts as privileged.
func (s *Server) identify(ctx context.Context, a *attempt) *bindResult {
	sess := a.sess
	fail := func(rule failmode.Rule, stage failmode.AuthStage, err error) *bindResult {
		sess.closeUpstream()
		return a.end(rule, stage, err)
	}
	entry, perr := dn.Parse(a.id.DN)
	if perr != nil {
		return fail(failmode.RuleLookupFailed, failmode.AuthPrimary, perr)
	}
	a.subject = failmode.Subject{
		ExemptDN:    s.isExempt(entry),
		PrimaryBind: a.first && s.cfg.ExemptPrimaryBind,
	}
	if a.subject.ExemptDN {
		return nil
	}
	privileged, err := s.privileged(ctx, sess.up, a.id.DN)
	a.subject.SecureGroup = privileged
	if err != nil {
		s.log.Warn("secure group membership unknown: counted as privileged", "conn", sess.id, "dn", a.id.DN, "err", err)
	}
	if a.id.Username == "" {
		// Without a Duo username there is no second factor to ask.
		return fail(failmode.RuleNoUsername, failmode.AuthSecondary, errors.New("the entry has no username attribute"))
	}
	return nil
}

// decide plans (exemptions, primary-only mode), asks the second factor when
// the plan says so, and lets failmode decide. It always ends the bind.
func (s *Server) decide(ctx context.Context, a *attempt) *bindResult {
	sess := a.sess
	policy := s.cfg.Policy()
	decision, decided := failmode.Plan(policy, a.subject)
	ev := failmode.BindEvent{BindName: a.name, DN: a.id.DN, Username: a.id.Username, Stage: failmode.AuthSecondary}
	var sfErr error
	if !decided {
		decision, decided = s.refuseBreakGlass(a)
	}
	if !decided {
		if res := s.cached(ctx, a); res != nil {
			return res
		}
		budget := s.cfg.Guards.Budget
		at := failmode.Attempt{Username: a.id.Username, ClientIP: sess.clientIP, Factor: a.factor, Passcode: a.passcode, Server: s.cfg.Name}
		if budget != nil {
			// Spent before Duo is contacted at all; Spend just before the
			// second factor is sent, so only what reaches the user counts.
			f := factorOf(a)
			if spent, err := budget.Spent(ctx, a.id.Username, f); spent || err != nil {
				return s.overBudget(ctx, a, f, err)
			}
			at.Admit = func(ctx context.Context, f failmode.Factor) error {
				ok, err := budget.Spend(ctx, a.id.Username, f)
				if err != nil {
					return fmt.Errorf("%w: %w", errOverBudget, err)
				}
				if !ok {
					return errOverBudget
				}
				return nil
			}
		}
		ev.Factor = string(a.factor)
		released := s.releaseWhileWaiting(a)
		verdict, err := s.verify(ctx, at)
		a.released = released()
		if errors.Is(err, errOverBudget) {
			return s.overBudget(ctx, a, factorOf(a), err)
		}
		if budget != nil && err == nil {
			if serr := budget.Settle(context.WithoutCancel(ctx), a.id.Username, factorOf(a), verdict); serr != nil {
				s.log.Warn("second factor budget", "conn", sess.id, "err", serr)
			}
			if verdict.Fraud {
				s.log.Warn("push reported as fraud: pushes blocked for the user", "user", a.id.Username, "dn", a.id.DN, "client_ip", sess.clientIP)
				s.guardAlert(GuardAlert{Rule: failmode.RuleDenied, Fraud: true, Username: a.id.Username, DN: a.id.DN, ClientIP: sess.clientIP})
			}
		}
		outcome := failmode.OutcomeOf(verdict, err)
		if err != nil && ctx.Err() != nil {
			// The client hung up (or the server is stopping): whatever the
			// call failed with, it is our side's doing, not Duo's.
			outcome = failmode.Outcome{Class: failmode.Local, Stage: outcome.Stage, Detail: "client went away"}
		}
		decision = failmode.Decide(policy, a.subject, outcome)
		sfErr = err
		decision, sfErr = s.tryBreakGlass(ctx, a, &ev, decision, sfErr)
	}
	ev.Status = decision.Status()
	ev.Rule = decision.Rule
	ev.Failmode = decision.Failmode
	ev.Cause = decision.Cause
	ev.Msg = decision.Reason

	if !decision.Allow {
		// The upstream connection is authenticated as the user: it must not
		// outlive a refusal.
		sess.closeUpstream()
		return &bindResult{code: gldap.ResultInvalidCredentials, diag: decision.Diagnostic, event: ev, err: sfErr}
	}
	if a.released {
		if res := s.rebind(ctx, a, &ev); res != nil {
			return res
		}
	}
	sess.letIn()
	if c := s.cfg.Guards.Cache; c != nil && decision.Rule == failmode.RuleSecondFactor {
		// Only a success Duo's second factor proved is remembered: never
		// failmode, primary-only, bypass or an exemption.
		if err := c.Remember(context.WithoutCancel(ctx), a.id.DN, sess.clientIP, a.password); err != nil {
			s.log.Warn("bind cache remember", "conn", sess.id, "err", err)
		}
	}
	if decision.Failmode || decision.Rule == failmode.RulePrimaryOnly {
		s.log.Warn("allowed a bind without second factor", "conn", sess.id, "dn", a.id.DN, "rule", decision.Rule, "reason", decision.Reason)
	}
	return &bindResult{code: gldap.ResultSuccess, controls: a.response, event: ev}
}

// verify asks the second factor. A panic in it is ldapgate's own fault: it
// denies the bind as a Local error instead of unwinding through the
// pipeline.
func (s *Server) verify(ctx context.Context, at failmode.Attempt) (v failmode.Verdict, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = failmode.Verdict{}, &failmode.Error{Class: failmode.Local, Stage: failmode.StagePreauth,
				Detail: "second factor panicked", Err: fmt.Errorf("panic: %v", p)}
		}
	}()
	return s.sf.Verify(ctx, at)
}

// releaseWhileWaiting closes the bind's directory connection, bound as the
// user, once the second factor has taken ReleaseUpstreamAfter: a push
// waiting for its user then holds no directory connection (nor its
// descriptor and goroutines). The returned func stops the timer and
// reports whether the connection was released; rebind restores it.
//
// Only with a lookup account: the password then went to the directory as
// the entry's own DN (a.tried), so binding that DN again authenticates the
// same entry. Without one the bind name went as typed and the entry was
// confirmed with Who Am I on this very connection, which is kept.
func (s *Server) releaseWhileWaiting(a *attempt) (released func() bool) {
	up := a.sess.up
	if s.cfg.ReleaseUpstreamAfter <= 0 || up == nil || !s.dir.HasLookupAccount() || a.tried != a.id.DN {
		return func() bool { return false }
	}
	t := time.AfterFunc(s.cfg.ReleaseUpstreamAfter, func() { up.Close() })
	return func() bool {
		if t.Stop() {
			return false
		}
		// The connection is closed, or being closed: it is no use to anyone.
		a.sess.closeUpstream()
		return true
	}
}

// rebind gives an allowed bind whose connection was released while it
// waited a new one, bound with the same DN and password. A directory that
// now refuses the password (it changed meanwhile) or cannot be reached
// denies the bind: nothing is relayed as a user the directory did not just
// accept.
func (s *Server) rebind(ctx context.Context, a *attempt, ev *failmode.BindEvent) *bindResult {
	fail := func(res *bindResult, err error) *bindResult {
		a.sess.closeUpstream()
		res.event.Username, res.event.Factor, res.event.Stage = ev.Username, ev.Factor, failmode.AuthSecondary
		res.err = err
		return res
	}
	conn, err := s.dir.Dial(ctx)
	if err != nil {
		err = fmt.Errorf("dial after the second factor: %w", err)
		return fail(a.end(failmode.RuleDirectoryUnavailable, failmode.AuthSecondary, err), err)
	}
	if _, err := s.dir.Bind(ctx, conn, a.tried, a.password, a.request); err != nil {
		conn.Close()
		werr := fmt.Errorf("bind again after the second factor: %w", err)
		if le, ok := directory.Answered(err); ok {
			return fail(a.directoryRefused(le, nil), werr)
		}
		return fail(a.end(failmode.RuleDirectoryUnavailable, failmode.AuthSecondary, werr), werr)
	}
	a.sess.adopt(conn, s.dirEpoch)
	return nil
}
