// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// berHeader is an element's identifier octet and length, with a 4-octet
// length when the content is long (as Windows clients do).
func berHeader(identifier byte, n int) []byte {
	if n < 0x80 {
		return []byte{identifier, byte(n)}
	}
	return []byte{identifier, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// berTLV encodes one element from its identifier octet and content.
func berTLV(identifier byte, content []byte) []byte {
	return append(berHeader(identifier, len(content)), content...)
}

// nest wraps core in n constructed elements with the given identifier, in
// time linear in the result (wrapping one level at a time would copy it n
// times, and go-ldap's encoder does, which is the cost under test).
func nest(core []byte, identifier byte, n int) []byte {
	hdrs := make([][]byte, n)
	size := len(core)
	for i := range hdrs {
		hdrs[i] = berHeader(identifier, size)
		size += len(hdrs[i])
	}
	out := make([]byte, 0, size)
	for i := n - 1; i >= 0; i-- {
		out = append(out, hdrs[i]...)
	}
	return append(out, core...)
}

// nestedNotFilter is (!(!(...(cn=value)...))) with nots NOT filters.
func nestedNotFilter(nots int, value string) []byte {
	return nest(berTLV(0xa3, append(berTLV(0x04, []byte("cn")), berTLV(0x04, []byte(value))...)), 0xa2, nots)
}

// rawSearch is a SearchRequest for base "dc=example,dc=com", subtree, with a
// raw filter and controls (nil: none).
func rawSearch(messageID byte, filter, controls []byte) []byte {
	var op []byte
	op = append(op, berTLV(0x04, []byte("dc=example,dc=com"))...)
	op = append(op, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00)
	op = append(op, filter...)
	op = append(op, 0x30, 0x00)
	msg := append([]byte{0x02, 0x01, messageID}, berTLV(0x63, op)...)
	if controls != nil {
		msg = append(msg, berTLV(0xa0, controls)...)
	}
	return berTLV(0x30, msg)
}

// depthOf is the nesting depth of a search built by rawSearch with nots NOT
// filters: LDAPMessage 1, SearchRequest 2, the NOTs 3..nots+2, the equality
// match nots+3, its attribute and value nots+4.
func depthOf(nots int) int { return nots + 4 }

// allocatedDuring is how many bytes the whole process allocated while f ran.
func allocatedDuring(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestPatch_NestingDepth covers patch 22: a request nested deeper than 64
// levels is refused before it is decoded (protocolError with its message ID,
// then a Notice of Disconnection), and decoding, filters included, costs
// time and memory linear in the request's size.
func TestPatch_NestingDepth(t *testing.T) {
	var searches atomic.Int64
	var lastFilter atomic.Value
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		searches.Add(1)
		m, err := r.GetSearchMessage()
		if err == nil {
			lastFilter.Store(m.Filter)
		}
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithMaxRequestSize(4 << 20)})

	// requireRefused: the request's own answer (appTag, its message ID,
	// protocolError), then the notice, then EOF
	requireRefused := func(t *testing.T, c *rawConn, messageID int64, appTag ber.Tag, diag string) {
		t.Helper()
		r := parseResult(t, c.read())
		assert.Equal(t, messageID, r.messageID)
		assert.Equal(t, appTag, r.appTag)
		assert.Equal(t, int64(gldap.ResultProtocolError), r.code)
		assert.Equal(t, diag, r.diag)
		p := c.read()
		requireNoticeOfDisconnection(t, p, gldap.ResultProtocolError)
		assert.Equal(t, diag, parseResult(t, p).diag)
		c.requireClosed()
	}

	t.Run("depth-64-accepted", func(t *testing.T) {
		require.Equal(t, 64, depthOf(60))
		before := searches.Load()
		c := dialRaw(t, addr)
		c.sendBytes(rawSearch(7, nestedNotFilter(60, "x"), nil))
		r := parseResult(t, c.read())
		assert.Equal(t, int64(7), r.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), r.code)
		assert.Equal(t, before+1, searches.Load())
		assert.Equal(t, strings.Repeat("(!", 60)+"(cn=x)"+strings.Repeat(")", 60), lastFilter.Load())
	})

	t.Run("depth-65-refused", func(t *testing.T) {
		before := searches.Load()
		c := dialRaw(t, addr)
		c.sendBytes(rawSearch(8, nestedNotFilter(61, "x"), nil))
		requireRefused(t, c, 8, gldap.ApplicationSearchResultDone, "request nested too deeply")
		assert.Equal(t, before, searches.Load(), "the handler must not run")
	})

	t.Run("deep-controls-refused-with-bind-response", func(t *testing.T) {
		// the op is shallow, its controls are not: the answer still has
		// the bind's message ID and type
		var ctrl []byte = berTLV(0x04, []byte("1.2.3"))
		deep := nest(nil, 0x30, 71)
		ctrl = berTLV(0x30, append(ctrl, deep...))
		msg := append([]byte{0x02, 0x01, 0x09}, bindRequest(9, 3, "cn=a", simpleAuth("x")).Children[1].Bytes()...)
		msg = append(msg, berTLV(0xa0, ctrl)...)
		c := dialRaw(t, addr)
		c.sendBytes(berTLV(0x30, msg))
		requireRefused(t, c, 9, gldap.ApplicationBindResponse, "request nested too deeply")
	})

	t.Run("no-message-id-notice-only", func(t *testing.T) {
		// 70 nested SEQUENCEs: no message ID to answer, just the notice
		deep := nest(nil, 0x30, 71)
		c := dialRaw(t, addr)
		c.sendBytes(deep)
		p := c.read()
		requireNoticeOfDisconnection(t, p, gldap.ResultProtocolError)
		assert.Equal(t, "request nested too deeply", parseResult(t, p).diag)
		c.requireClosed()
	})

	t.Run("3MB-990-deep-bounded", func(t *testing.T) {
		// issue 8: 990 nested filters around a 3 MB value cost 2-14 s and
		// up to 6 GB; refused from a linear scan it costs about its size
		pdu := rawSearch(10, nestedNotFilter(986, strings.Repeat("v", 3<<20)), nil)
		require.Greater(t, len(pdu), 3<<20)
		c := dialRaw(t, addr)
		allocated := allocatedDuring(func() {
			c.sendBytes(pdu)
			requireRefused(t, c, 10, gldap.ApplicationSearchResultDone, "request nested too deeply")
		})
		t.Logf("990-deep 3 MB request: %d MiB allocated", allocated>>20)
		assert.Less(t, allocated, uint64(64<<20))
	})

	t.Run("3MB-64-deep-linear", func(t *testing.T) {
		// accepted at the limit: decoding and the filter string cost a
		// small multiple of its size, not 60 copies of it (1.1 GB)
		value := strings.Repeat("v", 3<<20)
		pdu := rawSearch(11, nestedNotFilter(60, value), nil)
		c := dialRaw(t, addr)
		allocated := allocatedDuring(func() {
			c.sendBytes(pdu)
			r := parseResult(t, c.read())
			assert.Equal(t, int64(gldap.ResultSuccess), r.code)
		})
		t.Logf("64-deep 3 MB request: %d MiB allocated", allocated>>20)
		assert.Less(t, allocated, uint64(64<<20))
		assert.Equal(t, strings.Repeat("(!", 60)+"(cn="+value+")"+strings.Repeat(")", 60), lastFilter.Load())
	})

	t.Run("deep-paging-control-value", func(t *testing.T) {
		// a control value is BER decoded too: a 990-deep paging cookie
		// is refused as malformed, cheaply
		val := nest(berTLV(0x04, []byte(strings.Repeat("c", 1<<20))), 0x30, 990)
		ctrl := berTLV(0x30, append(berTLV(0x04, []byte(ldap.ControlTypePaging)), berTLV(0x04, val)...))
		pdu := rawSearch(12, nestedNotFilter(0, "x"), ctrl)
		before := searches.Load()
		c := dialRaw(t, addr)
		allocated := allocatedDuring(func() {
			c.sendBytes(pdu)
			requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
			c.requireClosed()
		})
		t.Logf("990-deep 1 MB paging control value: %d MiB allocated", allocated>>20)
		assert.Less(t, allocated, uint64(32<<20))
		assert.Equal(t, before, searches.Load())
	})

	t.Run("too-many-elements-refused", func(t *testing.T) {
		// 200,000 attribute names of one octet: 600 kB that would decode
		// into 200,000 packets (about 50 MB)
		attrs := make([]byte, 0, 600_000)
		for range 200_000 {
			attrs = append(attrs, 0x04, 0x01, 'a')
		}
		var op []byte
		op = append(op, berTLV(0x04, nil)...)
		op = append(op, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00)
		op = append(op, 0x87, 0x02, 'c', 'n')
		op = append(op, berTLV(0x30, attrs)...)
		pdu := berTLV(0x30, append([]byte{0x02, 0x01, 0x0d}, berTLV(0x63, op)...))
		before := searches.Load()
		c := dialRaw(t, addr)
		allocated := allocatedDuring(func() {
			c.sendBytes(pdu)
			requireRefused(t, c, 13, gldap.ApplicationSearchResultDone, "request has too many elements")
		})
		t.Logf("200,000-element request: %d MiB allocated", allocated>>20)
		assert.Less(t, allocated, uint64(16<<20))
		assert.Equal(t, before, searches.Load())
	})

	t.Run("many-elements-accepted", func(t *testing.T) {
		// 100,000 attribute names: within the limit, and answered
		attrs := make([]byte, 0, 300_000)
		for range 100_000 {
			attrs = append(attrs, 0x04, 0x01, 'a')
		}
		var op []byte
		op = append(op, berTLV(0x04, nil)...)
		op = append(op, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00)
		op = append(op, 0x87, 0x02, 'c', 'n')
		op = append(op, berTLV(0x30, attrs)...)
		c := dialRaw(t, addr)
		c.sendBytes(berTLV(0x30, append([]byte{0x02, 0x01, 0x0e}, berTLV(0x63, op)...)))
		r := parseResult(t, c.read())
		assert.Equal(t, int64(14), r.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), r.code)
	})

	t.Run("windows-style-lengths", func(t *testing.T) {
		// 4-octet lengths everywhere (berTLV's long form): a valid
		// encoding, decoded like any other
		c := dialRaw(t, addr)
		c.sendBytes(rawSearch(15, nestedNotFilter(3, strings.Repeat("w", 200)), nil))
		r := parseResult(t, c.read())
		assert.Equal(t, int64(gldap.ResultSuccess), r.code)
		assert.Equal(t, "(!(!(!(cn="+strings.Repeat("w", 200)+"))))", lastFilter.Load())
	})
}
