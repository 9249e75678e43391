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

func compareRequest(messageID int64, dn, attr, value string) *ber.Packet {
	env := envelope(messageID)
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationCompareRequest, nil, "Compare Request")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "DN"))
	ava := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "AVA")
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, "AttributeDesc"))
	ava.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, value, "AssertionValue"))
	req.AppendChild(ava)
	env.AppendChild(req)
	return env
}

// TestPatch_Compare covers patch 3: compare requests are parsed, routed to
// Mux.Compare and answered with a CompareResponse.
func TestPatch_Compare(t *testing.T) {
	got := make(chan *gldap.CompareMessage, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Compare(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetCompareMessage()
		if err != nil {
			t.Error(err)
			return
		}
		got <- m
		code := gldap.ResultCompareFalse
		if m.DN == "uid=alice,dc=example,dc=com" && m.AttributeDesc == "mail" && m.AssertionValue == "alice@example.com" {
			code = gldap.ResultCompareTrue
		}
		_ = w.Write(r.NewResponse(gldap.WithApplicationCode(gldap.ApplicationCompareResponse), gldap.WithResponseCode(code)))
	}))
	_, addr := startPatchServer(t, mux, nil)

	t.Run("go-ldap", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		ok, err := client.Compare("uid=alice,dc=example,dc=com", "mail", "alice@example.com")
		require.NoError(t, err)
		assert.True(t, ok)
		m := waitFor(t, got, "compare")
		assert.Equal(t, "uid=alice,dc=example,dc=com", m.DN)
		assert.Equal(t, "mail", m.AttributeDesc)
		assert.Equal(t, "alice@example.com", m.AssertionValue)

		ok, err = client.Compare("uid=alice,dc=example,dc=com", "mail", "mallory@example.com")
		require.NoError(t, err)
		assert.False(t, ok)
		waitFor(t, got, "compare")
	})

	t.Run("raw-binary-value-and-response-encoding", func(t *testing.T) {
		c := dialRaw(t, addr)
		bin := string([]byte{0x00, 0x01, 0xfe, 0xff})
		c.send(compareRequest(42, "cn=x", "userCertificate;binary", bin))
		m := waitFor(t, got, "compare")
		assert.Equal(t, int64(42), m.GetID())
		assert.Equal(t, "userCertificate;binary", m.AttributeDesc)
		assert.Equal(t, bin, m.AssertionValue)

		res := parseResult(t, c.read())
		assert.Equal(t, int64(42), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationCompareResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultCompareFalse), res.code)
		assert.Empty(t, res.extra)
	})

	t.Run("getters-reject-other-messages", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		errs := make(chan error, 1)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_, err := r.GetCompareMessage()
			errs <- err
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		client := dialPatchServer(t, addr)
		require.NoError(t, client.Bind("cn=a", "b"))
		assert.ErrorIs(t, waitFor(t, errs, "bind"), gldap.ErrInvalidParameter)
	})

	t.Run("no-route", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		_, addr := startPatchServer(t, mux, nil)
		client := dialPatchServer(t, addr)
		_, err = client.Compare("cn=x", "cn", "x")
		assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform), err)
	})
}
