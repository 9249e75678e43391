// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigEntries is a search handler that answers every search with n entries
// of 64 KiB (0: until a write fails) and a SearchResultDone, recording the
// first write error.
func bigEntries(t *testing.T, n int, writeErr chan<- error) *gldap.Mux {
	t.Helper()
	blob := []string{strings.Repeat("x", 64<<10)}
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		for i := 0; n == 0 || i < n; i++ {
			if i > 2000 { // 128 MiB: far beyond any socket buffer
				t.Error("writes to a client that doesn't read never failed")
				return
			}
			if err := w.Write(r.NewSearchResponseEntry("cn=big", gldap.WithAttributes(map[string][]string{"blob": blob}))); err != nil {
				select {
				case writeErr <- err:
				default:
				}
				return
			}
		}
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	return mux
}

// TestPatch_WriteTimeout covers patch 25: every write gets the write timeout
// as its deadline (not one deadline from accept), a client that doesn't read
// its answers is disconnected, and without a write timeout the idle timeout
// bounds a blocked write, so unread responses can't keep a connection (and
// its handlers) forever.
func TestPatch_WriteTimeout(t *testing.T) {
	t.Run("pipelining-without-reading", func(t *testing.T) {
		const (
			pending  = 8
			requests = 5000
			timeout  = 300 * time.Millisecond
		)
		closed := make(chan time.Time, 1)
		writeErr := make(chan error, 1)
		_, addr := startPatchServer(t, bigEntries(t, 4, writeErr), []gldap.Option{
			gldap.WithMaxPendingRequests(pending),
			gldap.WithWriteTimeout(timeout),
			gldap.WithOnClose(func(int) { closed <- time.Now() }),
		})
		baseline := runtime.NumGoroutine()
		start := time.Now()
		c := dialRaw(t, addr)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			_ = c.SetWriteDeadline(time.Now().Add(patchTestTimeout))
			for i := int64(1); i <= requests; i++ {
				if _, err := c.Write(searchRequest(t, i, "dc=x").Bytes()); err != nil {
					return // disconnected by the server
				}
			}
		}()
		var peak int
		var closedAt time.Time
		deadline := time.After(patchTestTimeout)
	watch:
		for {
			peak = max(peak, runtime.NumGoroutine())
			select {
			case closedAt = <-closed:
				break watch
			case <-deadline:
				t.Fatalf("the client that doesn't read was never disconnected (goroutines: baseline %d, peak %d)", baseline, peak)
			case <-time.After(2 * time.Millisecond):
			}
		}
		<-sent
		t.Logf("goroutines: baseline %d, peak %d; disconnected %v after connecting", baseline, peak, closedAt.Sub(start))
		// the conn's read loop, its handlers, the client's writer and the
		// watcher: a handful more than the pending limit
		assert.LessOrEqual(t, peak-baseline, pending+10, "goroutines grew with the requests")
		err := waitFor(t, writeErr, "the blocked write to fail")
		assert.ErrorContains(t, err, "timeout")
	})

	t.Run("deadline-is-per-write", func(t *testing.T) {
		const timeout = 200 * time.Millisecond
		_, addr := startPatchServer(t, bigEntries(t, 1, nil), []gldap.Option{gldap.WithWriteTimeout(timeout)})
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=alice", simpleAuth("x")))
		assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
		time.Sleep(2 * timeout) // upstream's single deadline from accept has passed
		c.send(bindRequest(2, 3, "cn=alice", simpleAuth("x")))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(2), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	})

	t.Run("slow-reader-keeps-its-connection", func(t *testing.T) {
		// a client that reads, if slowly, is never cut: each write gets
		// its own deadline. The deadline is 200 times the reader's pause,
		// so that a reader descheduled for a while on a loaded machine is
		// still a reader; 200 big entries take longer than it to read.
		const timeout = time.Second
		const n = 200
		_, addr := startPatchServer(t, bigEntries(t, n, nil), []gldap.Option{gldap.WithWriteTimeout(timeout)})
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		start := time.Now()
		for entries := 0; ; entries++ {
			p := c.read()
			if p.Children[1].Tag == gldap.ApplicationSearchResultDone {
				assert.Equal(t, n, entries)
				break
			}
			time.Sleep(5 * time.Millisecond) // 64 KiB per 5 ms: 13 MB/s at most
		}
		assert.Greater(t, time.Since(start), timeout, "the transfer must outlast the write timeout for this to mean anything")
	})

	t.Run("idle-timeout-bounds-writes-without-write-timeout", func(t *testing.T) {
		const idle = 300 * time.Millisecond
		closed := make(chan time.Time, 1)
		writeErr := make(chan error, 1)
		_, addr := startPatchServer(t, bigEntries(t, 0, writeErr), []gldap.Option{
			gldap.WithIdleTimeout(idle),
			gldap.WithOnClose(func(int) { closed <- time.Now() }),
		})
		var sentAt atomic.Int64
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		sentAt.Store(time.Now().UnixNano())
		// never read: the handler blocks writing, so the request stays in
		// flight and the idle deadline is suspended; the write's deadline
		// ends it
		err := waitFor(t, writeErr, "the blocked write to fail")
		assert.ErrorContains(t, err, "timeout")
		closedAt := waitFor(t, closed, "OnClose")
		assert.GreaterOrEqual(t, closedAt.Sub(time.Unix(0, sentAt.Load())), idle)
	})
}
