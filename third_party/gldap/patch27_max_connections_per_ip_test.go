// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"net"
	"testing"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dialRawFrom connects to addr from the local IP address from.
func dialRawFrom(t *testing.T, from, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: patchTestTimeout}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c}
}

// TestPatch_MaxConnectionsPerIP covers patch 27: connections from one
// address beyond the limit get a busy Notice of Disconnection and are
// closed; other addresses are served; a freed slot is usable again.
func TestPatch_MaxConnectionsPerIP(t *testing.T) {
	closed := make(chan int, 10)
	binds := make(chan string, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, _ := r.GetSimpleBindMessage()
		binds <- m.UserName
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{
		gldap.WithMaxConnectionsPerIP(2),
		gldap.WithMaxConnections(10),
		gldap.WithOnClose(func(id int) { closed <- id }),
	})
	bind := func(c *rawConn, name string) {
		t.Helper()
		c.send(bindRequest(1, 3, name, simpleAuth("x")))
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
		assert.Equal(t, name, waitFor(t, binds, "bind "+name))
	}

	first, second := dialRawFrom(t, "127.0.0.1", addr), dialRawFrom(t, "127.0.0.1", addr)
	bind(first, "cn=first")
	bind(second, "cn=second")

	third := dialRawFrom(t, "127.0.0.1", addr)
	third.send(bindRequest(1, 3, "cn=third", simpleAuth("x")))
	p := third.read()
	requireNoticeOfDisconnection(t, p, gldap.ResultBusy)
	assert.Equal(t, "too many connections from your address", parseResult(t, p).diag)
	third.requireClosed()

	// another address is served, twice
	other1, other2 := dialRawFrom(t, "127.0.0.2", addr), dialRawFrom(t, "127.0.0.2", addr)
	bind(other1, "cn=other1")
	bind(other2, "cn=other2")
	assert.Empty(t, binds, "a refused connection never reaches a handler")
	assert.Empty(t, closed, "OnClose is only for served connections")

	// free a slot of 127.0.0.1
	require.NoError(t, first.Close())
	waitFor(t, closed, "OnClose of the first connection")
	fourth := dialRawFrom(t, "127.0.0.1", addr)
	bind(fourth, "cn=fourth")
}
