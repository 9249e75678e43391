// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

// Helpers shared by the ldapgate patch tests (see PATCHES.md).  Every test
// runs a real server on 127.0.0.1:0 and talks to it over loopback TCP, with
// go-ldap as the client or hand-made BER PDUs for what go-ldap can't send.

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/require"
)

// patchTestTimeout bounds every wait in the patch tests, so a regression
// fails the test instead of hanging it.
const patchTestTimeout = 10 * time.Second

// testLogBuf is a goroutine safe log sink, so tests can assert on what the
// server logged.
type testLogBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *testLogBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *testLogBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPatchServer starts a server with mux on 127.0.0.1:0 and returns it with
// its address.  newOpts go to NewServer, runOpts to Run.  The server is
// stopped (and Run's return checked) when the test ends.
func startPatchServer(t *testing.T, mux *gldap.Mux, newOpts []gldap.Option, runOpts ...gldap.Option) (*gldap.Server, string) {
	t.Helper()
	opts := append([]gldap.Option{gldap.WithLogger(hclog.New(&hclog.LoggerOptions{
		Name:  t.Name(),
		Level: hclog.Error,
	}))}, newOpts...)
	s, err := gldap.NewServer(opts...)
	require.NoError(t, err)
	require.NoError(t, s.Router(mux))

	runErr := make(chan error, 1)
	go func() { runErr <- s.Run("127.0.0.1:0", runOpts...) }()

	deadline := time.Now().Add(patchTestTimeout)
	for s.Addr() == nil {
		select {
		case err := <-runErr:
			t.Fatalf("server stopped before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server never started listening")
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		require.NoError(t, s.Stop())
		select {
		case err := <-runErr:
			require.NoError(t, err)
		case <-time.After(patchTestTimeout):
			t.Error("Run did not return after Stop")
		}
	})
	return s, s.Addr().String()
}

// dialPatchServer connects a go-ldap client to addr and closes it when the
// test ends (before the server is stopped).
func dialPatchServer(t *testing.T, addr string) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL("ldap://" + addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a TCP connection for sending hand-made PDUs.
type rawConn struct {
	t *testing.T
	net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c}
}

func (c *rawConn) send(p *ber.Packet) {
	c.t.Helper()
	c.sendBytes(p.Bytes())
}

func (c *rawConn) sendBytes(b []byte) {
	c.t.Helper()
	require.NoError(c.t, c.SetWriteDeadline(time.Now().Add(patchTestTimeout)))
	_, err := c.Write(b)
	require.NoError(c.t, err)
}

// read reads the next PDU sent by the server.
func (c *rawConn) read() *ber.Packet {
	c.t.Helper()
	p, err := c.readErr()
	require.NoError(c.t, err)
	return p
}

func (c *rawConn) readErr() (*ber.Packet, error) {
	c.t.Helper()
	require.NoError(c.t, c.SetReadDeadline(time.Now().Add(patchTestTimeout)))
	return ber.ReadPacket(c)
}

// requireClosed asserts that the server closes the connection (after any
// PDUs already read), i.e. the next read hits EOF rather than the deadline.
func (c *rawConn) requireClosed() {
	c.t.Helper()
	require.NoError(c.t, c.SetReadDeadline(time.Now().Add(patchTestTimeout)))
	buf := make([]byte, 1)
	_, err := c.Conn.Read(buf)
	require.Error(c.t, err)
	var ne net.Error
	if ok := asNetError(err, &ne); ok {
		require.False(c.t, ne.Timeout(), "server did not close the connection")
	}
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// envelope starts an LDAPMessage with messageID.
func envelope(messageID int64) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, messageID, "MessageID"))
	return p
}

// ldapResult is the decoded LDAPResult part of a response PDU.
type ldapResult struct {
	messageID  int64
	appTag     ber.Tag
	code       int64
	matchedDN  string
	diag       string
	extra      []*ber.Packet // children after diagnosticMessage
	controls   *ber.Packet
	components []*ber.Packet
}

func parseResult(t *testing.T, p *ber.Packet) ldapResult {
	t.Helper()
	require.GreaterOrEqual(t, len(p.Children), 2)
	var r ldapResult
	r.messageID = p.Children[0].Value.(int64)
	op := p.Children[1]
	require.Equal(t, ber.ClassApplication, op.ClassType)
	r.appTag = op.Tag
	r.components = op.Children
	if len(op.Children) >= 3 {
		code, err := ber.ParseInt64(op.Children[0].Data.Bytes())
		require.NoError(t, err)
		r.code = code
		r.matchedDN = op.Children[1].Data.String()
		r.diag = op.Children[2].Data.String()
		r.extra = op.Children[3:]
	}
	if len(p.Children) > 2 {
		r.controls = p.Children[2]
	}
	return r
}

// requireNoticeOfDisconnection asserts p is an RFC 4511 4.4.1 Notice of
// Disconnection with the given result code.
func requireNoticeOfDisconnection(t *testing.T, p *ber.Packet, code int64) {
	t.Helper()
	r := parseResult(t, p)
	require.Equal(t, int64(0), r.messageID)
	require.Equal(t, ber.Tag(gldap.ApplicationExtendedResponse), r.appTag)
	require.Equal(t, code, r.code)
	require.Len(t, r.extra, 1, "responseName expected")
	require.Equal(t, ber.ClassContext, r.extra[0].ClassType)
	require.Equal(t, ber.Tag(10), r.extra[0].Tag)
	require.Equal(t, "1.3.6.1.4.1.1466.20036", r.extra[0].Data.String())
}

// waitFor receives from ch or fails the test after patchTestTimeout.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patchTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// gldapUnbindOp is an UnbindRequest operation ([APPLICATION 2] NULL).
func gldapUnbindOp() *ber.Packet {
	return ber.Encode(ber.ClassApplication, ber.TypePrimitive, gldap.ApplicationUnbindRequest, nil, "Unbind Request")
}
