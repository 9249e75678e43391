// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"errors"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seenBind is what a recording bind handler saw of one bind request.
type seenBind struct {
	simple    *gldap.SimpleBindMessage
	simpleErr error
	sasl      *gldap.SASLBindMessage
	saslErr   error
}

// TestPatch_BindRequestErrorReachesHandler covers patch 19: an LDAPv2 bind and
// a bind with an unknown authentication choice reach the Bind route's handler,
// whose getters return a *BindRequestError, and the handler's answer is what
// the client gets (RFC 4511 4.2.1: every bind, even a failed one, resets the
// connection's authentication, so the handler must see it).  Without a Bind
// route the library still answers them itself.
func TestPatch_BindRequestErrorReachesHandler(t *testing.T) {
	got := make(chan seenBind, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		var s seenBind
		s.simple, s.simpleErr = r.GetSimpleBindMessage()
		s.sasl, s.saslErr = r.GetSASLBindMessage()
		got <- s
		var bre *gldap.BindRequestError
		switch {
		case s.simple != nil && s.simple.UserName == "cn=forgetful":
			_ = w.Write(r.NewBindResponse()) // no code: patch 8's default
		case errors.As(s.simpleErr, &bre):
			// a code the library would never choose, so the test can tell
			// the handler's answer from the library's
			resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform))
			resp.SetDiagnosticMessage("handler: " + bre.Diagnostic)
			_ = w.Write(resp)
		default:
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}
	}))
	_, addr := startPatchServer(t, mux, nil)

	requireBindRequestError := func(t *testing.T, s seenBind, code int) *gldap.BindRequestError {
		t.Helper()
		require.Nil(t, s.simple)
		require.Nil(t, s.sasl)
		var fromSimple, fromSASL *gldap.BindRequestError
		require.True(t, errors.As(s.simpleErr, &fromSimple), "GetSimpleBindMessage: %v", s.simpleErr)
		require.True(t, errors.As(s.saslErr, &fromSASL), "GetSASLBindMessage: %v", s.saslErr)
		assert.Equal(t, code, fromSimple.ResultCode)
		assert.Equal(t, code, fromSASL.ResultCode)
		assert.NotEmpty(t, fromSimple.Diagnostic)
		assert.Equal(t, fromSimple.Diagnostic, fromSASL.Diagnostic)
		assert.ErrorIs(t, s.simpleErr, gldap.ErrInvalidParameter, "Err wraps ErrInvalidParameter")
		require.Error(t, fromSimple.Unwrap())
		assert.Contains(t, fromSimple.Error(), fromSimple.Unwrap().Error())
		return fromSimple
	}

	t.Run("ldapv2-bind", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=alice", simpleAuth("secret")))
		s := waitFor(t, got, "v3 bind")
		require.NoError(t, s.simpleErr)
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)

		c.send(bindRequest(2, 2, "cn=old", simpleAuth("secret")))
		s = waitFor(t, got, "v2 bind")
		bre := requireBindRequestError(t, s, gldap.ResultProtocolError)
		assert.Equal(t, "only LDAPv3 is supported", bre.Diagnostic)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code, "the handler's code")
		assert.Equal(t, "handler: only LDAPv3 is supported", res.diag)

		// the connection stays open
		c.send(bindRequest(3, 3, "cn=alice", simpleAuth("secret")))
		waitFor(t, got, "bind after v2")
		res = parseResult(t, c.read())
		assert.Equal(t, int64(3), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	})

	t.Run("unknown-auth-choice", func(t *testing.T) {
		c := dialRaw(t, addr)
		// [5] is no AuthenticationChoice of RFC 4511
		c.send(bindRequest(7, 3, "cn=alice", ber.NewString(ber.ClassContext, ber.TypePrimitive, 5, "x", "unknown")))
		bre := requireBindRequestError(t, waitFor(t, got, "unknown-choice bind"), gldap.ResultAuthMethodNotSupported)
		assert.Equal(t, "authentication method not supported", bre.Diagnostic)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(7), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code, "the handler's code")

		// [1] (LDAPv2's krbv42LDAP) and a constructed [0] are unknown too
		c.send(bindRequest(8, 3, "cn=alice", ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "x", "krb")))
		requireBindRequestError(t, waitFor(t, got, "krb bind"), gldap.ResultAuthMethodNotSupported)
		assert.Equal(t, int64(8), parseResult(t, c.read()).messageID)
		c.send(bindRequest(9, 3, "cn=alice", ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "constructed simple")))
		requireBindRequestError(t, waitFor(t, got, "constructed [0] bind"), gldap.ResultAuthMethodNotSupported)
		assert.Equal(t, int64(9), parseResult(t, c.read()).messageID)
	})

	t.Run("v2-sasl-is-a-version-error", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(bindRequest(4, 2, "", saslAuth("EXTERNAL", nil)))
		requireBindRequestError(t, waitFor(t, got, "v2 sasl bind"), gldap.ResultProtocolError)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), parseResult(t, c.read()).code)
	})

	t.Run("handler-without-code-fails-closed", func(t *testing.T) {
		// a handler that answers every bind with NewBindResponse() still
		// refuses an LDAPv2 bind (patch 8)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		ran := make(chan struct{}, 1)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			ran <- struct{}{}
			_ = w.Write(r.NewBindResponse())
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(bindRequest(5, 2, "cn=old", simpleAuth("secret")))
		waitFor(t, ran, "bind handler")
		res := parseResult(t, c.read())
		assert.Equal(t, int64(5), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultInvalidCredentials), res.code)
	})

	t.Run("no-bind-route-library-answers", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		defaultRan := make(chan struct{}, 1)
		require.NoError(t, mux.DefaultRoute(func(w *gldap.ResponseWriter, r *gldap.Request) {
			defaultRan <- struct{}{}
			_ = w.Write(r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 2, "cn=old", simpleAuth("secret")))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultProtocolError), res.code)
		assert.Equal(t, "only LDAPv3 is supported", res.diag)

		c.send(bindRequest(2, 3, "cn=x", ber.NewString(ber.ClassContext, ber.TypePrimitive, 5, "x", "unknown")))
		res = parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, int64(gldap.ResultAuthMethodNotSupported), res.code)

		// a v3 bind goes to the DefaultRoute as before: the connection is
		// open and the two refused binds never reached it
		c.send(bindRequest(3, 3, "cn=x", simpleAuth("y")))
		res = parseResult(t, c.read())
		assert.Equal(t, int64(3), res.messageID)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code)
		waitFor(t, defaultRan, "default route")
		assert.Empty(t, defaultRan)
	})

	t.Run("malformed-bind-still-disconnects", func(t *testing.T) {
		c := dialRaw(t, addr)
		// a version that isn't an INTEGER is not a bind anyone can answer
		env := envelope(6)
		req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationBindRequest, nil, "Bind Request")
		req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "3", "Version"))
		req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "Name"))
		req.AppendChild(simpleAuth("y"))
		env.AppendChild(req)
		c.send(env)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		c.requireClosed()
	})

	require.Empty(t, got, "unexpected handler calls")
}
