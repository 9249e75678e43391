// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"
	"github.com/jimlambrt/gldap/testdirectory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type connInfo struct {
	remote, local net.Addr
	tls           *tls.ConnectionState
	ctxErr        error
}

// bindRecorder is a bind handler that reports what the request knew about its
// connection.
func bindRecorder(ch chan<- connInfo) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		ch <- connInfo{
			remote: r.RemoteAddr(),
			local:  r.LocalAddr(),
			tls:    r.TLSState(),
			ctxErr: r.Context().Err(),
		}
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}
}

// TestPatch_RequestConnInfo covers patch 1: RemoteAddr, LocalAddr and
// TLSState on plaintext, LDAPS and StartTLS connections.
func TestPatch_RequestConnInfo(t *testing.T) {
	srvTLS, clientTLS := testdirectory.GetTLSConfig(t)

	t.Run("plaintext", func(t *testing.T) {
		got := make(chan connInfo, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(bindRecorder(got)))
		_, addr := startPatchServer(t, mux, nil)

		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		client := ldap.NewConn(nc, false)
		client.Start()
		t.Cleanup(func() { client.Close() })
		require.NoError(t, client.Bind("cn=alice", "pass"))

		info := waitFor(t, got, "bind")
		assert.Equal(t, nc.LocalAddr().String(), info.remote.String())
		assert.Equal(t, nc.RemoteAddr().String(), info.local.String())
		assert.Nil(t, info.tls)
		assert.NoError(t, info.ctxErr)
	})

	t.Run("ldaps", func(t *testing.T) {
		got := make(chan connInfo, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(bindRecorder(got)))
		_, addr := startPatchServer(t, mux, nil, gldap.WithTLSConfig(srvTLS))

		client, err := ldap.DialURL("ldaps://"+addr, ldap.DialWithTLSConfig(clientTLS))
		require.NoError(t, err)
		t.Cleanup(func() { client.Close() })
		require.NoError(t, client.Bind("cn=alice", "pass"))

		info := waitFor(t, got, "bind")
		require.NotNil(t, info.tls)
		assert.True(t, info.tls.HandshakeComplete)
		assert.NotZero(t, info.tls.Version)
		assert.Equal(t, "127.0.0.1", info.remote.(*net.TCPAddr).IP.String())
	})

	t.Run("starttls", func(t *testing.T) {
		got := make(chan connInfo, 2)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(bindRecorder(got)))
		require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
			if r.TLSState() != nil {
				t.Error("TLSState must be nil before StartTLS")
			}
			res := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
			res.SetResponseName(gldap.ExtendedOperationStartTLS)
			if err := w.Write(res); err != nil {
				return
			}
			_ = r.StartTLS(srvTLS)
		}, gldap.ExtendedOperationStartTLS))
		_, addr := startPatchServer(t, mux, nil)

		client := dialPatchServer(t, addr)
		require.NoError(t, client.Bind("cn=before", "pass"))
		before := waitFor(t, got, "plaintext bind")
		assert.Nil(t, before.tls)

		startTLSCfg := clientTLS.Clone()
		startTLSCfg.ServerName = "127.0.0.1"
		require.NoError(t, client.StartTLS(startTLSCfg))
		require.NoError(t, client.Bind("cn=after", "pass"))
		after := waitFor(t, got, "tls bind")
		require.NotNil(t, after.tls)
		assert.True(t, after.tls.HandshakeComplete)
		assert.Equal(t, before.remote.String(), after.remote.String())
	})
}

// TestPatch_RequestContext covers patch 1: Request.Context is cancelled when
// the client goes away or the server stops, and OnClose runs only after the
// in-flight handler returned.
func TestPatch_RequestContext(t *testing.T) {
	// blockingSearch waits for its context and reports why it ended.
	blockingSearch := func(started chan<- struct{}, ended chan<- error, returned *atomic.Bool) gldap.HandlerFunc {
		return func(w *gldap.ResponseWriter, r *gldap.Request) {
			defer returned.Store(true)
			started <- struct{}{}
			<-r.Context().Done()
			ended <- r.Context().Err()
			_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultUnavailable)))
		}
	}

	t.Run("client-closes", func(t *testing.T) {
		started, ended := make(chan struct{}, 1), make(chan error, 1)
		var returned atomic.Bool
		closed := make(chan bool, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(blockingSearch(started, ended, &returned)))
		_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithOnClose(func(int) {
			closed <- returned.Load()
		})})

		client := dialPatchServer(t, addr)
		searchDone := make(chan error, 1)
		go func() {
			_, err := client.Search(ldap.NewSearchRequest("dc=example,dc=com", ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(uid=alice)", nil, nil))
			searchDone <- err
		}()
		waitFor(t, started, "search handler to start")
		client.Close()

		assert.ErrorIs(t, waitFor(t, ended, "handler context to end"), context.Canceled)
		assert.True(t, waitFor(t, closed, "OnClose"), "OnClose ran before the in-flight handler returned")
		assert.Error(t, waitFor(t, searchDone, "client search to fail"))
	})

	t.Run("unbind", func(t *testing.T) {
		started, ended := make(chan struct{}, 1), make(chan error, 1)
		var returned atomic.Bool
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(blockingSearch(started, ended, &returned)))
		_, addr := startPatchServer(t, mux, nil)

		client := dialPatchServer(t, addr)
		go func() {
			_, _ = client.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
		}()
		waitFor(t, started, "search handler to start")
		require.NoError(t, client.Unbind())
		assert.ErrorIs(t, waitFor(t, ended, "handler context to end"), context.Canceled)
	})

	t.Run("server-stops", func(t *testing.T) {
		started, ended := make(chan struct{}, 1), make(chan error, 1)
		var returned atomic.Bool
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(blockingSearch(started, ended, &returned)))
		s, addr := startPatchServer(t, mux, nil)

		client := dialPatchServer(t, addr)
		go func() {
			_, _ = client.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
		}()
		waitFor(t, started, "search handler to start")
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop() }()
		assert.ErrorIs(t, waitFor(t, ended, "handler context to end"), context.Canceled)
		client.Close()
		require.NoError(t, waitFor(t, stopped, "Stop"))
	})

	t.Run("request-context-ends-with-handler", func(t *testing.T) {
		ctxs := make(chan context.Context, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			ctxs <- r.Context()
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		client := dialPatchServer(t, addr)
		require.NoError(t, client.Bind("cn=alice", "pass"))
		ctx := waitFor(t, ctxs, "bind")
		waitFor(t, ctx.Done(), "request context to end after its handler returned")
		// a request built outside a server still has a usable context
		assert.NotNil(t, (&gldap.Request{}).Context())
	})
}
