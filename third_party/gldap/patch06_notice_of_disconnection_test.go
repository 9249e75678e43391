// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_NoticeOfDisconnection covers patch 6: malformed PDUs and unknown
// operations get a Notice of Disconnection (protocolError) before the
// connection is closed, instead of a silent drop.
func TestPatch_NoticeOfDisconnection(t *testing.T) {
	handled := make(chan string, 10)
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.DefaultRoute(func(w *gldap.ResponseWriter, r *gldap.Request) {
		handled <- "default"
		_ = w.Write(r.NewResponse())
	}))
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		handled <- "bind"
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	_, addr := startPatchServer(t, mux, nil)

	unknownOp := func() []byte {
		env := envelope(3)
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 30, nil, "future op")
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "x", "x"))
		env.AppendChild(op)
		return env.Bytes()
	}
	responseSentByClient := func() []byte {
		env := envelope(4)
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationBindResponse, nil, "bind response")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "code"))
		env.AppendChild(op)
		return env.Bytes()
	}
	compareWithoutAVA := func() []byte {
		env := envelope(5)
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationCompareRequest, nil, "compare")
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "DN"))
		env.AppendChild(op)
		return env.Bytes()
	}
	emptyAbandon := func() []byte {
		env := envelope(6)
		env.AppendChild(ber.Encode(ber.ClassApplication, ber.TypePrimitive, gldap.ApplicationAbandonRequest, nil, "abandon"))
		return env.Bytes()
	}
	badControl := func() []byte {
		// a control whose type is an INTEGER instead of an OCTET STRING used
		// to panic in decodeControl
		ctrl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
		ctrl.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 7, "not a string"))
		return bindRequest(7, 3, "cn=x", simpleAuth("y"), ctrl).Bytes()
	}
	modifyDNMissingFlag := func() []byte {
		env := envelope(8)
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, gldap.ApplicationModifyDNRequest, nil, "moddn")
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "DN"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=y", "RDN"))
		env.AppendChild(op)
		return env.Bytes()
	}

	tests := map[string][]byte{
		"not-ber":                  []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"ber-but-not-ldap-message": ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "hello", "x").Bytes(),
		"missing-operation":        envelope(1).Bytes(),
		"unknown-application-tag":  unknownOp(),
		"response-sent-by-client":  responseSentByClient(),
		"compare-without-ava":      compareWithoutAVA(),
		"empty-abandon":            emptyAbandon(),
		"control-with-bad-type":    badControl(),
		"modifydn-missing-flag":    modifyDNMissingFlag(),
	}
	for name, pdu := range tests {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.sendBytes(pdu)
			requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
			c.requireClosed()
			assert.Empty(t, handled, "no handler may run for a malformed request")
		})
	}

	t.Run("after-a-good-request-on-the-same-conn", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=alice", simpleAuth("x")))
		assert.Equal(t, int64(1), parseResult(t, c.read()).messageID)
		assert.Equal(t, "bind", waitFor(t, handled, "bind"))
		c.sendBytes([]byte{0x30, 0x03, 0x02, 0x01}) // truncated then garbage
		c.sendBytes([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		c.requireClosed()
	})

	t.Run("in-flight-handlers-finish-before-the-notice", func(t *testing.T) {
		started := make(chan struct{}, 1)
		ctxErr := make(chan error, 1)
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
			started <- struct{}{}
			<-r.Context().Done()
			ctxErr <- r.Context().Err()
			_ = w.Write(r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultUnavailable)))
		}))
		_, addr := startPatchServer(t, mux, nil)
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 11, "dc=x"))
		waitFor(t, started, "search")
		c.sendBytes(unknownOp())
		assert.ErrorIs(t, waitFor(t, ctxErr, "search context"), context.Canceled)
		res := parseResult(t, c.read())
		assert.Equal(t, int64(11), res.messageID)
		assert.Equal(t, ber.Tag(gldap.ApplicationSearchResultDone), res.appTag)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		c.requireClosed()
	})

	t.Run("notice-survives-unread-client-data", func(t *testing.T) {
		// patch 6b: the server stops reading at the first bad byte; closing
		// with 16 KiB of unread input would RST the connection, which can
		// destroy the notice. It lingers instead: FIN, drain, close.
		c := dialRaw(t, addr)
		junk := append([]byte{0x04}, bytes.Repeat([]byte{0x42}, 16<<10)...)
		c.sendBytes(junk)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultProtocolError)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(patchTestTimeout)))
		_, err := c.Conn.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "the client must see an orderly close, not a reset")
	})

	assert.Equal(t, gldap.ExtendedOperationName("1.3.6.1.4.1.1466.20036"), gldap.ExtendedOperationDisconnection)
}
