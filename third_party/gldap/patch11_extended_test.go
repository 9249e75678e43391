// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_ExtendedOperations covers patch 11: request values and controls
// are parsed, response names and values are encoded, routes work for any OID
// and the DefaultRoute catches the rest.
func TestPatch_ExtendedOperations(t *testing.T) {
	const customOID = "1.3.6.1.4.1.99999.1"
	got := make(chan *gldap.ExtendedOperationMessage, 10)
	defaults := make(chan gldap.ExtendedOperationName, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetExtendedOperationMessage()
		assert.NoError(t, err)
		got <- m
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		resp.SetResponseValue([]byte("dn:cn=alice,dc=example,dc=com"))
		_ = w.Write(resp)
	}, gldap.ExtendedOperationWhoAmI))
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetExtendedOperationMessage()
		assert.NoError(t, err)
		got <- m
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		resp.SetResponseName(customOID)
		switch m.Value {
		case "empty":
			resp.SetResponseValue([]byte{})
		case "none":
		default:
			resp.SetResponseValue([]byte{0x00, 0xff, 0x01})
		}
		_ = w.Write(resp)
	}, customOID))
	require.NoError(t, mux.DefaultRoute(func(w *gldap.ResponseWriter, r *gldap.Request) {
		if m, err := r.GetExtendedOperationMessage(); err == nil {
			defaults <- m.Name
		}
		_ = w.Write(r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultProtocolError)))
	}))
	_, addr := startPatchServer(t, mux, nil)

	t.Run("whoami-response-value", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		res, err := client.WhoAmI(nil)
		require.NoError(t, err)
		assert.Equal(t, "dn:cn=alice,dc=example,dc=com", res.AuthzID)
		m := waitFor(t, got, "whoami")
		assert.Equal(t, gldap.ExtendedOperationWhoAmI, m.Name)
		assert.False(t, m.HasValue)
		assert.Empty(t, m.Value)
	})

	t.Run("custom-oid-value-controls-name", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		value := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "payload", "v")
		req := ldap.NewExtendedRequest(customOID, value)
		req.Controls = []ldap.Control{ldap.NewControlString("1.2.3.4", true, "cv")}
		res, err := client.Extended(req)
		require.NoError(t, err)
		assert.Equal(t, customOID, res.Name)
		require.NotNil(t, res.Value)
		assert.Equal(t, []byte{0x00, 0xff, 0x01}, res.Value.Data.Bytes())

		m := waitFor(t, got, "custom")
		assert.Equal(t, gldap.ExtendedOperationName(customOID), m.Name)
		assert.True(t, m.HasValue)
		assert.Equal(t, string(value.Bytes()), m.Value, "raw octets of requestValue")
		require.Len(t, m.Controls, 1)
		assert.Equal(t, "1.2.3.4", m.Controls[0].GetControlType())
	})

	t.Run("raw-encoding", func(t *testing.T) {
		c := dialRaw(t, addr)
		send := func(id int64, value string) ldapResult {
			env := envelope(id)
			op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationExtendedRequest, nil, "ext")
			op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, customOID, "name"))
			op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, value, "value"))
			env.AppendChild(op)
			c.send(env)
			m := waitFor(t, got, "custom")
			assert.Equal(t, value, m.Value)
			return parseResult(t, c.read())
		}
		res := send(1, "none")
		assert.Equal(t, ber.Tag(gldap.ApplicationExtendedResponse), res.appTag)
		require.Len(t, res.extra, 1, "responseName only")
		assert.Equal(t, ber.Tag(10), res.extra[0].Tag)
		assert.Equal(t, customOID, res.extra[0].Data.String())

		res = send(2, "empty")
		require.Len(t, res.extra, 2)
		assert.Equal(t, ber.Tag(11), res.extra[1].Tag)
		assert.Equal(t, ber.ClassContext, res.extra[1].ClassType)
		assert.Empty(t, res.extra[1].Data.Bytes())
	})

	t.Run("default-route-catches-other-oids", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		_, err := client.Extended(ldap.NewExtendedRequest("1.2.3.4.5.6.7", nil))
		assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError), err)
		assert.Equal(t, gldap.ExtendedOperationName("1.2.3.4.5.6.7"), waitFor(t, defaults, "default route"))
	})
}
