// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_MaxConnections covers patch 15: connections beyond the limit get
// a Notice of Disconnection with ResultBusy and are closed; a freed slot is
// usable again.
func TestPatch_MaxConnections(t *testing.T) {
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
		gldap.WithMaxConnections(2),
		gldap.WithOnClose(func(id int) { closed <- id }),
	})

	first, second := dialRaw(t, addr), dialRaw(t, addr)
	for i, c := range []*rawConn{first, second} {
		c.send(bindRequest(int64(i+1), 3, "cn=ok", simpleAuth("x")))
		assert.Equal(t, int64(i+1), parseResult(t, c.read()).messageID)
		waitFor(t, binds, "bind")
	}

	third := dialRaw(t, addr)
	third.send(bindRequest(1, 3, "cn=third", simpleAuth("x")))
	requireNoticeOfDisconnection(t, third.read(), gldap.ResultBusy)
	third.requireClosed()
	assert.Empty(t, binds, "a rejected connection never reaches a handler")
	assert.Empty(t, closed, "OnClose is only for served connections")

	// free a slot
	require.NoError(t, first.Close())
	waitFor(t, closed, "OnClose of the first connection")
	fourth := dialRaw(t, addr)
	fourth.send(bindRequest(1, 3, "cn=fourth", simpleAuth("x")))
	res := parseResult(t, fourth.read())
	assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	assert.Equal(t, "cn=fourth", waitFor(t, binds, "bind"))
}
