// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"context"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func abandonRequest(messageID, abandonID int64) *ber.Packet {
	env := envelope(messageID)
	env.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, gldap.ApplicationAbandonRequest, abandonID, "Abandon Request"))
	return env
}

// TestPatch_Abandon covers patch 5: abandon requests are parsed, cancel the
// abandoned request's Context, reach an optional Abandon route, never get a
// response, and are ignored (not passed to the DefaultRoute) without a route.
func TestPatch_Abandon(t *testing.T) {
	type searchEvent struct {
		messageID int64
		err       error
	}
	// newMux returns a mux whose search handler blocks until its context ends
	// and whose bind handler answers success.
	newMux := func(t *testing.T, started chan<- int64, ended chan<- searchEvent) *gldap.Mux {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
			m, _ := r.GetSearchMessage()
			started <- m.GetID()
			<-r.Context().Done()
			ended <- searchEvent{messageID: m.GetID(), err: r.Context().Err()}
			// an abandoned operation gets no response
		}))
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		return mux
	}

	t.Run("cancels-in-flight-request-without-route", func(t *testing.T) {
		started, ended := make(chan int64, 2), make(chan searchEvent, 2)
		mux := newMux(t, started, ended)
		defaultCalls := make(chan struct{}, 10)
		require.NoError(t, mux.DefaultRoute(func(w *gldap.ResponseWriter, r *gldap.Request) {
			defaultCalls <- struct{}{}
			_ = w.Write(r.NewResponse())
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)

		c.send(searchRequest(t, 5, "dc=one"))
		c.send(searchRequest(t, 6, "dc=two"))
		ids := map[int64]bool{waitFor(t, started, "search 5/6"): true, waitFor(t, started, "search 5/6"): true}
		require.Equal(t, map[int64]bool{5: true, 6: true}, ids)

		c.send(abandonRequest(7, 5))
		ev := waitFor(t, ended, "abandoned search to end")
		assert.Equal(t, int64(5), ev.messageID, "only the abandoned request is cancelled")
		assert.ErrorIs(t, ev.err, context.Canceled)

		// abandoning an unknown message ID is a no-op; the connection stays
		// usable and the next PDU we get answers the bind: nothing was sent
		// for either abandon, and the default route never saw them.
		c.send(abandonRequest(8, 999))
		c.send(bindRequest(9, 3, "cn=alice", simpleAuth("x")))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(9), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationBindResponse), res.appTag)
		assert.Empty(t, defaultCalls)

		// search 6 is still running until we abandon it too
		select {
		case ev := <-ended:
			t.Fatalf("search %d ended early", ev.messageID)
		default:
		}
		c.send(abandonRequest(10, 6))
		assert.Equal(t, int64(6), waitFor(t, ended, "search 6 to end").messageID)
	})

	t.Run("abandon-route", func(t *testing.T) {
		started, ended := make(chan int64, 1), make(chan searchEvent, 1)
		mux := newMux(t, started, ended)
		type abandonEvent struct {
			msg      *gldap.AbandonMessage
			writeErr error
		}
		abandons := make(chan abandonEvent, 1)
		require.NoError(t, mux.Abandon(func(w *gldap.ResponseWriter, r *gldap.Request) {
			m, err := r.GetAbandonMessage()
			assert.NoError(t, err)
			abandons <- abandonEvent{msg: m, writeErr: w.Write(r.NewResponse())}
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)

		c.send(searchRequest(t, 3, "dc=x"))
		waitFor(t, started, "search")
		c.send(abandonRequest(4, 3))
		ev := waitFor(t, abandons, "abandon handler")
		assert.Equal(t, int64(4), ev.msg.GetID())
		assert.Equal(t, int64(3), ev.msg.MessageID)
		assert.ErrorIs(t, ev.writeErr, gldap.ErrInvalidState, "abandon must not be answered")
		assert.ErrorIs(t, waitFor(t, ended, "search to end").err, context.Canceled)

		c.send(bindRequest(5, 3, "cn=alice", simpleAuth("x")))
		assert.Equal(t, int64(5), parseResult(t, c.read()).messageID, "nothing was written for the abandon")
	})

	t.Run("abandoned-search-sends-nothing-more", func(t *testing.T) {
		firstSent, writeErrs := make(chan struct{}, 1), make(chan []error, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewSearchResponseEntry("cn=first"))
			firstSent <- struct{}{}
			<-r.Context().Done()
			// a handler that doesn't check its context keeps writing
			writeErrs <- []error{
				w.Write(r.NewSearchResponseEntry("cn=second")),
				w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))),
			}
		}))
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 1, "dc=x"))
		waitFor(t, firstSent, "first entry")
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultEntry), c.read().Children[1].Tag)
		c.send(abandonRequest(2, 1))
		for _, err := range waitFor(t, writeErrs, "writes after abandon") {
			assert.ErrorIs(t, err, gldap.ErrInvalidState)
		}
		// RFC 4511 4.11: no more entries and no SearchResultDone
		c.send(bindRequest(3, 3, "cn=x", simpleAuth("y")))
		assert.Equal(t, int64(3), parseResult(t, c.read()).messageID)
	})

	t.Run("bind-cannot-be-abandoned", func(t *testing.T) {
		release, bindCtxErr := make(chan struct{}), make(chan error, 1)
		searchStarted := make(chan struct{}, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			<-release // e.g. waiting for an MFA push
			bindCtxErr <- r.Context().Err()
			_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
			searchStarted <- struct{}{}
			_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=x", simpleAuth("y")))
		c.send(abandonRequest(2, 1))
		// PDUs are read in order: once the search runs, the abandon was handled
		c.send(searchRequest(t, 3, "dc=x"))
		waitFor(t, searchStarted, "search")
		assert.Equal(t, int64(3), parseResult(t, c.read()).messageID)
		close(release)
		assert.NoError(t, waitFor(t, bindCtxErr, "bind"))
		res := parseResult(t, c.read())
		assert.Equal(t, int64(1), res.messageID)
		assert.Equal(t, int64(gldap.ResultSuccess), res.code)
	})
}
