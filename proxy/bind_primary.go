package proxy

import (
	"context"
	"errors"

	"github.com/jimlambrt/gldap"
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
		res := (&attempt{}).end(RuleUnsupportedBind, StagePrimary, nil) // SASL
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
	return a, nil
}

// refuseUnauthenticated stops, before anything else, binds on a plaintext
// connection where TLS is required, unauthenticated binds (a name with an
// empty password, RFC 4513 §5.1.2: many directories would answer success),
// and anonymous binds unless the section allows them.
func (s *Server) refuseUnauthenticated(ctx context.Context, a *attempt) *bindResult {
	if s.cfg.RequireTLS && !a.tls {
		return a.end(RuleTLSRequired, StagePrimary, nil)
	}
	if !a.empty {
		if a.password == "" { // only a passcode or factor was typed
			return a.end(RuleEmptyPassword, StagePrimary, nil)
		}
		return nil
	}
	switch {
	case a.name != "":
		return a.end(RuleEmptyPassword, StagePrimary, nil)
	case !s.cfg.AllowAnonymous:
		return a.end(RuleAnonymousRefused, StagePrimary, nil)
	}
	sess := a.sess
	if sess.needsAnonymous(true) {
		if err := sess.dialAnonymous(ctx, s.dir); err != nil {
			return a.end(RuleDirectoryUnavailable, StagePrimary, err)
		}
	}
	sess.letIn("")
	res := a.end(RuleAnonymous, StagePrimary, nil)
	res.event.Msg = "anonymous bind allowed by allow_anonymous"
	return res
}
