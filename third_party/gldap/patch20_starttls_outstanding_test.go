// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/jimlambrt/gldap/testdirectory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startTLSRequest is an ExtendedRequest for StartTLS (RFC 4511 4.14.1).
func startTLSRequest(messageID int64) *ber.Packet {
	env := envelope(messageID)
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationExtendedRequest, nil, "StartTLS")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, string(gldap.ExtendedOperationStartTLS), "requestName"))
	env.AppendChild(op)
	return env
}

// readTLS reads the next PDU from a TLS client connection.
func readTLS(t *testing.T, c *tls.Conn) *ber.Packet {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(patchTestTimeout)))
	p, err := ber.ReadPacket(c)
	require.NoError(t, err)
	return p
}

// writeTLS sends a PDU on a TLS client connection.
func writeTLS(t *testing.T, c *tls.Conn, p *ber.Packet) {
	t.Helper()
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(patchTestTimeout)))
	_, err := c.Write(p.Bytes())
	require.NoError(t, err)
}

// startTLSFixture is a server whose StartTLS handler upgrades the connection
// and reports the handshake's result, and whose search and bind handlers can
// be held: a search for "dc=hold" (a bind as "cn=hold") reports its start and
// waits for release before writing its response, then waits for
// afterResponse before trying to write once more and reporting that write's
// error.  Handlers also end when their context does.
type startTLSFixture struct {
	addr          string
	clientTLS     *tls.Config
	searches      chan int64 // message ID of every search handled
	held          chan int64 // message ID of every held request that started
	release       chan struct{}
	afterResponse chan struct{}
	lateWrite     chan error    // the held request's write after its response
	startTLSCalls chan int64    // message ID of every StartTLS handled
	beforeUpgrade chan struct{} // closed by the test to let the handshake start (nil: at once)
	handshake     chan error    // result of every StartTLS handshake
	closed        chan int      // OnClose
}

func newStartTLSFixture(t *testing.T, beforeUpgrade chan struct{}) *startTLSFixture {
	t.Helper()
	srvTLS, clientTLS := testdirectory.GetTLSConfig(t)
	clientTLS = clientTLS.Clone()
	clientTLS.ServerName = "127.0.0.1"
	f := &startTLSFixture{
		clientTLS:     clientTLS,
		searches:      make(chan int64, 10),
		held:          make(chan int64, 10),
		release:       make(chan struct{}),
		afterResponse: make(chan struct{}),
		lateWrite:     make(chan error, 10),
		startTLSCalls: make(chan int64, 10),
		beforeUpgrade: beforeUpgrade,
		handshake:     make(chan error, 10),
		closed:        make(chan int, 10),
	}
	// hold runs a held request: it waits for release, writes resp, waits
	// for afterResponse and writes resp again.
	hold := func(w *gldap.ResponseWriter, r *gldap.Request, id int64, resp gldap.Response) {
		f.held <- id
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
		if err := w.Write(resp); err != nil {
			return
		}
		select {
		case <-f.afterResponse:
		case <-r.Context().Done():
			return
		}
		f.lateWrite <- w.Write(resp)
	}
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.ExtendedOperation(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetExtendedOperationMessage()
		require.NoError(t, err)
		f.startTLSCalls <- m.GetID()
		res := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		res.SetResponseName(gldap.ExtendedOperationStartTLS)
		if err := w.Write(res); err != nil {
			f.handshake <- err
			return
		}
		if f.beforeUpgrade != nil {
			select {
			case <-f.beforeUpgrade:
			case <-r.Context().Done():
			}
		}
		f.handshake <- r.StartTLS(srvTLS)
	}, gldap.ExtendedOperationStartTLS))
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetSearchMessage()
		require.NoError(t, err)
		f.searches <- m.GetID()
		resp := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		if m.BaseDN == "dc=hold" {
			hold(w, r, m.GetID(), resp)
			return
		}
		_ = w.Write(resp)
	}))
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetSimpleBindMessage()
		require.NoError(t, err)
		resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		if m.UserName == "cn=hold" {
			hold(w, r, m.GetID(), resp)
			return
		}
		_ = w.Write(resp)
	}))
	_, f.addr = startPatchServer(t, mux, []gldap.Option{gldap.WithOnClose(func(id int) { f.closed <- id })})
	return f
}

// requireStartTLSRefused asserts that p refuses the StartTLS request
// messageID with operationsError.
func requireStartTLSRefused(t *testing.T, p *ber.Packet, messageID int64) {
	t.Helper()
	res := parseResult(t, p)
	assert.Equal(t, messageID, res.messageID)
	assert.Equal(t, ber.Tag(gldap.ApplicationExtendedResponse), res.appTag)
	require.Equal(t, int64(gldap.ResultOperationsError), res.code, "StartTLS must be refused: %s", res.diag)
	assert.Equal(t, "StartTLS with operations outstanding", res.diag)
	require.Len(t, res.extra, 1, "responseName")
	assert.Equal(t, ber.Tag(10), res.extra[0].Tag)
	assert.Equal(t, string(gldap.ExtendedOperationStartTLS), res.extra[0].Data.String())
}

// upgrade sends StartTLS as messageID, expects success and does the client
// side of the handshake.
func (f *startTLSFixture) upgrade(t *testing.T, c *rawConn, messageID int64) *tls.Conn {
	t.Helper()
	c.send(startTLSRequest(messageID))
	res := parseResult(t, c.read())
	require.Equal(t, messageID, res.messageID)
	require.Equal(t, int64(gldap.ResultSuccess), res.code, res.diag)
	assert.Equal(t, messageID, waitFor(t, f.startTLSCalls, "StartTLS handler"))
	tc := tls.Client(c.Conn, f.clientTLS)
	require.NoError(t, tc.SetDeadline(time.Now().Add(patchTestTimeout)))
	require.NoError(t, tc.Handshake())
	require.NoError(t, waitFor(t, f.handshake, "server handshake"))
	return tc
}

// TestPatch_StartTLSWithOperationsOutstanding covers patch 20: a StartTLS
// sent while another operation of the connection is outstanding is refused
// with operationsError without calling the StartTLS handler, and the
// connection stays plaintext (RFC 4511 4.14.1); a request that has written
// its response is not outstanding, but can't write anything after an
// upgrade.
func TestPatch_StartTLSWithOperationsOutstanding(t *testing.T) {
	t.Run("search-outstanding", func(t *testing.T) {
		f := newStartTLSFixture(t, nil)
		c := dialRaw(t, f.addr)
		c.send(searchRequest(t, 1, "dc=hold"))
		assert.Equal(t, int64(1), waitFor(t, f.held, "held search"))

		c.send(startTLSRequest(2))
		requireStartTLSRefused(t, c.read(), 2)
		assert.Empty(t, f.startTLSCalls, "the StartTLS handler must not run")

		// the search is answered afterwards, in plaintext
		close(f.release)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultDone), res.appTag)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)

		// The search's handler is still running, but it has answered, so it
		// is no longer outstanding: StartTLS works now...
		tc := f.upgrade(t, c, 3)
		// ... and the handler can't write in plaintext after the upgrade.
		close(f.afterResponse)
		assert.ErrorIs(t, waitFor(t, f.lateWrite, "late write"), gldap.ErrInvalidState)

		// nothing plaintext was interleaved: the TLS stream is intact
		writeTLS(t, tc, searchRequest(t, 4, "dc=x"))
		res = parseResult(t, readTLS(t, tc))
		assert.Equal(t, int64(4), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
		assert.Equal(t, []int64{1, 4}, []int64{waitFor(t, f.searches, "search"), waitFor(t, f.searches, "search")})
	})

	t.Run("bind-outstanding", func(t *testing.T) {
		f := newStartTLSFixture(t, nil)
		c := dialRaw(t, f.addr)
		c.send(bindRequest(1, 3, "cn=hold", simpleAuth("secret")))
		assert.Equal(t, int64(1), waitFor(t, f.held, "held bind"))

		c.send(startTLSRequest(2))
		requireStartTLSRefused(t, c.read(), 2)
		assert.Empty(t, f.startTLSCalls, "the StartTLS handler must not run")

		close(f.release)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
		// the bind's handler is still running (held until the conn ends)
		f.upgrade(t, c, 3)
	})

	t.Run("abandoned-search-is-not-outstanding", func(t *testing.T) {
		// RFC 4511 4.11: an abandoned operation gets no response, so it is
		// not outstanding
		f := newStartTLSFixture(t, nil)
		c := dialRaw(t, f.addr)
		c.send(searchRequest(t, 1, "dc=hold"))
		assert.Equal(t, int64(1), waitFor(t, f.held, "held search"))
		c.send(abandonRequest(2, 1))
		tc := f.upgrade(t, c, 3)
		writeTLS(t, tc, searchRequest(t, 4, "dc=x"))
		assert.Equal(t, int64(4), parseResult(t, readTLS(t, tc)).messageID)
	})
}

// TestPatch_StartTLSBlocksTheReadLoop covers patch 20's second half (which
// held before the patch): while a StartTLS is being processed no later
// request of the connection is read or dispatched, and plaintext sent
// behind a StartTLS request is never served as a request, before or after
// the upgrade (the STARTTLS command injection of CVE-2011-0411).
func TestPatch_StartTLSBlocksTheReadLoop(t *testing.T) {
	t.Run("pipelined-plaintext-is-discarded", func(t *testing.T) {
		f := newStartTLSFixture(t, nil)
		c := dialRaw(t, f.addr)
		// one write: the injected search arrives with the StartTLS request
		// and is buffered with it, then thrown away with the plaintext reader
		c.sendBytes(append(startTLSRequest(1).Bytes(), searchRequest(t, 2, "dc=injected").Bytes()...))
		res := parseResult(t, c.read())
		require.Equal(t, int64(1), res.messageID)
		require.Equal(t, int64(gldap.ResultSuccess), res.code)
		tc := tls.Client(c.Conn, f.clientTLS)
		require.NoError(t, tc.SetDeadline(time.Now().Add(patchTestTimeout)))
		require.NoError(t, tc.Handshake())
		require.NoError(t, waitFor(t, f.handshake, "server handshake"))

		writeTLS(t, tc, searchRequest(t, 3, "dc=x"))
		assert.Equal(t, int64(3), parseResult(t, readTLS(t, tc)).messageID)
		require.NoError(t, tc.Close())
		waitFor(t, f.closed, "OnClose") // every handler of the conn has returned
		assert.Equal(t, []int64{3}, drain(f.searches), "only the search sent over TLS was served")
	})

	t.Run("plaintext-during-handshake-goes-to-tls", func(t *testing.T) {
		beforeUpgrade := make(chan struct{})
		f := newStartTLSFixture(t, beforeUpgrade)
		c := dialRaw(t, f.addr)
		c.send(startTLSRequest(1))
		res := parseResult(t, c.read())
		require.Equal(t, int64(gldap.ResultSuccess), res.code)
		waitFor(t, f.startTLSCalls, "StartTLS handler")
		// The handler is between its response and the handshake.  A search
		// sent now must not be read by the LDAP read loop: the handshake
		// reads it, and fails on it.
		c.send(searchRequest(t, 2, "dc=injected"))
		close(beforeUpgrade)
		err := waitFor(t, f.handshake, "server handshake")
		require.Error(t, err)
		var recErr tls.RecordHeaderError
		assert.True(t, errors.As(err, &recErr), "the handshake read the search: %v", err)
		require.NoError(t, c.Close())
		waitFor(t, f.closed, "OnClose")
		assert.Empty(t, drain(f.searches), "the injected search must never be served")
	})
}

// drain returns what is buffered in ch without waiting.
func drain[T any](ch chan T) []T {
	var out []T
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}
