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

// TestPatch_SearchReference covers patch 12: search handlers can send
// SearchResultReference PDUs.
func TestPatch_SearchReference(t *testing.T) {
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewSearchResponseEntry("cn=alice,dc=example,dc=com", gldap.WithAttributes(map[string][]string{"cn": {"alice"}})))
		_ = w.Write(r.NewSearchResponseReference("ldap://east.example.com/ou=east,dc=example,dc=com??sub", "ldap://backup.example.com/ou=east,dc=example,dc=com??sub"))
		_ = w.Write(r.NewSearchResponseReference("ldap://west.example.com/ou=west,dc=example,dc=com??sub"))
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, nil)

	t.Run("go-ldap", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		res, err := client.Search(ldap.NewSearchRequest("dc=example,dc=com", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(cn=*)", nil, nil))
		require.NoError(t, err)
		require.Len(t, res.Entries, 1)
		// go-ldap v3.4.15 keeps only the first URI of each reference; the
		// "encoding" subtest checks that all of them are on the wire
		assert.Equal(t, []string{
			"ldap://east.example.com/ou=east,dc=example,dc=com??sub",
			"ldap://west.example.com/ou=west,dc=example,dc=com??sub",
		}, res.Referrals)
	})

	t.Run("encoding", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 9, "dc=example,dc=com"))
		entry := c.read()
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultEntry), entry.Children[1].Tag)
		ref := c.read()
		assert.Equal(t, int64(9), ref.Children[0].Value.(int64))
		op := ref.Children[1]
		assert.Equal(t, ber.ClassApplication, op.ClassType)
		assert.Equal(t, ber.TypeConstructed, op.TagType)
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultReference), op.Tag)
		require.Len(t, op.Children, 2)
		for _, uri := range op.Children {
			assert.Equal(t, ber.ClassUniversal, uri.ClassType)
			assert.Equal(t, ber.Tag(ber.TagOctetString), uri.Tag)
		}
		assert.Equal(t, "ldap://east.example.com/ou=east,dc=example,dc=com??sub", op.Children[0].Data.String())
		assert.Equal(t, "ldap://backup.example.com/ou=east,dc=example,dc=com??sub", op.Children[1].Data.String())
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultReference), c.read().Children[1].Tag)
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultDone), c.read().Children[1].Tag)
	})
}
