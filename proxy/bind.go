package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/failmode"
)

// Client-facing diagnostics for primary failures. Short and generic: the
// detail goes to the operator's log, not to whoever is guessing passwords.
const (
	msgEmptyPassword = "unauthenticated bind (empty password) is not allowed"
	msgAnonymous     = "anonymous bind is not allowed"
	msgSASL          = "SASL bind is not supported; use a simple bind"
	msgTLSRequired   = "StartTLS is required before bind"
	msgInvalid       = "invalid credentials"
	msgDirectoryDown = "directory unavailable"
	msgBindFirst     = "bind first"
)

// bindResult is what a bind ends in: the LDAP response and the event.
type bindResult struct {
	code     int
	diag     string
	controls []ldap.Control
	event    BindEvent
	// err, when set, is logged for the operator (never sent to the client).
	err error
}

func (s *Server) handleBind(w *gldap.ResponseWriter, r *gldap.Request) {
	start := time.Now()
	sess := s.session(r)
	res := func() bindResult {
		// Deferred, so that a panic (recovered by gldap) cannot leave the
		// session locked and the connection's close hook waiting forever.
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return s.bind(r.Context(), sess, r)
	}()

	resp := r.NewBindResponse(gldap.WithResponseCode(res.code))
	if res.diag != "" {
		resp.SetDiagnosticMessage(res.diag)
	}
	if len(res.controls) > 0 {
		ctrls := make([]gldap.Control, len(res.controls))
		for i, c := range res.controls {
			ctrls[i] = c
		}
		resp.SetControls(ctrls...)
	}
	if err := w.Write(resp); err != nil {
		s.log.Debug("write bind response", "conn", sess.id, "err", err)
	}

	ev := res.event
	ev.Time = start.UTC()
	ev.Duration = time.Since(start)
	ev.Server = s.cfg.Name
	ev.ClientIP = sess.clientIP
	if ev.Status != "" {
		s.rec.RecordBind(ev)
	}
	if res.err != nil {
		s.log.Warn("bind", "conn", sess.id, "client_ip", sess.clientIP, "dn", ev.DN, "rule", ev.Rule, "err", res.err)
	}
}

// bind is the pipeline. It runs with the session locked exclusively.
func (s *Server) bind(ctx context.Context, sess *session, r *gldap.Request) bindResult {
	msg, err := r.GetSimpleBindMessage()
	if err != nil {
		if _, serr := r.GetSASLBindMessage(); serr == nil {
			sess.resetAuth()
			return bindResult{code: gldap.ResultAuthMethodNotSupported, diag: msgSASL}
		}
		return bindResult{code: gldap.ResultProtocolError, diag: "malformed bind request"}
	}
	sess.binds++
	first := sess.binds == 1
	sess.resetAuth()

	name := msg.UserName
	reject := func(code int, diag, rule string, stage Stage, err error) bindResult {
		status := failmode.StatusReject
		if code != gldap.ResultInvalidCredentials {
			status = failmode.StatusError
		}
		return bindResult{code: code, diag: diag, err: err,
			event: BindEvent{DN: name, Stage: stage, Status: status, Rule: rule, Msg: diag}}
	}

	if s.cfg.RequireTLS && r.TLSState() == nil {
		return reject(gldap.ResultConfidentialityRequired, msgTLSRequired, RuleTLSRequired, StagePrimary, nil)
	}

	// 1. Unauthenticated and anonymous binds, before anything else.
	if len(msg.Password) == 0 {
		if name == "" && s.cfg.AllowAnonymous {
			if sess.upBound {
				sess.closeUpstream() // still bound as an earlier user
			}
			if _, err := sess.upstream(ctx, s.dir); err != nil {
				return reject(gldap.ResultUnavailable, msgDirectoryDown, RuleDirectoryUnavailable, StagePrimary, err)
			}
			sess.authed = true
			return bindResult{code: gldap.ResultSuccess,
				event: BindEvent{Stage: StagePrimary, Status: failmode.StatusAllow, Rule: RuleAnonymous, Msg: "anonymous bind allowed by allow_anonymous"}}
		}
		if name == "" {
			return reject(gldap.ResultInvalidCredentials, msgAnonymous, RuleAnonymous, StagePrimary, nil)
		}
		return reject(gldap.ResultInvalidCredentials, msgEmptyPassword, RuleEmptyPassword, StagePrimary, nil)
	}

	// 2. A passcode or factor appended to the password.
	password, passcode, factor := splitPasscode(string(msg.Password), s.cfg.PasscodeDelimiter, s.cfg.Factor)
	if password == "" {
		return reject(gldap.ResultInvalidCredentials, msgEmptyPassword, RuleEmptyPassword, StagePrimary, nil)
	}

	// 3. Resolve a non-DN name through the lookup account.
	var id Identity
	bindName := name
	if !isDN(name) && s.dir.HasLookupAccount() {
		id, err = s.dir.FindUser(ctx, nil, name)
		if err != nil {
			code, diag, rule := lookupFailure(err)
			return reject(code, diag, rule, StagePrimary, err)
		}
		bindName = id.DN
	}

	// 4. The password, on this client's own upstream connection. A failure
	// here is relayed and no second factor is ever asked.
	up, err := sess.upstream(ctx, s.dir)
	if err != nil {
		return reject(gldap.ResultUnavailable, msgDirectoryDown, RuleDirectoryUnavailable, StagePrimary, err)
	}
	bindRes, err := s.dir.Bind(up, bindName, password, toLDAPControls(msg.Controls))
	if err != nil {
		if le, ok := ldapResult(err); ok {
			// A failed bind leaves the upstream connection anonymous
			// (RFC 4511 §4.2.1), whoever it was bound as before.
			sess.upBound = false
			res := reject(int(le.ResultCode), diagnostic(le), RuleInvalidCredentials, StagePrimary, nil)
			res.event.Msg = "directory refused the password: " + ldap.LDAPResultCodeMap[le.ResultCode]
			if bindRes != nil {
				res.controls = bindRes.Controls
			}
			return res
		}
		sess.closeUpstream()
		return reject(gldap.ResultUnavailable, msgDirectoryDown, RuleDirectoryUnavailable, StagePrimary, err)
	}
	sess.upBound = true

	// 5. Who is this? The DN decides exemptions; the entry gives the Duo
	// username and the groups.
	if id.DN == "" && !isDN(name) {
		// No lookup account: the directory accepted the name as typed
		// (Active Directory's user@domain); find the entry as the user.
		id, err = s.dir.FindUser(ctx, up, name)
		if err != nil {
			sess.closeUpstream()
			code, diag, rule := lookupFailure(err)
			return reject(code, diag, rule, StagePrimary, err)
		}
	}
	dnStr := bindName
	if id.DN != "" {
		dnStr = id.DN
	}
	dn, err := ldap.ParseDN(dnStr)
	if err != nil {
		sess.closeUpstream()
		return reject(gldap.ResultInvalidCredentials, msgInvalid, RuleLookupFailed, StagePrimary, err)
	}
	subject := failmode.Subject{
		ExemptDN:    s.isExempt(dn),
		PrimaryBind: first && s.cfg.ExemptPrimaryBind,
	}
	if !subject.ExemptDN {
		full, lerr := s.dir.Identify(ctx, up, dnStr)
		if full.Username != "" {
			id = full
		}
		// Membership that could not be read counts as privileged.
		subject.SecureGroup = lerr != nil || s.inSecureGroup(full.Groups)
		if id.Username == "" {
			sess.closeUpstream()
			// Without a Duo username there is no second factor to ask.
			code, diag, rule := gldap.ResultInvalidCredentials, msgInvalid, RuleNoUsername
			if lerr != nil {
				code, diag, rule = lookupFailure(lerr)
			} else {
				lerr = errors.New("the entry has no username attribute")
			}
			res := reject(code, diag, rule, StageSecondary, lerr)
			res.event.DN = dnStr
			return res
		}
	}

	// 6. Plan, ask, decide.
	policy := s.cfg.Policy()
	decision, decided := failmode.Plan(policy, subject)
	ev := BindEvent{DN: dnStr, Username: id.Username, Stage: StageSecondary}
	var sfErr error
	if !decided {
		ev.Factor = string(factor)
		verdict, err := s.sf.Verify(ctx, failmode.Attempt{Username: id.Username, ClientIP: sess.clientIP, Factor: factor, Passcode: passcode})
		outcome := failmode.OutcomeOf(verdict.Allowed, err)
		if err == nil && verdict.Message != "" {
			outcome.Detail = verdict.Message
		}
		if err != nil && ctx.Err() != nil {
			outcome.Detail = "client went away"
		}
		decision = failmode.Decide(policy, subject, outcome)
		sfErr = err
	}
	ev.Status = decision.Status()
	ev.Rule = string(decision.Rule)
	ev.Failmode = decision.Failmode
	ev.Msg = decision.Reason

	// 7. Respond.
	if !decision.Allow {
		// The upstream connection is authenticated as the user: it must not
		// outlive a refusal.
		sess.closeUpstream()
		return bindResult{code: gldap.ResultInvalidCredentials, diag: decision.Diagnostic, event: ev, err: sfErr}
	}
	sess.authed = true
	sess.dn = dnStr
	res := bindResult{code: gldap.ResultSuccess, event: ev}
	if bindRes != nil {
		res.controls = bindRes.Controls
	}
	if decision.Failmode {
		s.log.Warn("failmode allowed a bind without second factor", "conn", sess.id, "dn", dnStr, "reason", decision.Reason)
	}
	return res
}

// lookupFailure maps a failed user lookup to the client's result: a name
// that matches no single entry is invalid credentials; anything else (the
// directory down, the lookup account refused) is the directory being
// unavailable, never the user's password being wrong.
func lookupFailure(err error) (code int, diag, rule string) {
	if errors.Is(err, ErrNoSuchUser) || errors.Is(err, ErrAmbiguousUser) {
		return gldap.ResultInvalidCredentials, msgInvalid, RuleInvalidCredentials
	}
	return gldap.ResultUnavailable, msgDirectoryDown, RuleDirectoryUnavailable
}

// diagnostic is the directory's diagnostic message for a result.
func diagnostic(le *ldap.Error) string {
	if le.Err == nil {
		return ""
	}
	return le.Err.Error()
}

func toLDAPControls(in []gldap.Control) []ldap.Control {
	if len(in) == 0 {
		return nil
	}
	out := make([]ldap.Control, len(in))
	for i, c := range in {
		out[i] = c
	}
	return out
}
