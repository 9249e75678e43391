// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_MaxRequestSize covers patch 17: with WithMaxRequestSize, a PDU
// announcing more content than allowed is refused from its header alone.
func TestPatch_MaxRequestSize(t *testing.T) {
	const limit = 1024
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithMaxRequestSize(limit)})

	t.Run("within-limit", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		require.NoError(t, client.Bind("cn=alice", "x"))
		// a bind whose content is exactly the limit
		c := dialRaw(t, addr)
		pdu := bindRequest(1, 3, "cn=a", simpleAuth("x")).Bytes()
		pad := limit - (len(pdu) - 2) // content octets so far: len - short header
		pdu = bindRequest(1, 3, "cn=a", simpleAuth(strings.Repeat("p", pad-3))).Bytes()
		require.Equal(t, []byte{0x30, 0x82, limit >> 8, limit & 0xff}, pdu[:4], "test PDU must be exactly at the limit")
		c.sendBytes(pdu)
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
	})

	requireTooLarge := func(t *testing.T, c *rawConn) {
		t.Helper()
		p := c.read()
		requireNoticeOfDisconnection(t, p, gldap.ResultProtocolError)
		assert.Equal(t, "request too large", parseResult(t, p).diag)
		c.requireClosed()
	}

	t.Run("over-limit-refused-from-header", func(t *testing.T) {
		c := dialRaw(t, addr)
		// announces 100 MB and sends nothing else: must not wait for it
		c.sendBytes([]byte{0x30, 0x84, 0x05, 0xf5, 0xe1, 0x00})
		requireTooLarge(t, c)
	})

	t.Run("over-limit-go-ldap", func(t *testing.T) {
		client := dialPatchServer(t, addr)
		err := client.Bind("cn=alice", strings.Repeat("x", 2*limit))
		require.Error(t, err)
		assert.False(t, ldap.IsErrorWithCode(err, ldap.LDAPResultSuccess))
	})

	t.Run("huge-length-field", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.sendBytes([]byte{0x30, 0x88, 0, 0, 0, 0, 0, 0, 0, 1})
		requireTooLarge(t, c)
	})

	t.Run("indefinite-length", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.sendBytes([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00})
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		c.requireClosed()
	})

	t.Run("inner-length-beyond-outer", func(t *testing.T) {
		c := dialRaw(t, addr)
		// outer SEQUENCE of 5 octets whose OCTET STRING claims 100
		c.sendBytes([]byte{0x30, 0x05, 0x04, 0x64, 'a', 'b', 'c'})
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		c.requireClosed()
	})
}
