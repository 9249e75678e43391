// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heldSearches is a mux whose search handler holds each request until it is
// released (or its context ends), counting how many run at once.
type heldSearches struct {
	release  chan struct{}
	started  chan int64 // message IDs, as handlers start
	canceled chan int64 // message IDs whose context ended before release
	running  atomic.Int32
	maxSeen  atomic.Int32
}

func newHeldSearches(t *testing.T) (*heldSearches, *gldap.Mux) {
	t.Helper()
	h := &heldSearches{
		release:  make(chan struct{}),
		started:  make(chan int64, 1000),
		canceled: make(chan int64, 1000),
	}
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		n := h.running.Add(1)
		defer h.running.Add(-1)
		for {
			m := h.maxSeen.Load()
			if n <= m || h.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		m, err := r.GetSearchMessage()
		if err != nil {
			t.Errorf("not a search: %v", err)
			return
		}
		id := m.GetID()
		h.started <- id
		select {
		case <-h.release:
			_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		case <-r.Context().Done():
			h.canceled <- id
		}
	}))
	require.NoError(t, mux.Abandon(func(*gldap.ResponseWriter, *gldap.Request) {}))
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		t.Error("the StartTLS handler must not run with operations outstanding")
	}, gldap.ExtendedOperationStartTLS))
	return h, mux
}

// eventually polls cond until it holds or patchTestTimeout passes.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(patchTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPatch_MaxPendingRequests covers patch 24: at most n requests of one
// connection run at once; beyond that the connection isn't read from, and
// the requests the read loop handles itself (abandon, unbind, StartTLS) keep
// working at the limit.
func TestPatch_MaxPendingRequests(t *testing.T) {
	t.Run("pipelined-requests-wait-for-a-slot", func(t *testing.T) {
		const limit, total = 4, 50
		h, mux := newHeldSearches(t)
		_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithMaxPendingRequests(limit)})
		c := dialRaw(t, addr)
		var batch []byte
		for i := int64(1); i <= total; i++ {
			batch = append(batch, searchRequest(t, i, "dc=x").Bytes()...)
		}
		c.sendBytes(batch)
		for range limit {
			waitFor(t, h.started, "a held search to start")
		}
		// release them one at a time: each release lets exactly one more in
		for i := 0; i < total; i++ {
			h.release <- struct{}{}
			res := parseResult(t, c.read())
			assert.Equal(t, int64(gldap.ResultSuccess), res.code)
			if i+limit < total {
				waitFor(t, h.started, "the next search to start")
			}
		}
		assert.Equal(t, int32(limit), h.maxSeen.Load(), "more than %d requests of one connection ran at once", limit)
	})

	t.Run("abandon-at-the-limit", func(t *testing.T) {
		h, mux := newHeldSearches(t)
		_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithMaxPendingRequests(2)})
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		c.send(searchRequest(t, 2, "dc=x"))
		waitFor(t, h.started, "search 1")
		waitFor(t, h.started, "search 2")
		// at the limit: the abandon is still read and cancels search 1,
		// whose slot then serves search 3
		c.send(abandonRequest(3, 1))
		assert.Equal(t, int64(1), waitFor(t, h.canceled, "search 1 abandoned"))
		c.send(searchRequest(t, 4, "dc=x"))
		assert.Equal(t, int64(4), waitFor(t, h.started, "search 4"))
		h.release <- struct{}{}
		h.release <- struct{}{}
		got := map[int64]bool{}
		for range 2 {
			got[parseResult(t, c.read()).messageID] = true
		}
		assert.Equal(t, map[int64]bool{2: true, 4: true}, got)
	})

	t.Run("starttls-and-unbind-at-the-limit", func(t *testing.T) {
		h, mux := newHeldSearches(t)
		closed := make(chan int, 1)
		_, addr := startPatchServer(t, mux, []gldap.Option{
			gldap.WithMaxPendingRequests(1),
			gldap.WithOnClose(func(id int) { closed <- id }),
		})
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		waitFor(t, h.started, "search 1")
		c.send(startTLSRequest(2))
		requireStartTLSRefused(t, c.read(), 2)
		unbind := envelope(3)
		unbind.AppendChild(gldapUnbindOp())
		c.send(unbind)
		// the unbind ends the connection and cancels the held search
		assert.Equal(t, int64(1), waitFor(t, h.canceled, "search 1 cancelled by the unbind"))
		c.requireClosed()
		waitFor(t, closed, "OnClose")
	})

	t.Run("stop-while-waiting-for-a-slot", func(t *testing.T) {
		h, mux := newHeldSearches(t)
		logs := &testLogBuf{}
		s, addr := startPatchServer(t, mux, []gldap.Option{
			gldap.WithMaxPendingRequests(1),
			gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})),
		})
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		waitFor(t, h.started, "search 1")
		c.send(searchRequest(t, 2, "dc=x")) // waits for search 1's slot
		eventually(t, func() bool { return strings.Contains(logs.String(), "not reading until one completes") }, "the read loop to wait for a slot")
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop() }()
		require.NoError(t, waitFor(t, stopped, "Stop"))
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultUnavailable)
		c.requireClosed()
		assert.Equal(t, int64(1), waitFor(t, h.canceled, "search 1 cancelled by Stop"))
		select {
		case id := <-h.started:
			t.Errorf("search %d started after Stop", id)
		default:
		}
	})
}
