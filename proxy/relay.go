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
			err = sess.dialAnonymous(r.Context(), s.dir, s.dirEpoch)
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
	sess.relayed.Store(true)
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

// reply is the answer of a relayed operation, whatever its kind.
type reply interface {
	gldap.Response
	SetResultCode(int)
	SetDiagnosticMessage(string)
	SetMatchedDN(string)
	SetControls(...gldap.Control)
}

// relay is the one skeleton of a relayed operation. resp starts as
// operationsError and is written whatever happens; a request that did not
// parse (parseErr) is a protocolError; op runs on the client's upstream
// connection when withUpstream allows it, and its error and controls become
// the answer; otherwise resp carries withUpstream's refusal.
func (s *Server) relay(w *gldap.ResponseWriter, r *gldap.Request, resp reply, parseErr error,
	op func(up *ldap.Conn) ([]ldap.Control, error)) {
	defer func() { _ = w.Write(resp) }()
	if parseErr != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		return
	}
	code, diag := s.withUpstream(r, func(up *ldap.Conn) {
		ctrls, err := op(up)
		c, d, m := result(err)
		resp.SetResultCode(c)
		resp.SetDiagnosticMessage(d)
		resp.SetMatchedDN(m)
		if len(ctrls) > 0 {
			resp.SetControls(toGLDAPControls(ctrls)...)
		}
	})
	if code != 0 {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
	}
}

func (s *Server) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetSearchMessage()
	s.relay(w, r, r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultOperationsError)), err,
		func(up *ldap.Conn) ([]ldap.Control, error) {
			req := ldap.NewSearchRequest(msg.BaseDN, int(msg.Scope), msg.DerefAliases, int(msg.SizeLimit), int(msg.TimeLimit),
				msg.TypesOnly, msg.Filter, msg.Attributes, toLDAPControls(msg.Controls))
			res := up.SearchAsync(r.Context(), req, searchBuffer)
			for res.Next() {
				var err error
				switch {
				case res.Entry() != nil:
					err = w.Write(searchEntry(r, res.Entry()))
				case res.Referral() != "":
					err = w.Write(r.NewSearchResponseReference(res.Referral()))
				}
				if err != nil {
					return nil, err // the client is gone
				}
			}
			if err := res.Err(); err != nil || !up.IsClosing() {
				return res.Controls(), err
			}
			// go-ldap ends a search on a closing connection with no error:
			// the client must not read that as an answer.
			return nil, directory.ErrSearchCut
		})
}

// searchEntry is an upstream entry as the client's search answer.
func searchEntry(r *gldap.Request, e *ldap.Entry) *gldap.SearchResponseEntry {
	entry := r.NewSearchResponseEntry(e.DN)
	for _, a := range e.Attributes {
		vals := make([]string, len(a.ByteValues))
		for i, v := range a.ByteValues {
			vals[i] = string(v)
		}
		entry.AddAttribute(a.Name, vals)
	}
	return entry
}

func (s *Server) handleModify(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetModifyMessage()
	s.relay(w, r, r.NewModifyResponse(gldap.WithResponseCode(gldap.ResultOperationsError)), err,
		func(up *ldap.Conn) ([]ldap.Control, error) {
			req := ldap.NewModifyRequest(msg.DN, toLDAPControls(msg.Controls))
			for _, c := range msg.Changes {
				req.Changes = append(req.Changes, ldap.Change{
					Operation:    uint(c.Operation),
					Modification: ldap.PartialAttribute{Type: c.Modification.Type, Vals: c.Modification.Vals},
				})
			}
			res, err := up.ModifyWithResult(req)
			if res != nil {
				return res.Controls, err
			}
			return nil, err
		})
}

// generic relays an operation whose answer is a plain LDAPResult; parseErr
// is the request's parse error.
func (s *Server) generic(w *gldap.ResponseWriter, r *gldap.Request, app int, parseErr error, op func(*ldap.Conn) error) {
	s.relay(w, r, r.NewResponse(gldap.WithApplicationCode(app), gldap.WithResponseCode(gldap.ResultOperationsError),
		gldap.WithDiagnosticMessage(""), gldap.WithMatchedDN("")), parseErr,
		func(up *ldap.Conn) ([]ldap.Control, error) { return nil, op(up) })
}

func (s *Server) handleAdd(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetAddMessage()
	s.generic(w, r, gldap.ApplicationAddResponse, err, func(up *ldap.Conn) error {
		req := ldap.NewAddRequest(msg.DN, toLDAPControls(msg.Controls))
		for _, a := range msg.Attributes {
			req.Attribute(a.Type, a.Vals)
		}
		return up.Add(req)
	})
}

func (s *Server) handleDelete(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetDeleteMessage()
	s.generic(w, r, gldap.ApplicationDelResponse, err, func(up *ldap.Conn) error {
		return up.Del(ldap.NewDelRequest(msg.DN, toLDAPControls(msg.Controls)))
	})
}

func (s *Server) handleModifyDN(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetModifyDNMessage()
	s.generic(w, r, gldap.ApplicationModifyDNResponse, err, func(up *ldap.Conn) error {
		return up.ModifyDN(ldap.NewModifyDNWithControlsRequest(msg.DN, msg.NewRDN, msg.DeleteOldRDN, msg.NewSuperior,
			toLDAPControls(msg.Controls)))
	})
}

// errCompareFalse carries compareFalse through generic's error path.
var errCompareFalse = &ldap.Error{ResultCode: ldap.LDAPResultCompareFalse}

func (s *Server) handleCompare(w *gldap.ResponseWriter, r *gldap.Request) {
	msg, err := r.GetCompareMessage()
	s.generic(w, r, gldap.ApplicationCompareResponse, err, func(up *ldap.Conn) error {
		ok, err := up.Compare(msg.DN, msg.AttributeDesc, msg.AssertionValue)
		switch {
		case err != nil:
			return err
		case ok:
			return &ldap.Error{ResultCode: ldap.LDAPResultCompareTrue}
		}
		return errCompareFalse
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
	s.relay(w, r, resp, nil, func(up *ldap.Conn) ([]ldap.Control, error) {
		var value *ber.Packet
		if msg.HasValue {
			value = ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, msg.Value, "value")
		}
		req := ldap.NewExtendedRequest(string(msg.Name), value)
		req.Controls = toLDAPControls(msg.Controls)
		res, err := up.Extended(req)
		if res == nil {
			return nil, err
		}
		if res.Name != "" {
			resp.SetResponseName(gldap.ExtendedOperationName(res.Name))
		}
		if res.Value != nil {
			resp.SetResponseValue(res.Value.Data.Bytes())
		}
		return res.Controls, err
	})
}

func toGLDAPControls(in []ldap.Control) []gldap.Control {
	out := make([]gldap.Control, len(in))
	for i, c := range in {
		out[i] = c
	}
	return out
}
