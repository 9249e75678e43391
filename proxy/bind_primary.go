package proxy

import (
	"context"
	"errors"

	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
)

// parseBind reads the bind request. A SASL bind is refused with
// authMethodNotSupported; anything else malformed is a protocol error.
//
// Every bind request, refused or not, first forgets the connection's
// earlier authentication (RFC 4511 §4.2.1): nothing is relayed as an
// earlier user after a bind this proxy did not let succeed.
func (s *Server) parseBind(sess *session, r *gldap.Request) (*attempt, *bindResult) {
	sess.binds++
	sess.resetAuth()
	msg, err := r.GetSimpleBindMessage()
	if err != nil {
		res := (&attempt{}).end(failmode.RuleUnsupportedBind, failmode.AuthPrimary, nil) // SASL
		var bre *gldap.BindRequestError
		if _, serr := r.GetSASLBindMessage(); serr != nil {
			res.code, res.diag, res.err = gldap.ResultProtocolError, "malformed bind request", err
			if errors.As(err, &bre) { // LDAPv2, or an authentication choice nobody knows
				res.code, res.diag, res.err = bre.ResultCode, bre.Diagnostic, nil
			}
			res.event.Msg = res.diag
		}
		return nil, res
	}
	a := &attempt{
		sess:    sess,
		tls:     r.TLSState() != nil,
		name:    msg.UserName,
		empty:   len(msg.Password) == 0,
		request: toLDAPControls(msg.Controls),
		first:   sess.binds == 1,
	}
	a.password, a.passcode, a.factor = splitPasscode(string(msg.Password), s.cfg.PasscodeDelimiter, s.cfg.Factor)
	s.takeBreakGlass(a, string(msg.Password))
	return a, nil
}

// refuseUnauthenticated stops, before anything else, binds on a plaintext
// connection where TLS is required, unauthenticated binds (a name with an
// empty password, RFC 4513 §5.1.2: many directories would answer success),
// and anonymous binds unless the section allows them.
func (s *Server) refuseUnauthenticated(ctx context.Context, a *attempt) *bindResult {
	if s.cfg.RequireTLS && !a.tls {
		return a.end(failmode.RuleTLSRequired, failmode.AuthPrimary, nil)
	}
	if !a.empty {
		if a.password == "" { // only a passcode or factor was typed
			return a.end(failmode.RuleEmptyPassword, failmode.AuthPrimary, nil)
		}
		return nil
	}
	switch {
	case a.name != "":
		return a.end(failmode.RuleEmptyPassword, failmode.AuthPrimary, nil)
	case !s.cfg.AllowAnonymous:
		return a.end(failmode.RuleAnonymousRefused, failmode.AuthPrimary, nil)
	}
	sess := a.sess
	if sess.needsAnonymous(true) {
		if err := sess.dialAnonymous(ctx, s.dir, s.dirEpoch); err != nil {
			return a.end(failmode.RuleDirectoryUnavailable, failmode.AuthPrimary, err)
		}
	}
	sess.letIn()
	res := a.end(failmode.RuleAnonymous, failmode.AuthPrimary, nil)
	res.event.Msg = "anonymous bind allowed by allow_anonymous"
	return res
}
