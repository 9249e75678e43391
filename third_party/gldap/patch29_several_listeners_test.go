// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"
	"github.com/jimlambrt/gldap/testdirectory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_SeveralListeners covers patch 29: one Server serves a
// plaintext listener and an LDAPS one (Serve, WithTLSConfig) at once, with
// one router, one set of connection IDs and one connection limit; Stop
// ends both.
func TestPatch_SeveralListeners(t *testing.T) {
	srvTLS, clientTLS := testdirectory.GetTLSConfig(t)

	var mu sync.Mutex
	ids := map[int]bool{}
	tlsByID := map[int]bool{}
	closed := make(chan int, 8)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		mu.Lock()
		ids[r.ConnectionID()] = true
		tlsByID[r.ConnectionID()] = r.TLSState() != nil
		mu.Unlock()
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	s, err := gldap.NewServer(
		gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Error})),
		gldap.WithMaxConnections(2),
		gldap.WithOnClose(func(id int) { closed <- id }),
	)
	require.NoError(t, err)
	require.NoError(t, s.Router(mux))

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ldaps, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 2)
	go func() { served <- s.Serve(plain) }()
	go func() { served <- s.Serve(ldaps, gldap.WithTLSConfig(srvTLS)) }()
	deadline := time.Now().Add(patchTestTimeout)
	for len(s.Addrs()) < 2 {
		require.True(t, time.Now().Before(deadline), "both listeners were never served")
		time.Sleep(time.Millisecond)
	}
	assert.ElementsMatch(t, []string{plain.Addr().String(), ldaps.Addr().String()},
		[]string{s.Addrs()[0].String(), s.Addrs()[1].String()})
	assert.True(t, s.Ready())

	c1, err := ldap.DialURL("ldap://" + plain.Addr().String())
	require.NoError(t, err)
	defer c1.Close()
	require.NoError(t, c1.Bind("cn=alice", "x"))
	c2, err := ldap.DialURL("ldaps://"+ldaps.Addr().String(), ldap.DialWithTLSConfig(clientTLS))
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.Bind("cn=bob", "x"))

	mu.Lock()
	require.Len(t, ids, 2, "the two listeners' connections share an ID")
	var plainTLS, ldapsTLS int
	for _, isTLS := range tlsByID {
		if isTLS {
			ldapsTLS++
		} else {
			plainTLS++
		}
	}
	mu.Unlock()
	assert.Equal(t, 1, plainTLS, "one plaintext connection")
	assert.Equal(t, 1, ldapsTLS, "one TLS connection, seen by TLSState")

	// The limit is the server's: two connections open (one per listener),
	// a third on either is refused.
	for _, url := range []string{"ldap://" + plain.Addr().String(), "ldaps://" + ldaps.Addr().String()} {
		c3, err := ldap.DialURL(url, ldap.DialWithTLSConfig(clientTLS))
		require.NoError(t, err)
		err = c3.Bind("cn=carol", "x")
		c3.Close()
		require.Error(t, err, "%s: a third connection was served with max connections 2", url)
	}

	require.NoError(t, s.Stop())
	for range 2 {
		select {
		case err := <-served:
			require.NoError(t, err)
		case <-time.After(patchTestTimeout):
			t.Fatal("Serve did not return after Stop")
		}
	}
	assert.Empty(t, s.Addrs())
	assert.False(t, s.Ready())
	for range 2 {
		select {
		case <-closed:
		case <-time.After(patchTestTimeout):
			t.Fatal("Stop returned before every connection closed")
		}
	}

	// Serving after Stop serves nothing and closes the listener.
	late, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, s.Serve(late))
	_, err = net.Dial("tcp", late.Addr().String())
	require.Error(t, err, "a listener given to Serve after Stop is still open")
}
