// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatch_PanicRecovery covers patch 9: a panicking handler is recovered
// and logged with its stack, its connection gets a Notice of Disconnection
// (ResultOther) and is closed, and other connections are unaffected.
func TestPatch_PanicRecovery(t *testing.T) {
	logs := &testLogBuf{}
	logger := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Error, Output: logs})
	mux, err := gldap.NewMux()
	require.NoError(t, err)
	require.NoError(t, mux.Search(func(w *gldap.ResponseWriter, r *gldap.Request) {
		panic("boom in search handler")
	}))
	require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
	}))
	require.NoError(t, mux.Unbind(func(w *gldap.ResponseWriter, r *gldap.Request) {
		panic("boom in unbind handler")
	}))
	_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithLogger(logger)})

	// a bystander connection, opened before the panic
	bystander := dialRaw(t, addr)
	bystander.send(bindRequest(1, 3, "cn=bystander", simpleAuth("x")))
	assert.Equal(t, int64(1), parseResult(t, bystander.read()).messageID)

	t.Run("async-handler", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(searchRequest(t, 2, "dc=x"))
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultOther)
		c.requireClosed()
		assert.Contains(t, logs.String(), "boom in search handler")
		assert.Contains(t, logs.String(), "runtime/debug.Stack", "the stack is logged")
	})

	t.Run("unbind-handler", func(t *testing.T) {
		c := dialRaw(t, addr)
		env := envelope(3)
		env.AppendChild(gldapUnbindOp())
		c.send(env)
		requireNoticeOfDisconnection(t, c.read(), gldap.ResultOther)
		c.requireClosed()
		assert.Contains(t, logs.String(), "boom in unbind handler")
	})

	// the bystander still works, and so do new connections
	bystander.send(bindRequest(4, 3, "cn=bystander", simpleAuth("x")))
	assert.Equal(t, int64(4), parseResult(t, bystander.read()).messageID)
	fresh := dialPatchServer(t, addr)
	require.NoError(t, fresh.Bind("cn=fresh", "x"))
}

// TestPatch_PanicRecoveryDisabled checks that WithDisablePanicRecovery lets a
// handler panic crash the process (for debugging), in a child process.
func TestPatch_PanicRecoveryDisabled(t *testing.T) {
	if os.Getenv("GLDAP_PANIC_CHILD") == "1" {
		mux, err := gldap.NewMux()
		require.NoError(t, err)
		require.NoError(t, mux.Bind(func(w *gldap.ResponseWriter, r *gldap.Request) {
			panic("boom with recovery disabled")
		}))
		_, addr := startPatchServer(t, mux, []gldap.Option{gldap.WithDisablePanicRecovery()})
		c := dialRaw(t, addr)
		c.send(bindRequest(1, 3, "cn=x", simpleAuth("y")))
		_, _ = c.readErr() // the process dies before this returns
		t.Fatal("the process survived a handler panic with recovery disabled")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPatch_PanicRecoveryDisabled$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GLDAP_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "child must crash: %s", out)
	assert.Contains(t, string(out), "panic: boom with recovery disabled")
}
