// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bindRequest builds a BindRequest PDU with the given version and
// authentication choice.
func bindRequest(messageID int64, version int64, name string, auth *ber.Packet, controls ...*ber.Packet) *ber.Packet {
	env := envelope(messageID)
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationBindRequest, nil, "Bind Request")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, version, "Version"))
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "Name"))
	req.AppendChild(auth)
	env.AppendChild(req)
	if len(controls) > 0 {
		ctrls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		for _, c := range controls {
			ctrls.AppendChild(c)
		}
		env.AppendChild(ctrls)
	}
	return env
}

func simpleAuth(password string) *ber.Packet {
	return ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, password, "Simple")
}

func saslAuth(mechanism string, credentials []byte) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "SASL")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, mechanism, "Mechanism"))
	if credentials != nil {
		p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(credentials), "Credentials"))
	}
	return p
}

// TestPatch_SASLBind covers patch 2: SASL binds reach the Bind route as a
// SASLBindMessage, and LDAPv2 binds / unknown auth choices are answered by the
// library without dropping the connection.  Since patch 19 the library only
// answers those when there is no Bind route (with one, its handler does, see
// patch19_bind_request_error_test.go).
func TestPatch_SASLBind(t *testing.T) {
	type seen struct {
		simple    *gldap.SimpleBindMessage
		simpleErr error
		sasl      *gldap.SASLBindMessage
		saslErr   error
	}
	got := make(chan seen, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		var s seen
		s.simple, s.simpleErr = r.GetSimpleBindMessage()
		s.sasl, s.saslErr = r.GetSASLBindMessage()
		got <- s
		resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		if s.sasl != nil && s.sasl.Mechanism == "MULTI" {
			resp.SetResultCode(gldap.ResultSaslBindInProgress)
			resp.SetServerSASLCredentials([]byte("challenge"))
		}
		_ = w.Write(resp)
	}))
	_, addr := startPatchServer(t, mux, nil)

	// a server without a Bind route, where the library answers the binds it
	// can't serve (patch 19)
	noBindMux, err := gldap.NewMux()
	require.NoError(t, err)
	_, noBindAddr := startPatchServer(t, noBindMux, nil)

	t.Run("sasl-external-go-ldap", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		require.NoError(t, client.ExternalBind())
		s := waitFor(t, got, "bind")
		require.Error(t, s.simpleErr)
		assert.ErrorIs(t, s.simpleErr, gldap.ErrInvalidParameter)
		require.NoError(t, s.saslErr)
		assert.Equal(t, "EXTERNAL", s.sasl.Mechanism)
		assert.NotNil(t, s.sasl.Credentials, "go-ldap sends empty EXTERNAL credentials")
		assert.Empty(t, s.sasl.Credentials)
	})

	t.Run("sasl-raw-with-controls-and-server-creds", func(t *testing.T) {
		c := dialRaw(t, addr)
		ctrl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
		ctrl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "1.2.3.4", "Type"))
		binaryCreds := []byte{0x00, 0xff, 0x10, 'a'}
		c.send(bindRequest(7, 3, "", saslAuth("MULTI", binaryCreds), ctrl))
		s := waitFor(t, got, "bind")
		require.NoError(t, s.saslErr)
		assert.ErrorIs(t, s.simpleErr, gldap.ErrInvalidParameter)
		assert.Equal(t, int64(7), s.sasl.GetID())
		assert.Equal(t, "MULTI", s.sasl.Mechanism)
		assert.Equal(t, binaryCreds, s.sasl.Credentials)
		require.Len(t, s.sasl.Controls, 1)
		assert.Equal(t, "1.2.3.4", s.sasl.Controls[0].GetControlType())

		res := parseResult(t, c.read())
		assert.Equal(t, int64(7), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultSaslBindInProgress), res.code)
		require.Len(t, res.extra, 1)
		assert.Equal(t, ber.Tag(7), res.extra[0].Tag)
		assert.Equal(t, "challenge", res.extra[0].Data.String())

		// no credentials at all
		c.send(bindRequest(8, 3, "", saslAuth("ANONYMOUS", nil)))
		s = waitFor(t, got, "bind")
		require.NoError(t, s.saslErr)
		assert.Nil(t, s.sasl.Credentials)
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
	})

	t.Run("ldapv2-bind-answered-and-conn-stays-open", func(t *testing.T) {
		c := dialRaw(t, noBindAddr)
		c.send(bindRequest(1, 2, "cn=old", simpleAuth("secret")))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultProtocolError), res.code)
		assert.Equal(t, "only LDAPv3 is supported", res.diag)

		// the same connection still works (a v3 bind gets the mux's
		// no-route answer)
		c.send(bindRequest(2, 3, "cn=alice", simpleAuth("secret")))
		res = parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code)
		assert.Equal(t, "No matching handler found", res.diag)
	})

	t.Run("unknown-auth-choice", func(t *testing.T) {
		c := dialRaw(t, noBindAddr)
		// [1] was krbv42LDAP in LDAPv2
		c.send(bindRequest(4, 3, "cn=alice", ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, "x", "krb")))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(4), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultAuthMethodNotSupported), res.code)

		c.send(bindRequest(5, 3, "cn=alice", simpleAuth("secret")))
		assert.Equal(t, int64(5), parseResult(t, c.read()).messageID)
	})
	require.Empty(t, got, "unexpected handler calls")
}
