// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_IncrementalRead covers patch 21: a request's buffer grows as its
// bytes arrive, so a header announcing megabytes costs nothing until they
// do, with or without WithMaxRequestSize.
func TestPatch_IncrementalRead(t *testing.T) {
	var binds atomic.Int64
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		binds.Add(1)
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))

	// heapGrowth is how much the live heap grows, at most, while conns
	// clients each send a header announcing 4 MiB and nothing more, over
	// half a second after the last one was sent.
	heapGrowth := func(t *testing.T, addr string, conns int) uint64 {
		t.Helper()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		// 0x30 0x84 0x00 0x40 0x00 0x00: an LDAPMessage of 4 MiB
		for range conns {
			c := dialRaw(t, addr)
			c.sendBytes([]byte{0x30, 0x84, 0x00, 0x40, 0x00, 0x00})
		}
		var peak uint64
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > before.HeapAlloc && m.HeapAlloc-before.HeapAlloc > peak {
				peak = m.HeapAlloc - before.HeapAlloc
			}
			time.Sleep(20 * time.Millisecond)
		}
		return peak
	}

	const conns = 200
	// each conn costs its goroutines and buffers (a few tens of KiB, more
	// under -race); the 4 MiB each announces must not be allocated (it
	// was: 800 MiB)
	const bound = conns * 64 << 10

	for _, tc := range []struct {
		name string
		opts []gldap.Option
	}{
		{"with-max-request-size", []gldap.Option{gldap.WithMaxRequestSize(8 << 20)}},
		{"default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startPatchServer(t, mux, tc.opts)
			t.Run("header-allocates-nothing", func(t *testing.T) {
				growth := heapGrowth(t, addr, conns)
				t.Logf("heap growth with %d conns announcing 4 MiB: %d KiB", conns, growth>>10)
				assert.Less(t, growth, uint64(bound), "the server allocated what was announced before it arrived")
			})

			t.Run("large-request-in-pieces", func(t *testing.T) {
				// a 3 MiB bind sent in uneven pieces is read and served
				c := dialRaw(t, addr)
				pdu := bindRequest(1, 3, "cn=a", simpleAuth(strings.Repeat("p", 3<<20))).Bytes()
				for off, step := 0, 1; off < len(pdu); step = step*3 + 1 {
					end := min(len(pdu), off+step)
					c.sendBytes(pdu[off:end])
					off = end
				}
				assert.Equal(t, int64(gldap.ResultSuccess), parseResult(t, c.read()).code)
			})

			t.Run("pipelined-requests", func(t *testing.T) {
				// requests sent in one write, each read with its own buffer
				c := dialRaw(t, addr)
				var all []byte
				for id := int64(1); id <= 5; id++ {
					all = append(all, bindRequest(id, 3, fmt.Sprintf("cn=%d", id), simpleAuth(strings.Repeat("x", int(id)*1000))).Bytes()...)
				}
				c.sendBytes(all)
				got := map[int64]bool{}
				for range 5 {
					r := parseResult(t, c.read())
					assert.Equal(t, int64(gldap.ResultSuccess), r.code)
					got[r.messageID] = true
				}
				assert.Len(t, got, 5)
			})

			t.Run("indefinite-length-refused", func(t *testing.T) {
				// RFC 4511 5.1: only definite lengths, with or without a
				// size limit
				c := dialRaw(t, addr)
				c.sendBytes([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00, 0x00})
				requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
				c.requireClosed()
			})
		})
	}
	assert.Positive(t, binds.Load())
}
