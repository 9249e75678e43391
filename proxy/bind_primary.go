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
		refused := func(code int, diag, rule string, err error) (*attempt, *bindResult) {
			return nil, &bindResult{code: code, diag: diag, err: err,
				event: BindEvent{Stage: StagePrimary, Status: failmode.StatusError, Rule: rule, Msg: diag}}
		}
		var bre *gldap.BindRequestError
		switch _, serr := r.GetSASLBindMessage(); {
		case serr == nil:
			return refused(gldap.ResultAuthMethodNotSupported, msgSASL, RuleUnsupportedBind, nil)
		case errors.As(err, &bre):
			// LDAPv2, or an authentication choice nobody knows.
			return refused(bre.ResultCode, bre.Diagnostic, RuleUnsupportedBind, nil)
		}
		return refused(gldap.ResultProtocolError, "malformed bind request", RuleUnsupportedBind, err)
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
		return a.reject(gldap.ResultConfidentialityRequired, msgTLSRequired, RuleTLSRequired, StagePrimary, nil)
	}
	if !a.empty {
		if a.password == "" { // only a passcode or factor was typed
			return a.reject(gldap.ResultInvalidCredentials, msgEmptyPassword, RuleEmptyPassword, StagePrimary, nil)
		}
		return nil
	}
	switch {
	case a.name != "":
		return a.reject(gldap.ResultInvalidCredentials, msgEmptyPassword, RuleEmptyPassword, StagePrimary, nil)
	case !s.cfg.AllowAnonymous:
		return a.reject(gldap.ResultInvalidCredentials, msgAnonymous, RuleAnonymousRefused, StagePrimary, nil)
	}
	sess := a.sess
	if sess.upBound {
		sess.closeUpstream() // still bound as an earlier user
	}
	if _, err := sess.upstream(ctx, s.dir); err != nil {
		return a.reject(gldap.ResultUnavailable, msgDirectoryDown, RuleDirectoryUnavailable, StagePrimary, err)
	}
	sess.authed = true
	return &bindResult{code: gldap.ResultSuccess,
		event: BindEvent{Stage: StagePrimary, Status: failmode.StatusAllow, Rule: RuleAnonymous, Msg: "anonymous bind allowed by allow_anonymous"}}
}
