// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_GracefulShutdown covers patch 30: Shutdown stops accepting,
// closes idle connections at once, lets an in-flight handler finish with its
// context intact and its answer delivered, and, when its context ends
// first, cancels what is left.
func TestPatch_GracefulShutdown(t *testing.T) {
	// a bind handler that holds its request until told, then answers
	// success if its context is still alive and unavailable otherwise
	type held struct{ release chan struct{} }
	newMux := func(t *testing.T, started chan<- held) *gldap.Mux {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			h := held{release: make(chan struct{})}
			started <- h
			code := gldap.ResultSuccess
			select {
			case <-h.release:
			case <-r.Context().Done():
				code = gldap.ResultUnavailable
			}
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(code)))
		}))
		return mux
	}

	t.Run("in-flight-handler-finishes", func(t *testing.T) {
		started := make(chan held, 1)
		s, addr := startPatchServer(t, newMux(t, started), nil)
		busy := dialRaw(t, addr)
		busy.send(bindRequest(1, 3, "cn=busy", simpleAuth("x")))
		h := waitFor(t, started, "the bind handler")
		idle := dialRaw(t, addr)
		// make sure the idle conn was accepted: a bind answered
		idle.send(bindRequest(1, 3, "cn=idle", simpleAuth("x")))
		waitFor(t, started, "the idle conn's bind").release <- struct{}{}
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, idle.read()).code)

		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		// the idle conn is told and closed while the bind is still held
		requireNoticeOfDisconnection(t, idle.read(), gldap.ResultUnavailable)
		idle.requireClosed()
		// no new connections
		require.Eventually(t, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return true
			}
			c.Close()
			return false
		}, patchTestTimeout, 5*time.Millisecond, "the listener still accepts")
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned (%v) before the in-flight handler", err)
		default:
		}

		close(h.release)
		res := parseResult(t, busy.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code, "the handler's context was cancelled by Shutdown")
		requireNoticeOfDisconnection(t, busy.read(), gldap.ResultUnavailable)
		busy.requireClosed()
		require.NoError(t, waitFor(t, shut, "Shutdown"))
		assert.False(t, s.Ready())
	})

	t.Run("requests-after-shutdown-are-not-served", func(t *testing.T) {
		started := make(chan held, 2)
		s, addr := startPatchServer(t, newMux(t, started), nil)
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=a", simpleAuth("x")))
		h := waitFor(t, started, "the bind handler")
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		require.Eventually(t, func() bool { return !s.Ready() }, patchTestTimeout, time.Millisecond)
		// a request sent while draining is not read
		c.send(bindRequest(2, 3, "cn=b", simpleAuth("x")))
		close(h.release)
		assert.Equal(t, int64(1), parseResult(t, c.read()).messageID)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultUnavailable)
		c.requireClosed()
		require.NoError(t, waitFor(t, shut, "Shutdown"))
		assert.Empty(t, started, "a request sent after Shutdown reached its handler")
	})

	t.Run("deadline-cancels-what-is-left", func(t *testing.T) {
		started := make(chan held, 1)
		s, addr := startPatchServer(t, newMux(t, started), nil)
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=slow", simpleAuth("x")))
		waitFor(t, started, "the bind handler")

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		begin := time.Now()
		err := s.Shutdown(ctx)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "Shutdown returned %v", err)
		assert.GreaterOrEqual(t, time.Since(begin), 300*time.Millisecond)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(gldap.ResultUnavailable), res.code, "the handler was not cancelled at the deadline")
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultUnavailable)
		c.requireClosed()
		// Stop after Shutdown is harmless (the cleanup calls it too)
		require.NoError(t, s.Stop())
	})

	t.Run("shutdown-before-run", func(t *testing.T) {
		s, err := gldap.NewServer()
		require.NoError(t, err)
		require.NoError(t, s.Shutdown(context.Background()))
		done := make(chan error, 1)
		go func() { done <- s.Run("127.0.0.1:0") }()
		require.NoError(t, waitFor(t, done, "Run after Shutdown"))
	})
}
