package proxy

import (
	"context"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
)

// bindResult is what a bind ends in: the LDAP response and the event.
type bindResult struct {
	code     int
	diag     string
	controls []ldap.Control
	event    failmode.BindEvent
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
		resp.SetControls(toGLDAPControls(res.controls)...)
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

// bind is the pipeline of a simple bind. It runs with the session locked
// exclusively; each step either stops the bind with a result or hands the
// attempt on. A step that fails after the directory accepted the password
// closes the upstream connection, which is bound as the user by then.
func (s *Server) bind(ctx context.Context, sess *session, r *gldap.Request) bindResult {
	a, res := s.parseBind(sess, r)
	if res != nil {
		return *res
	}
	out := s.pipeline(ctx, a)
	s.guardAfter(ctx, a, out) // throttle counts, bind cache eviction (guards.go)
	return out
}

func (s *Server) pipeline(ctx context.Context, a *attempt) bindResult {
	for _, step := range []func(context.Context, *attempt) *bindResult{
		s.refuseUnauthenticated, // TLS required, empty password, anonymous (bind_primary.go)
		s.throttle,              // too many failures from the address, or of the name from it (guards.go)
		s.authenticate,          // the directory bind, and which entry it authenticated (identity.go)
		s.identify,              // exemptions, the Duo username, secure groups (bind_secondary.go)
		s.decide,                // plan, bind cache, budgets, second factor, failmode; always ends the bind
	} {
		if res := step(ctx, a); res != nil {
			return *res
		}
	}
	panic("proxy: the bind pipeline ended without a decision")
}

// attempt is one bind as it moves through the pipeline.
type attempt struct {
	sess     *session
	tls      bool   // the client connection is TLS
	name     string // the bind name as typed: logged, never trusted as an identity
	empty    bool   // the password was empty as sent
	password string // the password without a passcode or factor suffix
	passcode string // a one-time passcode: a secret, never logged
	factor   failmode.Factor
	request  []ldap.Control // the client's bind controls, passed to the directory
	first    bool           // the first bind request on this connection

	// tried is the name the password went to the directory with (the
	// entry's DN with a lookup account): never an identity, only what a
	// failed bind evicts from the bind cache.
	tried string
	// id is the entry the directory authenticated; only authenticate sets it.
	id       directory.Identity
	response []ldap.Control // the directory's bind response controls
	subject  failmode.Subject

	// released is true once the directory connection was closed while the
	// second factor was awaited (releaseWhileWaiting).
	released bool

	// breakGlass is a break-glass code typed after the password, canonical:
	// a secret, never logged (breakglass.go).
	breakGlass string
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
