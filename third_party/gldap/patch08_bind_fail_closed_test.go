// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_BindFailClosed covers patch 8: a BindResponse without an explicit
// result code is invalidCredentials, never success.
func TestPatch_BindFailClosed(t *testing.T) {
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, _ := r.GetSimpleBindMessage()
		resp := r.NewBindResponse() // the handler "forgot" the code ...
		if m != nil && m.UserName == "cn=explicit" {
			resp.SetResultCode(gldap.ResultSuccess) // ... unless it sets one
		}
		_ = w.Write(resp)
	}))
	_, addr := startPatchServer(t, mux, nil)
	client := dialPatchServer(t, addr)

	err = client.Bind("cn=forgotten", "whatever")
	require.Error(t, err)
	assert.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials), err)

	require.NoError(t, client.Bind("cn=explicit", "whatever"))

	c := dialRaw(t, addr)
	c.send(bindRequest(3, 3, "cn=forgotten", simpleAuth("x")))
	res := parseResult(t, c.read())
	assert.Equal(t, int64(gldap.ResultInvalidCredentials), res.code)
}
