package proxy

import (
	"context"
	"errors"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// Throttle limits failed binds per client address and per (bind name,
// client address) (package guard's Throttle). Errors are the store's; a
// Throttled that fails counts as throttled.
type Throttle interface {
	Throttled(ctx context.Context, name, addr string) (bool, error)
	Failed(ctx context.Context, name, addr string) error
	Succeeded(ctx context.Context, name, addr string) error
}

// FactorBudget limits the pushes, calls and passcodes sent for one Duo
// user (package guard's Pushes). Spent is asked before Duo is contacted,
// Spend just before the second factor is sent, Settle with Duo's verdict;
// FirstRefusal tells whether a refusal is the first of its window (one
// alert). A Spent or Spend that fails counts as spent.
type FactorBudget interface {
	Spent(ctx context.Context, username string, f failmode.Factor) (bool, error)
	Spend(ctx context.Context, username string, f failmode.Factor) (bool, error)
	Settle(ctx context.Context, username string, f failmode.Factor, v failmode.Verdict) error
	FirstRefusal(ctx context.Context, username string) (bool, error)
}

// BindCache remembers binds that passed the directory and Duo (package
// guard's Cache). A Recall that fails is a miss.
type BindCache interface {
	Recall(ctx context.Context, entry, addr, password string) (bool, error)
	Remember(ctx context.Context, entry, addr, password string) error
	Evict(ctx context.Context, entry string) error
}

// Guards are a section's abuse guards (README "Abuse resistance"). A nil
// field is a guard the section does not have.
type Guards struct {
	Throttle Throttle
	Budget   FactorBudget
	Cache    BindCache
	// OnAlert, if set, is told of what operators must hear of at once (a
	// spent push budget, a fraud report); it must not block.
	OnAlert func(GuardAlert)
}

// GuardAlert is one abuse alert: the rule (push_budget, or denied with
// Fraud for a fraud report), whom it is about and from where.
type GuardAlert struct {
	Rule     failmode.Rule
	Fraud    bool
	Server   string
	Username string
	DN       string
	ClientIP string
}

// errOverBudget: the budget refused the second factor just before it was
// sent (another bind of the user spent the last attempt meanwhile).
var errOverBudget = errors.New("second factor budget spent")

// Client-facing diagnostics of the guards.
const (
	msgTooMany = "too many login requests; try again later"
)

// throttle refuses, before the directory is asked (no bind, no lookup),
// a bind from an address that failed too often, or of a name that failed
// too often from it. The answer is a wrong password's.
func (s *Server) throttle(ctx context.Context, a *attempt) *bindResult {
	t := s.cfg.Guards.Throttle
	if t == nil {
		return nil
	}
	over, err := t.Throttled(ctx, a.name, a.sess.clientIP)
	if !over {
		return nil
	}
	a.sess.closeUpstream()
	res := a.end(failmode.RuleThrottled, failmode.AuthPrimary, err)
	res.event.Msg = "throttled: too many failed binds from this address"
	return res
}

// guardAfter tells the guards how the bind ended: a password the
// directory refused counts against the throttles; a bind let in clears
// its name's failures from that address; any bind that did not succeed
// evicts the cached binds of its entry. It runs detached from the
// client's context: a client hanging up as soon as it sent a wrong
// password must still be counted.
func (s *Server) guardAfter(ctx context.Context, a *attempt, res bindResult) {
	g := s.cfg.Guards
	ctx = context.WithoutCancel(ctx)
	ip := a.sess.clientIP
	if t := g.Throttle; t != nil {
		var err error
		switch {
		case res.event.Rule == failmode.RuleInvalidCredentials:
			err = t.Failed(ctx, a.name, ip)
		case res.code == gldap.ResultSuccess && res.event.Rule != failmode.RuleAnonymous:
			err = t.Succeeded(ctx, a.name, ip)
		}
		if err != nil {
			s.log.Warn("throttle", "conn", a.sess.id, "client_ip", ip, "err", err)
		}
	}
	if c := g.Cache; c != nil && res.code != gldap.ResultSuccess {
		entry := a.id.DN
		if entry == "" {
			entry = a.tried
		}
		if _, err := dn.Parse(entry); err == nil {
			if err := c.Evict(ctx, entry); err != nil {
				s.log.Warn("bind cache evict", "conn", a.sess.id, "err", err)
			}
		}
	}
}

// cached lets a bind in on a remembered success: the directory accepted
// the password just now, and the same entry passed Duo from the same
// address with the same password within bind_cache_ttl.
func (s *Server) cached(ctx context.Context, a *attempt) *bindResult {
	c := s.cfg.Guards.Cache
	if c == nil {
		return nil
	}
	hit, err := c.Recall(ctx, a.id.DN, a.sess.clientIP, a.password)
	if err != nil {
		s.log.Warn("bind cache recall", "conn", a.sess.id, "err", err)
	}
	if !hit {
		return nil
	}
	a.sess.letIn()
	res := a.end(failmode.RuleBindCache, failmode.AuthSecondary, nil)
	res.event.Username = a.id.Username
	res.event.Msg = "second factor of a recent identical bind reused (bind_cache_ttl)"
	res.controls = a.response
	return res
}

// overBudget refuses a bind whose second-factor budget is spent, without
// (further) asking Duo, and alerts on the first refusal of the window.
func (s *Server) overBudget(ctx context.Context, a *attempt, f failmode.Factor, err error) *bindResult {
	a.sess.closeUpstream() // bound as the user, who is not let in
	rule := failmode.RulePushBudget
	if f == failmode.FactorPasscode {
		rule = failmode.RulePasscodeBudget
	}
	res := a.end(rule, failmode.AuthSecondary, err)
	res.event.Username = a.id.Username
	res.event.Factor = string(f)
	res.event.Msg = "second factor budget spent: refused without asking Duo"
	if rule == failmode.RulePushBudget {
		first, ferr := s.cfg.Guards.Budget.FirstRefusal(context.WithoutCancel(ctx), a.id.Username)
		if first || ferr != nil {
			s.log.Warn("push budget spent: binds refused without a push", "user", a.id.Username, "dn", a.id.DN, "client_ip", a.sess.clientIP)
			s.guardAlert(GuardAlert{Rule: rule, Username: a.id.Username, DN: a.id.DN, ClientIP: a.sess.clientIP})
		}
	}
	return res
}

func (s *Server) guardAlert(al GuardAlert) {
	al.Server = s.cfg.Name
	if f := s.cfg.Guards.OnAlert; f != nil {
		f(al)
	}
}

// factorOf is the factor an attempt spends: a typed passcode, or the
// factor asked for.
func factorOf(a *attempt) failmode.Factor {
	if a.passcode != "" {
		return failmode.FactorPasscode
	}
	return a.factor
}
