package proxy

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
)

// searchBuffer bounds how many upstream results wait for a slow client.
const searchBuffer = 64

// withUpstream runs fn with the client's upstream connection under the
// session's shared lock, or returns the result code that refuses the
// operation: nothing is relayed before a successful bind, unless the
// section allows anonymous access (then it is relayed as anonymous).
func (s *Server) withUpstream(r *gldap.Request, fn func(up *ldap.Conn)) (int, string) {
	if s.cfg.RequireTLS && r.TLSState() == nil {
		return gldap.ResultConfidentialityRequired, msgTLSRequired
	}
	sess := s.session(r)
	sess.mu.RLock()
	// Anonymous access needs an upstream connection bound as nobody: dial
	// one (or replace one still bound as an earlier user), which needs the
	// exclusive lock; then re-check everything under the shared lock.
	if sess.needsAnonymous(s.cfg.AllowAnonymous) {
		sess.mu.RUnlock()
		sess.mu.Lock()
		var err error
		if sess.needsAnonymous(s.cfg.AllowAnonymous) {
			err = sess.dialAnonymous(r.Context(), s.dir)
		}
		sess.mu.Unlock()
		if err != nil {
			return gldap.ResultUnavailable, msgDirectoryDown
		}
		sess.mu.RLock()
	}
	defer sess.mu.RUnlock()
	switch {
	case !sess.relayable(s.cfg.AllowAnonymous):
		return gldap.ResultInsufficientAccessRights, msgBindFirst
	case sess.up == nil || sess.up.IsClosing():
		// The directory connection died; the client must bind again.
		return gldap.ResultUnavailable, msgDirectoryDown
	}
	fn(sess.up)
	return 0, ""
}

// result maps an upstream error to the LDAP result the client gets: the
// directory's own result unchanged, or unavailable for a network failure.
func result(err error) (code int, diag, matched string) {
	if err == nil {
		return gldap.ResultSuccess, "", ""
	}
	if le, ok := directory.Answered(err); ok {
		return int(le.ResultCode), diagnostic(le), le.MatchedDN
	}
	return gldap.ResultUnavailable, msgDirectoryDown, ""
}

func (s *Server) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultOperationsError))
	defer func() { _ = w.Write(done) }()
	msg, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	code, diag := s.withUpstream(r, func(up *ldap.Conn) {
		req := ldap.NewSearchRequest(msg.BaseDN, int(msg.Scope), msg.DerefAliases, int(msg.SizeLimit), int(msg.TimeLimit),
			msg.TypesOnly, msg.Filter, msg.Attributes, toLDAPControls(msg.Controls))
		res := up.SearchAsync(r.Context(), req, searchBuffer)
		for res.Next() {
			switch {
			case res.Entry() != nil:
				e := res.Entry()
				entry := r.NewSearchResponseEntry(e.DN)
				for _, a := range e.Attributes {
					vals := make([]string, len(a.ByteValues))
					for i, v := range a.ByteValues {
						vals[i] = string(v)
					}
					entry.AddAttribute(a.Name, vals)
				}
				if err := w.Write(entry); err != nil {
					return
				}
			case res.Referral() != "":
				if err := w.Write(r.NewSearchResponseReference(res.Referral())); err != nil {
					return
				}
			}
		}
		c, d, m := result(res.Err())
		done.SetResultCode(c)
		done.SetDiagnosticMessage(d)
		done.SetMatchedDN(m)
		if ctrls := res.Controls(); len(ctrls) > 0 {
			done.SetControls(toGLDAPControls(ctrls)...)
		}
	})
	if code != 0 {
		done.SetResultCode(code)
		done.SetDiagnosticMessage(diag)
	}
}

func (s *Server) handleModify(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewModifyResponse(gldap.WithResponseCode(gldap.ResultOperationsError))
	defer func() { _ = w.Write(resp) }()
	msg, err := r.GetModifyMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		return
	}
	code, diag := s.withUpstream(r, func(up *ldap.Conn) {
		req := ldap.NewModifyRequest(msg.DN, toLDAPControls(msg.Controls))
		for _, c := range msg.Changes {
			req.Changes = append(req.Changes, ldap.Change{
				Operation:    uint(c.Operation),
				Modification: ldap.PartialAttribute{Type: c.Modification.Type, Vals: c.Modification.Vals},
			})
		}
		res, err := up.ModifyWithResult(req)
		c, d, m := result(err)
		resp.SetResultCode(c)
		resp.SetDiagnosticMessage(d)
		resp.SetMatchedDN(m)
		if res != nil && len(res.Controls) > 0 {
			resp.SetControls(toGLDAPControls(res.Controls)...)
		}
	})
	if code != 0 {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
	}
}

// generic relays an operation whose answer is a plain LDAPResult.
func (s *Server) generic(w *gldap.ResponseWriter, r *gldap.Request, app int, parse func() (func(*ldap.Conn) error, error)) {
	resp := r.NewResponse(gldap.WithApplicationCode(app), gldap.WithResponseCode(gldap.ResultOperationsError),
		gldap.WithDiagnosticMessage(""), gldap.WithMatchedDN(""))
	defer func() { _ = w.Write(resp) }()
	op, err := parse()
	if err != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		return
	}
	code, diag := s.withUpstream(r, func(up *ldap.Conn) {
		c, d, m := result(op(up))
		resp.SetResultCode(c)
		resp.SetDiagnosticMessage(d)
		resp.SetMatchedDN(m)
	})
	if code != 0 {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
	}
}

func (s *Server) handleAdd(w *gldap.ResponseWriter, r *gldap.Request) {
	s.generic(w, r, gldap.ApplicationAddResponse, func() (func(*ldap.Conn) error, error) {
		msg, err := r.GetAddMessage()
		if err != nil {
			return nil, err
		}
		req := ldap.NewAddRequest(msg.DN, toLDAPControls(msg.Controls))
		for _, a := range msg.Attributes {
			req.Attribute(a.Type, a.Vals)
		}
		return func(up *ldap.Conn) error { return up.Add(req) }, nil
	})
}

func (s *Server) handleDelete(w *gldap.ResponseWriter, r *gldap.Request) {
	s.generic(w, r, gldap.ApplicationDelResponse, func() (func(*ldap.Conn) error, error) {
		msg, err := r.GetDeleteMessage()
		if err != nil {
			return nil, err
		}
		req := ldap.NewDelRequest(msg.DN, toLDAPControls(msg.Controls))
		return func(up *ldap.Conn) error { return up.Del(req) }, nil
	})
}

func (s *Server) handleModifyDN(w *gldap.ResponseWriter, r *gldap.Request) {
	s.generic(w, r, gldap.ApplicationModifyDNResponse, func() (func(*ldap.Conn) error, error) {
		msg, err := r.GetModifyDNMessage()
		if err != nil {
			return nil, err
		}
		req := ldap.NewModifyDNWithControlsRequest(msg.DN, msg.NewRDN, msg.DeleteOldRDN, msg.NewSuperior, toLDAPControls(msg.Controls))
		return func(up *ldap.Conn) error { return up.ModifyDN(req) }, nil
	})
}

// errCompareFalse carries compareFalse through generic's error path.
var errCompareFalse = &ldap.Error{ResultCode: ldap.LDAPResultCompareFalse}

func (s *Server) handleCompare(w *gldap.ResponseWriter, r *gldap.Request) {
	s.generic(w, r, gldap.ApplicationCompareResponse, func() (func(*ldap.Conn) error, error) {
		msg, err := r.GetCompareMessage()
		if err != nil {
			return nil, err
		}
		return func(up *ldap.Conn) error {
			ok, err := up.Compare(msg.DN, msg.AttributeDesc, msg.AssertionValue)
			switch {
			case err != nil:
				return err
			case ok:
				return &ldap.Error{ResultCode: ldap.LDAPResultCompareTrue}
			}
			return errCompareFalse
		}, nil
	})
}

// handleStartTLS upgrades the client connection when the section has a
// certificate.
func (s *Server) handleStartTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultProtocolError))
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	switch {
	case s.cfg.TLS == nil:
		resp.SetDiagnosticMessage("StartTLS is not configured")
	case r.TLSState() != nil:
		resp.SetResultCode(gldap.ResultOperationsError)
		resp.SetDiagnosticMessage("TLS is already established")
	default:
		resp.SetResultCode(gldap.ResultSuccess)
		if err := w.Write(resp); err != nil {
			return
		}
		if err := r.StartTLS(s.cfg.TLS); err != nil {
			s.log.Info("starttls handshake failed", "err", err)
		}
		return
	}
	_ = w.Write(resp)
}

// handleDefault relays extended operations (WhoAmI, Password Modify...)
// and refuses anything else.
func (s *Server) handleDefault(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetExtendedOperationMessage()
	if err != nil {
		resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform),
			gldap.WithDiagnosticMessage("operation not supported"), gldap.WithMatchedDN(""))
		_ = w.Write(resp)
		return
	}
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultOperationsError))
	defer func() { _ = w.Write(resp) }()
	code, diag := s.withUpstream(r, func(up *ldap.Conn) {
		var value *ber.Packet
		if msg.HasValue {
			value = ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, msg.Value, "value")
		}
		req := ldap.NewExtendedRequest(string(msg.Name), value)
		req.Controls = toLDAPControls(msg.Controls)
		res, err := up.Extended(req)
		c, d, m := result(err)
		resp.SetResultCode(c)
		resp.SetDiagnosticMessage(d)
		resp.SetMatchedDN(m)
		if res == nil {
			return
		}
		if res.Name != "" {
			resp.SetResponseName(gldap.ExtendedOperationName(res.Name))
		}
		if res.Value != nil {
			resp.SetResponseValue(res.Value.Data.Bytes())
		}
		if len(res.Controls) > 0 {
			resp.SetControls(toGLDAPControls(res.Controls)...)
		}
	})
	if code != 0 {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
	}
}

func toGLDAPControls(in []ldap.Control) []gldap.Control {
	out := make([]gldap.Control, len(in))
	for i, c := range in {
		out[i] = c
	}
	return out
}
