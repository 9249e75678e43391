// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"bytes"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_ModifyValues covers patch 7: each value of a modification's vals
// SET is decoded (long-form lengths and binary values included), and a
// modification without values has an empty Vals.
func TestPatch_ModifyValues(t *testing.T) {
	got := make(chan *gldap.ModifyMessage, 1)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Modify(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetModifyMessage()
		assert.NoError(t, err)
		got <- m
		_ = w.Write(r.NewModifyResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, nil)
	client := dialPatchServer(t, addr)

	long := string(bytes.Repeat([]byte("x"), 300))               // long-form length (0x82 0x01 0x2c)
	binary := string([]byte{0x04, 0x02, 0x00, 0xff, 0x30, 0x80}) // looks like BER, must stay as is
	req := ldap.NewModifyRequest("uid=alice,dc=example,dc=com", nil)
	req.Add("mail", []string{"alice@example.com", "alias@example.com"})
	req.Add("jpegPhoto", []string{binary})
	req.Replace("description", []string{long})
	req.Delete("telephoneNumber", nil)
	req.Delete("mobile", []string{"+1 555"})
	req.Replace("seeAlso", []string{})
	require.NoError(t, client.Modify(req))

	m := waitFor(t, got, "modify")
	assert.Equal(t, "uid=alice,dc=example,dc=com", m.DN)
	require.Len(t, m.Changes, 6)
	want := []struct {
		op   int64
		typ  string
		vals []string
	}{
		{gldap.AddAttribute, "mail", []string{"alice@example.com", "alias@example.com"}},
		{gldap.AddAttribute, "jpegPhoto", []string{binary}},
		{gldap.ReplaceAttribute, "description", []string{long}},
		{gldap.DeleteAttribute, "telephoneNumber", []string{}},
		{gldap.DeleteAttribute, "mobile", []string{"+1 555"}},
		{gldap.ReplaceAttribute, "seeAlso", []string{}},
	}
	for i, w := range want {
		chg := m.Changes[i]
		assert.Equal(t, w.op, chg.Operation, "change %d", i)
		assert.Equal(t, w.typ, chg.Modification.Type, "change %d", i)
		assert.Equal(t, w.vals, chg.Modification.Vals, "change %d", i)
		assert.Len(t, chg.Modification.Vals, len(w.vals), "change %d", i)
	}
}
