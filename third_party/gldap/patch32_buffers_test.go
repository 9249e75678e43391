// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_SmallConnectionBuffers covers patch 32: an idle connection
// holds small buffers (upstream: 4 KiB to read and 4 KiB to write), and
// requests and responses far larger than them still go through whole.
func TestPatch_SmallConnectionBuffers(t *testing.T) {
	const big = 200 << 10
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetSearchMessage()
		if err != nil {
			return
		}
		// Echo the filter's size back in one large entry.
		e := r.NewSearchResponseEntry("cn=big", gldap.WithAttributes(map[string][]string{
			"description": {strings.Repeat("x", big)}, "filterSize": {strings.Repeat("y", len(m.Filter)/1000)}}))
		_ = w.Write(e)
		_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	s, err := gldap.NewServer(gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Error})),
		gldap.WithMaxRequestSize(1<<20))
	require.NoError(t, err)
	require.NoError(t, s.Router(mux))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Stop() })

	c, err := ldap.DialURL("ldap://" + ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.UnauthenticatedBind(""))
	filter := "(cn=" + strings.Repeat("z", 100<<10) + ")"
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		filter, nil, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	assert.Len(t, res.Entries[0].GetAttributeValue("description"), big, "the large response arrived whole")
	assert.Len(t, res.Entries[0].GetAttributeValue("filterSize"), len(filter)/1000, "the large request arrived whole")

	// What an idle connection costs the server's heap.
	const idle = 300
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for range idle {
		nc, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, nc)
	}
	// One round trip on the last proves the server accepted them all.
	lc, err := ldap.DialURL("ldap://" + ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, lc.UnauthenticatedBind(""))
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / (idle + 1)
	t.Logf("an idle connection holds about %d bytes of heap (client side included)", perConn)
	assert.Less(t, perConn, int64(8<<10), "an idle connection holds upstream's 8 KiB of buffers or more")
	lc.Close()
	for _, nc := range conns {
		_ = nc.Close()
	}
}
