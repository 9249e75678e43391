// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_IdleTimeout covers patch 10: WithIdleTimeout closes idle
// connections, restarts after every PDU, and never fires while a request of
// the connection is in flight.
func TestPatch_IdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	closed := make(chan time.Time, 10)
	handlerDone := make(chan time.Time, 1)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		// a slow request (think: waiting for an MFA push), 3x the idle timeout
		select {
		case <-time.After(3 * idle):
		case <-r.Context().Done():
			return
		}
		handlerDone <- time.Now()
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{
		gldap.WithIdleTimeout(idle),
		gldap.WithOnClose(func(int) { closed <- time.Now() }),
	})

	t.Run("idle-connection-is-closed", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=alice", simpleAuth("x")))
		lastPDU := time.Now()
		assert.Equal(t, int64(1), parseResult(t, c.read()).messageID)
		c.requireClosed()
		assert.GreaterOrEqual(t, time.Since(lastPDU), idle, "closed before the idle timeout")
		waitFor(t, closed, "OnClose")
	})

	t.Run("each-pdu-restarts-the-clock", func(t *testing.T) {
		c := dialRaw(t, addr)
		start := time.Now()
		for i := int64(1); i <= 10; i++ {
			// pace requests at a quarter of the idle timeout: 10 requests
			// span more than twice the timeout, and each must be answered.
			// (A pause of half the timeout left too little slack on a
			// loaded machine under -race.)
			c.send(bindRequest(i, 3, "cn=alice", simpleAuth("x")))
			assert.Equal(t, i, parseResult(t, c.read()).messageID)
			time.Sleep(idle / 4)
		}
		assert.Greater(t, time.Since(start), 2*idle)
		c.requireClosed()
		waitFor(t, closed, "OnClose")
	})

	t.Run("never-while-a-request-is-in-flight", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 7, "dc=x"))
		res := parseResult(t, c.read()) // arrives ~3x idle later, on the same conn
		assert.Equal(t, int64(7), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
		done := waitFor(t, handlerDone, "slow handler")

		// the idle clock restarts when the last in-flight request completes
		c.requireClosed()
		closedAt := waitFor(t, closed, "OnClose")
		assert.GreaterOrEqual(t, closedAt.Sub(done), idle-50*time.Millisecond)
	})
}
