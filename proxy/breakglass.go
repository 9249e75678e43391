package proxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/ldapgate/ldapgate/failmode"
)

// BreakGlass checks one section's break-glass codes (breakglass.Keeper).
type BreakGlass interface {
	// Code reports whether s has the shape of a break-glass code, and
	// returns it in canonical form.
	Code(s string) (string, bool)
	// Use reports whether code is an unused break-glass code of the entry
	// dn, consuming it durably before it returns true. False with a nil
	// error is a refusal (wrong, used, another user's, user not listed);
	// an error means the codes could not be checked.
	Use(ctx context.Context, dn, code string) (bool, error)
}

// factorBreakGlass is the auth log's factor of a bind whose code was
// checked.
const factorBreakGlass = "break_glass"

// splitBreakGlass separates a break-glass code typed after the password:
// "secret,7K3M-Q9TZ-..." is password "secret" and that code, when what
// follows the last delimiter is one (code reads it). Anything else leaves
// the password whole, as splitPasscode does; an explicit ",push" after a
// code-shaped tail keeps the tail in the password.
func splitBreakGlass(password, delimiter string, code func(string) (string, bool)) (pw, bg string, ok bool) {
	if delimiter == "" || code == nil {
		return password, "", false
	}
	i := strings.LastIndex(password, delimiter)
	if i < 0 {
		return password, "", false
	}
	c, ok := code(password[i+len(delimiter):])
	if !ok {
		return password, "", false
	}
	return password[:i], c, true
}

// takeBreakGlass moves a break-glass code from the typed password into the
// attempt, when the section accepts codes. The code is a secret: it is
// never logged.
func (s *Server) takeBreakGlass(a *attempt, typed string) {
	if s.cfg.BreakGlass == nil {
		return
	}
	if pw, code, ok := splitBreakGlass(typed, s.cfg.PasscodeDelimiter, s.cfg.BreakGlass.Code); ok {
		a.password, a.passcode, a.factor, a.breakGlass = pw, "", s.cfg.Factor, code
	}
}

// refuseBreakGlass refuses at once, without asking Duo, a bind that
// carries a code while Duo is not known unreachable: the user meant to
// skip Duo, and the code stays valid.
func (s *Server) refuseBreakGlass(a *attempt) (failmode.Decision, bool) {
	if a.breakGlass == "" || s.cfg.DuoUnreachable() {
		return failmode.Decision{}, false
	}
	s.log.Warn("break-glass code refused: duo is not known unreachable", "conn", a.sess.id, "client_ip", a.sess.clientIP, "dn", a.id.DN)
	return failmode.BreakGlassRefused(), true
}

// tryBreakGlass checks the attempt's code when failmode's decision d is
// one a code may override (failmode.BreakGlassEligible), and returns the
// decision that stands. A code that cannot be checked leaves d (a denial)
// and adds why to the error logged.
func (s *Server) tryBreakGlass(ctx context.Context, a *attempt, ev *failmode.BindEvent, d failmode.Decision, sfErr error) (failmode.Decision, error) {
	if a.breakGlass == "" {
		return d, sfErr
	}
	unreachable := s.cfg.DuoUnreachable()
	if !failmode.BreakGlassEligible(d, unreachable) {
		return d, sfErr
	}
	ev.Factor = factorBreakGlass
	ok, err := s.cfg.BreakGlass.Use(ctx, a.id.DN, a.breakGlass)
	if err != nil {
		s.log.Error("break-glass code could not be checked; denied", "conn", a.sess.id, "client_ip", a.sess.clientIP, "dn", a.id.DN, "err", err)
		return d, fmt.Errorf("break-glass: %w", err)
	}
	decision := failmode.BreakGlass(d, unreachable, ok)
	if ok {
		s.log.Error("break-glass code used: allowed without second factor while duo is unreachable",
			"conn", a.sess.id, "client_ip", a.sess.clientIP, "dn", a.id.DN, "rule", decision.Rule)
	} else {
		s.log.Warn("break-glass code refused", "conn", a.sess.id, "client_ip", a.sess.clientIP, "dn", a.id.DN, "rule", decision.Rule)
	}
	return decision, sfErr
}
