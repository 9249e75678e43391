package proxy

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/demodir"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// discard is a logger for tests.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memoryDirectory starts the in-memory sample directory (internal/demodir)
// for the test and returns its URL. It stands in for slapd in proxy's
// tests: directory's contract suite runs the client against both.
func memoryDirectory(t testing.TB) string {
	t.Helper()
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	return dir.URL()
}

// newTestDirectory builds a directory client from cfg, filling what a test
// leaves zero (uid filters, a 2s timeout, 8 password-check connections),
// and closes it when the test ends.
func newTestDirectory(t testing.TB, cfg directory.Config) *directory.Client {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sample"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 8
	}
	cfg.MaxIdle = cmp.Or(cfg.MaxIdle, config.DirectoryIdleConnections)
	cfg.LookupConnections = cmp.Or(cfg.LookupConnections, config.DefaultLookupConnections)
	cfg.LookupInFlight = cmp.Or(cfg.LookupInFlight, config.DefaultLookupInFlight)
	if cfg.UsernameAttribute == "" {
		cfg.UsernameAttribute = "uid"
	}
	if cfg.UserFilter == nil {
		cfg.UserFilter = func(u, _ string) string { return "(uid=" + ldap.EscapeFilter(u) + ")" }
	}
	if cfg.GroupFilter == nil {
		cfg.GroupFilter = func(dn string) string { return "(member=" + ldap.EscapeFilter(dn) + ")" }
	}
	d, err := directory.New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// serveTest runs a section in-process on loopback port 0 until the test
// ends, and returns the address the kernel gave it. cfg gets a name, the address, a
// secure policy and config's size bounds unless it sets its own.
func serveTest(t testing.TB, cfg Config, d Directory, sf SecondFactor, rec failmode.Recorder) string {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Listen = "127.0.0.1:0"
	if cfg.Policy == nil {
		cfg.Policy = func() failmode.Policy { return failmode.Policy{Mode: failmode.Secure} }
	}
	if cfg.MaxRequestSize == 0 {
		cfg.MaxRequestSize = config.DefaultMaxRequestSize
		cfg.MaxBufferedBytes = config.BufferedRequestsFactor * config.DefaultMaxRequestSize
	}
	srv, err := New(cfg, d, sf, rec, discard())
	if err != nil {
		t.Fatal(err)
	}
	runTest(t, srv)
	return srv.Addr().String()
}

// runTest serves srv until the test ends, once every listener is up.
func runTest(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ListenAndServe: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("proxy did not stop")
		}
	})
	testutil.WaitFor(t, 5*time.Second, srv.Ready, "the proxy to listen")
}

// sampleDirectory is a client for the sample tree at urls, with the lookup
// account and the password given.
func sampleDirectory(t testing.TB, timeout time.Duration, password string, urls ...string) *directory.Client {
	t.Helper()
	svc, _ := sampledata.LookupService("ldapgate")
	return newTestDirectory(t, directory.Config{URLs: urls, Timeout: timeout,
		BindDN: svc.DN(), BindPassword: password, BaseDN: sampledata.BaseDN})
}

// lookupPassword is the sample lookup account's password.
func lookupPassword() string {
	svc, _ := sampledata.LookupService("ldapgate")
	return svc.Password
}

func person(t testing.TB, uid string) sampledata.Person {
	t.Helper()
	p, ok := sampledata.Lookup(uid)
	if !ok {
		t.Fatalf("no sample person %q", uid)
	}
	return p
}

// testDirectoryConfig is a directory config for tests that never dial it.
func testDirectoryConfig() directory.Config {
	return directory.Config{URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: sampledata.BaseDN}
}
