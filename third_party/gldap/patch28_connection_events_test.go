// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connEvents records a server's connection events.
type connEvents struct {
	mu  sync.Mutex
	evs []gldap.ConnEvent
	ch  chan gldap.ConnEvent
}

func newConnEvents() *connEvents { return &connEvents{ch: make(chan gldap.ConnEvent, 100)} }

func (e *connEvents) record(ev gldap.ConnEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	e.ch <- ev
}

// next returns the next event of kind, skipping others.
func (e *connEvents) next(t *testing.T, kind gldap.ConnEventKind) gldap.ConnEvent {
	t.Helper()
	for {
		ev := waitFor(t, e.ch, "a "+kind.String()+" event")
		if ev.Kind == kind {
			return ev
		}
	}
}

func (e *connEvents) count(kind gldap.ConnEventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

// TestPatch_ConnectionEvents covers patch 28: WithConnectionEvents reports
// every accepted connection (before it sends anything), every close with
// the reason the server closed it, and every refusal with its reason.
func TestPatch_ConnectionEvents(t *testing.T) {
	newServer := func(t *testing.T, mux *gldap.Mux, opts ...gldap.Option) (*gldap.Server, string, *connEvents) {
		t.Helper()
		evs := newConnEvents()
		s, addr := startPatchServer(t, mux, append(opts, gldap.WithConnectionEvents(evs.record)))
		return s, addr, evs
	}
	bindMux := func(t *testing.T) *gldap.Mux {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		return mux
	}

	t.Run("opened-before-a-byte-closed-by-the-client", func(t *testing.T) {
		_, addr, evs := newServer(t, bindMux(t))
		c := dialRaw(t, addr)
		opened := evs.next(t, gldap.ConnOpened)
		assert.NotZero(t, opened.ConnID)
		assert.Equal(t, c.LocalAddr().String(), opened.RemoteAddr.String())
		require.NoError(t, c.Close())
		closed := evs.next(t, gldap.ConnClosed)
		assert.Equal(t, opened.ConnID, closed.ConnID)
		assert.Empty(t, closed.Reason, "the client closed it")
	})

	t.Run("idle", func(t *testing.T) {
		_, addr, evs := newServer(t, bindMux(t), gldap.WithIdleTimeout(200*time.Millisecond))
		c := dialRaw(t, addr)
		evs.next(t, gldap.ConnOpened)
		c.requireClosed()
		assert.Equal(t, gldap.ReasonIdle, evs.next(t, gldap.ConnClosed).Reason)
	})

	t.Run("request-timeout", func(t *testing.T) {
		_, addr, evs := newServer(t, bindMux(t), gldap.WithRequestTimeout(200*time.Millisecond), gldap.WithIdleTimeout(10*time.Second))
		c := dialRaw(t, addr)
		c.sendBytes([]byte{0x30, 0x20})
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		assert.Equal(t, gldap.ReasonRequestTimeout, evs.next(t, gldap.ConnClosed).Reason)
	})

	t.Run("write-timeout", func(t *testing.T) {
		_, addr, evs := newServer(t, bigEntries(t, 0, make(chan error, 1)), gldap.WithWriteTimeout(200*time.Millisecond))
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x")) // and never read
		assert.Equal(t, gldap.ReasonWriteTimeout, evs.next(t, gldap.ConnClosed).Reason)
	})

	t.Run("protocol-error-and-stopping", func(t *testing.T) {
		s, addr, evs := newServer(t, bindMux(t))
		bad := dialRaw(t, addr)
		bad.sendBytes([]byte("GET / HTTP/1.0\r\n\r\n"))
		assert.Equal(t, gldap.ReasonProtocolError, evs.next(t, gldap.ConnClosed).Reason)
		idle := dialRaw(t, addr)
		_ = idle
		evs.next(t, gldap.ConnOpened)
		require.NoError(t, s.Stop())
		assert.Equal(t, gldap.ReasonStopping, evs.next(t, gldap.ConnClosed).Reason)
	})

	t.Run("refused", func(t *testing.T) {
		_, addr, evs := newServer(t, bindMux(t), gldap.WithMaxConnections(3), gldap.WithMaxConnectionsPerIP(2))
		a1, a2 := dialRawFrom(t, "127.0.0.1", addr), dialRawFrom(t, "127.0.0.1", addr)
		_, _ = a1, a2
		evs.next(t, gldap.ConnOpened)
		evs.next(t, gldap.ConnOpened)
		a3 := dialRawFrom(t, "127.0.0.1", addr)
		ev := evs.next(t, gldap.ConnRefused)
		assert.Equal(t, gldap.ReasonPerIP, ev.Reason)
		assert.Zero(t, ev.ConnID)
		assert.Equal(t, a3.LocalAddr().String(), ev.RemoteAddr.String())
		b1 := dialRawFrom(t, "127.0.0.2", addr)
		_ = b1
		evs.next(t, gldap.ConnOpened)
		b2 := dialRawFrom(t, "127.0.0.2", addr)
		_ = b2
		assert.Equal(t, gldap.ReasonMaxConnections, evs.next(t, gldap.ConnRefused).Reason)
		assert.Equal(t, 3, evs.count(gldap.ConnOpened))
	})

	t.Run("opened-and-closed-balance", func(t *testing.T) {
		// what a gauge of open connections needs: every opened conn is
		// closed exactly once, whatever ends it
		s, addr, evs := newServer(t, bindMux(t), gldap.WithIdleTimeout(150*time.Millisecond), gldap.WithMaxConnections(5))
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				switch i % 4 {
				case 0: // a bind, then idle
					_, _ = c.Write(bindRequest(1, 3, "cn=x", simpleAuth("x")).Bytes())
				case 1: // garbage
					_, _ = c.Write([]byte(strings.Repeat("x", 10)))
				case 2: // gone at once
					return
				} // case 3: idle
				_ = c.SetReadDeadline(time.Now().Add(patchTestTimeout))
				_, _ = io.Copy(io.Discard, c) // until the server closes
			}()
		}
		wg.Wait()
		require.NoError(t, s.Stop())
		opened, closed, refused := evs.count(gldap.ConnOpened), evs.count(gldap.ConnClosed), evs.count(gldap.ConnRefused)
		assert.Equal(t, opened, closed)
		assert.Equal(t, 20, opened+refused)
	})
}
