package directory

import (
	"cmp"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// discard is a logger for tests.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestClient builds a Client from cfg, filling what a test leaves zero
// (uid filters, a 2s timeout, 8 password-check connections), and closes it
// when the test ends.
func newTestClient(t testing.TB, cfg Config) *Client {
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
	if cfg.UsernameAttribute == "" {
		cfg.UsernameAttribute = "uid"
	}
	if cfg.BaseDN == "" {
		cfg.BaseDN = sampledata.BaseDN
	}
	if cfg.UserFilter == nil {
		cfg.UserFilter = func(u, _ string) string { return "(uid=" + ldap.EscapeFilter(u) + ")" }
	}
	if cfg.GroupFilter == nil {
		cfg.GroupFilter = func(dn string) string { return "(member=" + ldap.EscapeFilter(dn) + ")" }
	}
	// What config gives a directory block that sets none of them.
	cfg.MaxIdle = cmp.Or(cfg.MaxIdle, config.DirectoryIdleConnections)
	cfg.LookupConnections = cmp.Or(cfg.LookupConnections, config.DefaultLookupConnections)
	cfg.LookupInFlight = cmp.Or(cfg.LookupInFlight, config.DefaultLookupInFlight)
	d, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// sampleClient is a Client for the sample tree at urls, with the lookup
// account and the password given.
func sampleClient(t testing.TB, timeout time.Duration, password string, urls ...string) *Client {
	t.Helper()
	svc, _ := sampledata.LookupService("ldapgate")
	return newTestClient(t, Config{URLs: urls, Timeout: timeout, BindDN: svc.DN(), BindPassword: password})
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
