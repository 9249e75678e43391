// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

// An internal test: it watches the budget (Server.bufferedBytes) to know
// when the server has read what a client sent.

import (
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// budgetTestTimeout bounds every wait of TestPatch_MaxBufferedBytes.
const budgetTestTimeout = 10 * time.Second

// budgetBind is a simple bind with message ID 1 whose password pads it to
// about size octets, and the length of its header.
func budgetBind(size int) []byte {
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(3), "Version"))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=a", "Name"))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, strings.Repeat("p", max(0, size-30)), "Password"))
	return envelope(bind)
}

type budgetConn struct {
	t *testing.T
	net.Conn
}

func dialBudget(t *testing.T, addr string) *budgetConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &budgetConn{t: t, Conn: c}
}

func (c *budgetConn) send(b []byte) {
	c.t.Helper()
	require.NoError(c.t, c.SetWriteDeadline(time.Now().Add(budgetTestTimeout)))
	_, err := c.Write(b)
	require.NoError(c.t, err)
}

// result reads the next PDU and returns its message ID, result code and
// diagnostic.
func (c *budgetConn) result() (int64, int64, string) {
	c.t.Helper()
	require.NoError(c.t, c.SetReadDeadline(time.Now().Add(budgetTestTimeout)))
	p, err := ber.ReadPacket(c)
	require.NoError(c.t, err)
	require.GreaterOrEqual(c.t, len(p.Children), 2)
	op := p.Children[1]
	require.GreaterOrEqual(c.t, len(op.Children), 3)
	code, err := ber.ParseInt64(op.Children[0].Data.Bytes())
	require.NoError(c.t, err)
	return p.Children[0].Value.(int64), code, op.Children[2].Data.String()
}

// requireBusy: a Notice of Disconnection with ResultBusy, then EOF.
func (c *budgetConn) requireBusy() {
	c.t.Helper()
	id, code, diag := c.result()
	assert.Equal(c.t, int64(0), id)
	assert.Equal(c.t, int64(ResultBusy), code)
	assert.Equal(c.t, "server busy", diag)
	require.NoError(c.t, c.SetReadDeadline(time.Now().Add(budgetTestTimeout)))
	_, err := c.Read(make([]byte, 1))
	require.Error(c.t, err)
	if ne, ok := err.(net.Error); ok {
		require.False(c.t, ne.Timeout(), "server did not close the connection")
	}
}

// TestPatch_MaxBufferedBytes covers patch 23: the bytes buffered for
// requests still arriving, across all connections, are bounded; a request
// that would go beyond gets a busy notice; small requests never need any
// of the budget; a request's bytes are given back once it has been read, or
// its connection closed.
func TestPatch_MaxBufferedBytes(t *testing.T) {
	const budget = 1 << 20
	s, err := NewServer(
		WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Off})),
		WithMaxRequestSize(1<<20),
		WithMaxBufferedBytes(budget),
	)
	require.NoError(t, err)
	mux, err := NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Bind(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewBindResponse(WithResponseCode(ResultSuccess)))
	}))
	require.NoError(t, s.Router(mux))
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run("127.0.0.1:0") }()
	deadline := time.Now().Add(budgetTestTimeout)
	for s.Addr() == nil {
		require.True(t, time.Now().Before(deadline), "server never listened")
		time.Sleep(time.Millisecond)
	}
	addr := s.Addr().String()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			require.NoError(t, s.Stop())
			require.NoError(t, <-runErr)
		}
	}
	t.Cleanup(stop)

	// waitBuffered waits until the taken budget satisfies ok
	waitBuffered := func(t *testing.T, what string, ok func(int64) bool) {
		t.Helper()
		deadline := time.Now().Add(budgetTestTimeout)
		for !ok(s.bufferedBytes()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d bytes of budget taken", what, s.bufferedBytes())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A sends all but the last KiB of a 1 MiB bind: its buffer (the whole
	// request by now) takes all but about the free 4 KiB of the budget
	big := budgetBind(1<<20 - 16)
	require.LessOrEqual(t, len(big)-6, 1<<20)
	a := dialBudget(t, addr)
	a.send(big[:len(big)-1024])
	waitBuffered(t, "A's request", func(n int64) bool { return n > budget-16<<10 })
	assert.LessOrEqual(t, s.bufferedBytes(), int64(budget))

	t.Run("small-request-needs-no-budget", func(t *testing.T) {
		c := dialBudget(t, addr)
		c.send(budgetBind(3 << 10))
		_, code, _ := c.result()
		assert.Equal(t, int64(ResultSuccess), code)
	})

	t.Run("over-budget-is-busy", func(t *testing.T) {
		// a 64 KiB bind needs 60 KiB of budget: only a few are left
		c := dialBudget(t, addr)
		c.send(budgetBind(64 << 10))
		c.requireBusy()
	})

	t.Run("budget-given-back-when-read", func(t *testing.T) {
		a.send(big[len(big)-1024:])
		_, code, _ := a.result()
		assert.Equal(t, int64(ResultSuccess), code)
		waitBuffered(t, "after A's request was read", func(n int64) bool { return n == 0 })
		// and the 64 KiB bind now fits
		c := dialBudget(t, addr)
		c.send(budgetBind(64 << 10))
		_, code, _ = c.result()
		assert.Equal(t, int64(ResultSuccess), code)
	})

	t.Run("budget-given-back-on-close", func(t *testing.T) {
		c := dialBudget(t, addr)
		c.send(big[:512<<10])
		waitBuffered(t, "half a request", func(n int64) bool { return n >= 256<<10 })
		require.NoError(t, c.Close())
		waitBuffered(t, "after the client closed", func(n int64) bool { return n == 0 })
	})

	t.Run("budget-given-back-on-stop", func(t *testing.T) {
		c := dialBudget(t, addr)
		c.send(big[:512<<10])
		waitBuffered(t, "half a request", func(n int64) bool { return n >= 256<<10 })
		stop()
		assert.Equal(t, int64(0), s.bufferedBytes())
	})
}
