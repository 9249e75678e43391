// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_Lifecycle covers patch 14 (and 14a): Stop returns promptly with
// idle clients connected, after in-flight handlers returned; Ready is false
// when listening failed; Stop before Run.
func TestPatch_Lifecycle(t *testing.T) {
	t.Run("stop-with-idle-clients", func(t *testing.T) {
		var closedCount atomic.Int32
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		s, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithOnClose(func(int) { closedCount.Add(1) })})

		var clients []*rawConn
		for i := int64(1); i <= 3; i++ {
			c := dialRaw(t, addr)
			c.send(bindRequest(i, 3, "cn=idle", simpleAuth("x")))
			assert.Equal(t, i, parseResult(t, c.read()).messageID)
			clients = append(clients, c)
		}
		idle := dialRaw(t, addr) // never sent anything
		clients = append(clients, idle)
		// make sure the last conn was accepted (it's served once it answers)
		idle.send(bindRequest(9, 3, "cn=idle", simpleAuth("x")))
		assert.Equal(t, int64(9), parseResult(t, idle.read()).messageID)

		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop() }()
		require.NoError(t, waitFor(t, stopped, "Stop with idle clients"))
		assert.Equal(t, int32(4), closedCount.Load(), "OnClose ran for every conn before Stop returned")
		for _, c := range clients {
			requireNoticeOfDisconnection(t, c.read(), gldap.ResultUnavailable)
			c.requireClosed()
		}
		assert.False(t, s.Ready())
		// a second Stop is harmless
		require.NoError(t, s.Stop())
	})

	t.Run("stop-waits-for-in-flight-handlers", func(t *testing.T) {
		started := make(chan struct{}, 1)
		var returned atomic.Bool
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
			defer returned.Store(true)
			started <- struct{}{}
			<-r.Context().Done()
			_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultUnavailable)))
		}))
		s, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		waitFor(t, started, "search")

		require.NoError(t, s.Stop())
		assert.True(t, returned.Load(), "Stop returned before the handler")
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, int64(gldap.ResultUnavailable), res.code)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultUnavailable)
		c.requireClosed()
	})

	t.Run("ready-false-on-listen-error", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer busy.Close()
		s, err := gldap.NewServer()
		require.NoError(t, err)
		err = s.Run(busy.Addr().String())
		require.Error(t, err)
		assert.False(t, s.Ready())
		assert.Nil(t, s.Addr())
		require.NoError(t, s.Stop())
	})

	t.Run("stop-before-run", func(t *testing.T) {
		s, err := gldap.NewServer()
		require.NoError(t, err)
		require.NoError(t, s.Stop())
		runErr := make(chan error, 1)
		go func() { runErr <- s.Run("127.0.0.1:0") }()
		require.NoError(t, waitFor(t, runErr, "Run after Stop to return"))
		assert.False(t, s.Ready())
	})

	t.Run("stop-with-clients-connecting", func(t *testing.T) {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		s, addr := startPatchServer(t, mux, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					c, err := net.DialTimeout("tcp", addr, time.Second)
					if err != nil {
						return // listener closed
					}
					_ = c.Close()
				}
			}()
		}
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop() }()
		require.NoError(t, waitFor(t, stopped, "Stop while clients connect"))
		cancel()
		wg.Wait()
	})
}

// TestPatch_StopWithClientNotReading covers patch 14b: Stop returns even when
// a handler is blocked writing to a client that doesn't read.
func TestPatch_StopWithClientNotReading(t *testing.T) {
	started := make(chan struct{}, 1)
	writeErr := make(chan error, 1)
	big := make([]string, 1)
	big[0] = string(make([]byte, 1<<20))
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		started <- struct{}{}
		for {
			// a handler that ignores its context and floods the client
			if err := w.Write(r.NewSearchResponseEntry("cn=big", gldap.WithAttributes(map[string][]string{"blob": big}))); err != nil {
				writeErr <- err
				return
			}
		}
	}))
	s, addr := startPatchServer(t, mux, nil)
	c := dialRaw(t, addr) // never reads
	c.send(searchRequest(t, 1, "dc=x"))
	waitFor(t, started, "search")

	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	require.NoError(t, waitFor(t, stopped, "Stop with a client that doesn't read"))
	assert.Error(t, waitFor(t, writeErr, "the blocked write to fail"))
}
