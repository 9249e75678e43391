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

// TestPatch_ModifyDN covers patch 4: modify DN requests are parsed, routed
// to Mux.ModifyDN and answered with a ModifyDNResponse.
func TestPatch_ModifyDN(t *testing.T) {
	got := make(chan *gldap.ModifyDNMessage, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.ModifyDN(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetModifyDNMessage()
		if err != nil {
			t.Error(err)
			return
		}
		got <- m
		code := gldap.ResultSuccess
		if m.DN == "cn=locked,dc=example,dc=com" {
			code = gldap.ResultInsufficientAccessRights
		}
		_ = w.Write(r.NewResponse(gldap.WithApplicationCode(gldap.ApplicationModifyDNResponse), gldap.WithResponseCode(code)))
	}))
	_, addr := startPatchServer(t, mux, nil)
	client := dialPatchServer(t, addr)

	t.Run("rename", func(t *testing.T) {
		req := ldap.NewModifyDNRequest("cn=alice,ou=people,dc=example,dc=com", "cn=alicia", true, "")
		require.NoError(t, client.ModifyDN(req))
		m := waitFor(t, got, "modify DN")
		assert.Equal(t, "cn=alice,ou=people,dc=example,dc=com", m.DN)
		assert.Equal(t, "cn=alicia", m.NewRDN)
		assert.True(t, m.DeleteOldRDN)
		assert.Empty(t, m.NewSuperior)
	})

	t.Run("move-with-controls", func(t *testing.T) {
		req := ldap.NewModifyDNWithControlsRequest("cn=bob,ou=people,dc=example,dc=com", "cn=bob", false, "ou=former,dc=example,dc=com",
			[]ldap.Control{ldap.NewControlManageDsaIT(true)})
		require.NoError(t, client.ModifyDN(req))
		m := waitFor(t, got, "modify DN")
		assert.Equal(t, "cn=bob", m.NewRDN)
		assert.False(t, m.DeleteOldRDN)
		assert.Equal(t, "ou=former,dc=example,dc=com", m.NewSuperior)
		require.Len(t, m.Controls, 1)
		assert.Equal(t, gldap.ControlTypeManageDsaIT, m.Controls[0].GetControlType())
	})

	t.Run("error-result", func(t *testing.T) {
		err := client.ModifyDN(ldap.NewModifyDNRequest("cn=locked,dc=example,dc=com", "cn=x", true, ""))
		assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights), err)
		waitFor(t, got, "modify DN")
	})

	t.Run("response-encoding", func(t *testing.T) {
		c := dialRaw(t, addr)
		env := envelope(5)
		req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationModifyDNRequest, nil, "ModDN")
		req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=a", "DN"))
		req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=b", "NewRDN"))
		req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "DeleteOldRDN"))
		env.AppendChild(req)
		c.send(env)
		waitFor(t, got, "modify DN")
		res := parseResult(t, c.read())
		assert.Equal(t, int64(5), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationModifyDNResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	})
}
