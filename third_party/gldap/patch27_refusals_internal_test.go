// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"io"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_RefusalsAreBounded covers patch 27: while maxRefusals refused
// connections are being sent their notice, a further refused connection is
// closed at once, without one.
func TestPatch_RefusalsAreBounded(t *testing.T) {
	s, err := NewServer(WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Off})), WithMaxConnectionsPerIP(1))
	require.NoError(t, err)
	s.maxRefusals = 1
	mux, err := NewMux()
	require.NoError(t, err)
	require.NoError(t, s.Router(mux))
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run("127.0.0.1:0") }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Addr() == nil {
		require.True(t, time.Now().Before(deadline), "server never listened")
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		require.NoError(t, s.Stop())
		require.NoError(t, <-runErr)
	})
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", s.Addr().String(), 10*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		return c
	}

	served := dial()
	_ = served
	// the first refusal lingers (up to lingerDelay) while its client keeps
	// the connection open
	first := dial()
	p, err := ber.ReadPacket(first)
	require.NoError(t, err, "the first refused connection gets its notice")
	assert.Equal(t, int64(0), p.Children[0].Value)
	// so the next one is closed without a word
	second := dial()
	n, err := second.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF)
}
