// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flakyListener fails its first failures Accepts with a temporary error
// (EMFILE, as *net.OpError like the real thing).
type flakyListener struct {
	net.Listener
	failures atomic.Int32
	failed   atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failed.Load() < l.failures.Load() {
		l.failed.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestPatch_AcceptRetriesTemporaryErrors covers patch 14: Run retries
// temporary Accept errors with a backoff instead of returning.
func TestPatch_AcceptRetriesTemporaryErrors(t *testing.T) {
	const failures = 4
	var fl *flakyListener
	s, err := NewServer(WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Off})))
	require.NoError(t, err)
	s.listenFn = func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		fl = &flakyListener{Listener: l}
		fl.failures.Store(failures)
		return fl, nil
	}
	mux, err := NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewBindResponse(WithResponseCode(ResultSuccess)))
	}))
	require.NoError(t, s.Router(mux))

	runErr := make(chan error, 1)
	go func() { runErr <- s.Run("127.0.0.1:0") }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Addr() == nil {
		require.True(t, time.Now().Before(deadline), "server never listened")
		time.Sleep(time.Millisecond)
	}

	// the first Accepts fail; the client is accepted once they're retried
	client, err := ldap.DialURL("ldap://" + s.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, client.Bind("cn=alice", "x"))
	assert.Equal(t, int32(failures), fl.failed.Load())
	select {
	case err := <-runErr:
		t.Fatalf("Run returned on a temporary error: %v", err)
	default:
	}

	// Stop interrupts the backoff too
	fl.failures.Store(1 << 30)
	client.Close()
	require.NoError(t, s.Stop())
	select {
	case err := <-runErr:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}
