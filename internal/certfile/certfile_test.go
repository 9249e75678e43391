package certfile

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

func TestLoadNamesTheBadPart(t *testing.T) {
	ca := testca.New(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, dir, "good")
	_, otherKey := ca.Loopback(t).Write(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name       string
		cert, key  string
		part       Part
		file       string
		sentinel   error
		wantInText string
	}{
		{"cert missing", missing, keyFile, Cert, missing, fs.ErrNotExist, "missing.pem"},
		{"cert not PEM", garbage, keyFile, Cert, garbage, ErrNoCertificate, "no certificate found"},
		{"key missing", certFile, missing, Key, missing, fs.ErrNotExist, "missing.pem"},
		{"key not PEM", certFile, garbage, Key, garbage, ErrNoKey, "no PEM private key"},
		{"key of another certificate", certFile, otherKey, Pair, certFile, nil, "does not match"},
		{"certificate given as key", certFile, certFile, Key, certFile, ErrNoKey, "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load: %v, want an *Error", err)
			}
			if e.Part != tc.part || e.File != tc.file {
				t.Errorf("Load: part %d file %s, want part %d file %s", e.Part, e.File, tc.part, tc.file)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("Load: %v, want it to wrap %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("Load: %q lacks %q", err, tc.wantInText)
			}
		})
	}
	if _, err := Load(certFile, keyFile); err != nil {
		t.Fatalf("a good pair: %v", err)
	}
}

// echoServer serves TLS with r's certificate on loopback and echoes.
func echoServer(t *testing.T, r *Reloader) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// served dials addr trusting ca and returns the serial of the certificate
// the server presented.
func served(t *testing.T, addr string, ca *testca.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write on the established connection: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo on the established connection: %q, %v", buf, err)
	}
}

// TestReloaderFollowsTheFiles: a pair replaced on disk is served to the
// next handshakes once the interval has passed; a connection established
// before keeps working; a bad pair on disk keeps the previous one in use
// and is logged naming its files, and a good one after it is picked up.
func TestReloaderFollowsTheFiles(t *testing.T) {
	ca := testca.New(t, "test CA")
	dir := t.TempDir()
	first := ca.Loopback(t)
	certFile, keyFile := first.Write(t, dir, "server")
	var logs testutil.SyncBuffer
	r, err := New(certFile, keyFile, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r)
	if got := served(t, addr, ca); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("served %s, want the first certificate %s", got, first.Leaf.SerialNumber)
	}
	established, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()
	echo(t, established, "before")

	second := ca.Loopback(t)
	second.Write(t, dir, "server")
	testutil.WaitFor(t, 10*time.Second, func() bool { return served(t, addr, ca) == second.Leaf.SerialNumber.String() },
		"a new handshake to see the replaced certificate")
	echo(t, established, "after the reload")

	// A broken pair: the certificate half-written (not PEM), then a key
	// that does not match. The second certificate stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool {
		served(t, addr, ca) // the files are looked at on a handshake
		return strings.Contains(logs.String(), "not reloaded")
	}, "the failed reload to be logged")
	if got := served(t, addr, ca); got != second.Leaf.SerialNumber.String() {
		t.Fatalf("after a bad pair on disk: served %s, want the previous certificate %s", got, second.Leaf.SerialNumber)
	}
	if log := logs.String(); !strings.Contains(log, certFile) || !strings.Contains(log, keyFile) {
		t.Errorf("the failure log does not name the files:\n%s", log)
	}
	if bytes.Contains([]byte(logs.String()), second.KeyPEM) {
		t.Fatal("the log holds the private key")
	}
	third := ca.Loopback(t)
	third.Write(t, dir, "server")
	testutil.WaitFor(t, 10*time.Second, func() bool { return served(t, addr, ca) == third.Leaf.SerialNumber.String() },
		"a good pair after a bad one to be picked up")
	echo(t, established, "still")
}

// TestReloadNow: Reload reads the files at once (SIGHUP), before the
// interval would; a failing Reload returns an *Error and keeps the pair.
func TestReloadNow(t *testing.T) {
	ca := testca.New(t, "test CA")
	dir := t.TempDir()
	first := ca.Loopback(t)
	certFile, keyFile := first.Write(t, dir, "server")
	r, err := New(certFile, keyFile, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, r)
	second := ca.Loopback(t)
	second.Write(t, dir, "server")
	if got := served(t, addr, ca); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("within the interval: served %s, want the first certificate still", got)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, addr, ca); got != second.Leaf.SerialNumber.String() {
		t.Fatalf("after Reload: served %s, want the second certificate %s", got, second.Leaf.SerialNumber)
	}
	_, otherKey := ca.Loopback(t).Write(t, dir, "other")
	data, _ := os.ReadFile(otherKey)
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := r.Reload(); !errors.As(err, &e) || e.Part != Pair {
		t.Fatalf("Reload of a mismatched pair: %v, want an *Error about the pair", err)
	}
	if got := served(t, addr, ca); got != second.Leaf.SerialNumber.String() {
		t.Fatalf("after a failed Reload: served %s, want the second certificate", got)
	}
}

func TestNewRefusesABadPair(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(filepath.Join(dir, "no.crt"), filepath.Join(dir, "no.key"), time.Second, nil); err == nil {
		t.Fatal("New with missing files succeeded")
	}
}

// TestRunWatchesWithoutHandshakes: Run looks at the files on its own, so
// a pair replaced while no client connects is loaded (and a bad one
// logged) all the same.
func TestRunWatchesWithoutHandshakes(t *testing.T) {
	ca := testca.New(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, dir, "server")
	var logs testutil.SyncBuffer
	r, err := New(certFile, keyFile, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	second := ca.Loopback(t)
	second.Write(t, dir, "server")
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return r.Current().Leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) == 0
	}, "Run to load the replaced pair")
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "not reloaded") },
		"Run to log the bad pair")
	if r.Current().Leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Fatal("a bad pair replaced the good one")
	}
}
