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

const testReferral = "ldap://other.example.com/dc=example,dc=com"

func testControl(t *testing.T) gldap.Control {
	t.Helper()
	c, err := gldap.NewControlString("1.3.6.1.4.1.99999.7", gldap.WithControlValue("cv"))
	require.NoError(t, err)
	return c
}

// requireControlAndReferral checks that a response PDU carries the test
// control and, if wantReferral, the test referral inside its LDAPResult.
func requireControlAndReferral(t *testing.T, p *ber.Packet, wantReferral bool) {
	t.Helper()
	res := parseResult(t, p)
	require.NotNil(t, res.controls, "controls missing")
	assert.Equal(t, ber.ClassContext, res.controls.ClassType)
	assert.Equal(t, ber.Tag(0), res.controls.Tag)
	require.Len(t, res.controls.Children, 1)
	assert.Equal(t, "1.3.6.1.4.1.99999.7", res.controls.Children[0].Children[0].Data.String())
	if !wantReferral {
		return
	}
	assert.Equal(t, int64(gldap.ResultReferral), res.code)
	require.NotEmpty(t, res.extra, "referral missing")
	ref := res.extra[0]
	assert.Equal(t, ber.ClassContext, ref.ClassType)
	assert.Equal(t, ber.TypeConstructed, ref.TagType)
	assert.Equal(t, ber.Tag(3), ref.Tag)
	require.Len(t, ref.Children, 1)
	assert.Equal(t, testReferral, ref.Children[0].Data.String())
}

// TestPatch_ControlsAndReferrals covers patch 13: SetControls on every
// response, SetReferral on every LDAPResult response, and empty (not
// "Unused") matchedDN/diagnosticMessage defaults.
func TestPatch_ControlsAndReferrals(t *testing.T) {
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	ctrl := testControl(t)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultReferral))
		resp.SetControls(ctrl)
		resp.SetReferral(testReferral)
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.Add(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewResponse(gldap.WithApplicationCode(gldap.ApplicationAddResponse), gldap.WithResponseCode(gldap.ResultReferral))
		resp.SetControls(ctrl)
		resp.SetReferral(testReferral)
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.Delete(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewResponse() // defaults: DelResponse, no "Unused" strings
		resp.SetControls(ctrl)
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.Compare(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultReferral))
		resp.SetControls(ctrl)
		resp.SetReferral(testReferral)
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.ModifyDN(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultReferral))
		resp.SetControls(ctrl)
		resp.SetReferral(testReferral)
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.Modify(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, _ := r.GetModifyMessage()
		resp := r.NewModifyResponse() // no code: must not panic
		resp.SetControls(ctrl)
		if m.DN == "cn=elsewhere" {
			resp.SetResultCode(gldap.ResultReferral)
			resp.SetReferral(testReferral)
		} else {
			resp.SetResultCode(gldap.ResultSuccess)
		}
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		resp.SetControls(ctrl)
		_ = w.Write(resp)
	}, gldap.ExtendedOperationWhoAmI))
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultReferral))
		resp.SetReferral(testReferral)
		resp.SetResponseName("1.3.6.1.4.1.99999.2")
		resp.SetControls(ctrl)
		_ = w.Write(resp)
	}, "1.3.6.1.4.1.99999.2"))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		entry := r.NewSearchResponseEntry("cn=alice,dc=example,dc=com")
		entry.SetControls(ctrl)
		_ = w.Write(entry)
		ref := r.NewSearchResponseReference(testReferral)
		ref.SetControls(ctrl)
		_ = w.Write(ref)
		done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultReferral))
		done.SetControls(ctrl)
		done.SetReferral(testReferral)
		_ = w.Write(done)
	}))
	_, addr := startPatchServer(t, mux, nil)

	t.Run("go-ldap-modify", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		res, err := client.ModifyWithResult(ldap.NewModifyRequest("cn=here", nil))
		require.NoError(t, err)
		require.Len(t, res.Controls, 1)
		assert.Equal(t, "1.3.6.1.4.1.99999.7", res.Controls[0].GetControlType())

		res, err = client.ModifyWithResult(ldap.NewModifyRequest("cn=elsewhere", nil))
		assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultReferral), err)
		assert.Equal(t, testReferral, res.Referral)
	})

	t.Run("go-ldap-extended", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		res, err := client.Extended(ldap.NewExtendedRequest(string(gldap.ExtendedOperationWhoAmI), nil))
		require.NoError(t, err)
		require.Len(t, res.Controls, 1)
		assert.Equal(t, "1.3.6.1.4.1.99999.7", res.Controls[0].GetControlType())
	})

	t.Run("raw", func(t *testing.T) {
		c := dialRaw(t, addr)

		c.send(bindRequest(1, 3, "cn=x", simpleAuth("y")))
		requireControlAndReferral(t, c.read(), true)

		add := envelope(2)
		addOp := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationAddRequest, nil, "add")
		addOp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "dn"))
		addOp.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attrs"))
		add.AppendChild(addOp)
		c.send(add)
		p := c.read()
		assert.Equal(t, ber.Tag(gldap.ApplicationAddResponse), parseResult(t, p).appTag)
		requireControlAndReferral(t, p, true)

		c.send(deleteRequest(3, "cn=x"))
		p = c.read()
		res := parseResult(t, p)
		assert.Equal(t, ber.Tag(gldap.ApplicationDelResponse), res.appTag)
		assert.Equal(t, "", res.matchedDN, "no more Unused default")
		assert.Equal(t, "", res.diag, "no more Unused default")
		assert.Empty(t, res.extra)
		requireControlAndReferral(t, p, false)

		c.send(compareRequest(4, "cn=x", "cn", "x"))
		p = c.read()
		assert.Equal(t, ber.Tag(gldap.ApplicationCompareResponse), parseResult(t, p).appTag)
		requireControlAndReferral(t, p, true)

		moddn := envelope(5)
		moddnOp := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationModifyDNRequest, nil, "moddn")
		moddnOp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "dn"))
		moddnOp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=y", "rdn"))
		moddnOp.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "del"))
		moddn.AppendChild(moddnOp)
		c.send(moddn)
		p = c.read()
		assert.Equal(t, ber.Tag(gldap.ApplicationModifyDNResponse), parseResult(t, p).appTag)
		requireControlAndReferral(t, p, true)

		ext := envelope(6)
		extOp := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationExtendedRequest, nil, "ext")
		extOp.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.99999.2", "name"))
		ext.AppendChild(extOp)
		c.send(ext)
		p = c.read()
		requireControlAndReferral(t, p, true)
		res = parseResult(t, p)
		require.Len(t, res.extra, 2, "referral [3] then responseName [10]")
		assert.Equal(t, ber.Tag(10), res.extra[1].Tag)

		c.send(searchRequest(t, 7, "dc=example,dc=com"))
		entry := c.read()
		require.Len(t, entry.Children, 3, "entry controls")
		assert.Equal(t, ber.Tag(0), entry.Children[2].Tag)
		ref := c.read()
		require.Len(t, ref.Children, 3, "reference controls")
		assert.Equal(t, ber.Tag(0), ref.Children[2].Tag)
		requireControlAndReferral(t, c.read(), true)
	})
}
