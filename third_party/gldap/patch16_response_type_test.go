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

func deleteRequest(messageID int64, dn string) *ber.Packet {
	env := envelope(messageID)
	env.AppendChild(ber.NewString(ber.ClassApplication, ber.TypePrimitive, gldap.ApplicationDelRequest, dn, "Del Request"))
	return env
}

func searchRequest(t *testing.T, messageID int64, baseDN string) *ber.Packet {
	t.Helper()
	req := ldap.NewSearchRequest(baseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil)
	env := envelope(messageID)
	p := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationSearchRequest, nil, "Search Request")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, req.BaseDN, "Base DN"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(req.Scope), "Scope"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(req.DerefAliases), "Deref Aliases"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size Limit"))
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	filter, err := ldap.CompileFilter(req.Filter)
	require.NoError(t, err)
	p.AppendChild(filter)
	p.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes"))
	env.AppendChild(p)
	return env
}

// TestPatch_ResponseTypeMatchesRequest covers patch 16: without
// WithApplicationCode, NewResponse (and the mux's "no matching handler"
// answer) uses the response type that matches the request.
func TestPatch_ResponseTypeMatchesRequest(t *testing.T) {
	t.Run("no-route", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)

		c.send(bindRequest(1, 3, "cn=alice", simpleAuth("x")))
		res := parseResult(t, c.read())
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code)

		c.send(deleteRequest(2, "cn=alice"))
		res = parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationDelResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultUnwillingToPerform), res.code)

		c.send(searchRequest(t, 3, "dc=example"))
		res = parseResult(t, c.read())
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultDone), res.appTag)

		// and go-ldap gets a proper bind error
		client := dialPatchServer(t, addr)
		err = client.Bind("cn=alice", "x")
		assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform), err)
	})

	t.Run("default-route-new-response", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.DefaultRoute(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewResponse(gldap.WithResponseCode(gldap.ResultInsufficientAccessRights)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(deleteRequest(9, "cn=alice"))
		res := parseResult(t, c.read())
		assert.Equal(t, ber.Tag(gldap.ApplicationDelResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultInsufficientAccessRights), res.code)
	})
}
