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

// TestPatch_ExtensibleMatchDN covers patch 18: a search whose filter uses
// an extensible match with :dn: reaches the handler with the filter intact
// instead of dropping the connection.
func TestPatch_ExtensibleMatchDN(t *testing.T) {
	got := make(chan string, 8)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetSearchMessage()
		if err == nil {
			got <- m.Filter
		}
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, nil)
	client := dialPatchServer(t, addr)
	for _, filter := range []string{
		"(ou:dn:=people)",
		"(:dn:2.4.6.8.10:=Dino)",
		"(&(objectClass=person)(!(ou:dn:=people)))",
		"(cn:caseExactMatch:=Fred)",
	} {
		_, err := client.Search(ldap.NewSearchRequest("dc=example,dc=com", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, nil, nil))
		require.NoError(t, err, filter)
		assert.Equal(t, filter, <-got)
	}
}
