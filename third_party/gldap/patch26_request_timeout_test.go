// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireRequestTimeoutNotice reads the notice sent for a request that
// didn't arrive in time and the connection's end, and returns when the
// notice came.
func requireRequestTimeoutNotice(t *testing.T, c *rawConn) time.Time {
	t.Helper()
	p := c.read()
	at := time.Now()
	requireNoticeOfDisconnection(t, p, gldap.ResultProtocolError)
	assert.Equal(t, "request not received in time", parseResult(t, p).diag)
	c.requireClosed()
	return at
}

// TestPatch_RequestTimeout covers patch 26: once the first byte of a request
// has arrived, the whole request must arrive within the request timeout.
func TestPatch_RequestTimeout(t *testing.T) {
	const (
		timeout = 300 * time.Millisecond
		idle    = 10 * time.Second // far away: only the request timeout may fire
	)
	released := make(chan struct{})
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		select {
		case <-time.After(timeout / 2):
		case <-r.Context().Done():
		}
		released <- struct{}{}
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{
		gldap.WithRequestTimeout(timeout),
		gldap.WithIdleTimeout(idle),
	})
	bind := bindRequest(1, 3, "cn=alice,dc=example,dc=com", simpleAuth("password")).Bytes()

	t.Run("a-byte-at-a-time", func(t *testing.T) {
		c := dialRaw(t, addr)
		first := time.Now()
		go func() {
			// 40 ms a byte: the bind would take more than 2 s to arrive
			for _, b := range bind {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(40 * time.Millisecond)
			}
		}()
		at := requireRequestTimeoutNotice(t, c)
		assert.GreaterOrEqual(t, at.Sub(first), timeout)
		assert.Less(t, at.Sub(first), timeout+time.Second)
	})

	t.Run("header-then-nothing", func(t *testing.T) {
		c := dialRaw(t, addr)
		first := time.Now()
		c.sendBytes(bind[:2])
		at := requireRequestTimeoutNotice(t, c)
		assert.GreaterOrEqual(t, at.Sub(first), timeout)
		assert.Less(t, at.Sub(first), timeout+time.Second)
	})

	t.Run("a-request-ending-meanwhile-doesnt-extend-it", func(t *testing.T) {
		// a search completes while the next request is arriving: the
		// idle deadline its completion restores must not replace the
		// request's
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		first := time.Now()
		c.sendBytes(bind[:5])
		waitFor(t, released, "the search to complete")
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		at := requireRequestTimeoutNotice(t, c)
		assert.Less(t, at.Sub(first), timeout+time.Second)
	})

	t.Run("requests-in-time-and-idle-gaps-are-fine", func(t *testing.T) {
		c := dialRaw(t, addr)
		// silence before the first byte is not a request in progress
		time.Sleep(2 * timeout)
		c.sendBytes(bind[:10])
		time.Sleep(timeout / 3)
		c.sendBytes(bind[10:])
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
		time.Sleep(2 * timeout)
		second := bindRequest(2, 3, "cn=alice,dc=example,dc=com", simpleAuth("password"))
		c.send(second)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	})

	t.Run("pipelined-requests", func(t *testing.T) {
		// requests that arrive whole in one segment are read in time
		// whatever their number
		c := dialRaw(t, addr)
		var batch []byte
		for i := int64(1); i <= 200; i++ {
			batch = append(batch, bindRequest(i, 3, "cn=alice", simpleAuth("x")).Bytes()...)
		}
		c.sendBytes(batch)
		for i := int64(1); i <= 200; i++ {
			p := c.read()
			require.Equal(t, ber.Tag(gldap.ApplicationBindResponse), p.Children[1].Tag)
		}
	})
}
