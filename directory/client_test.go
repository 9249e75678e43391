package proxy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

func directoryWithFilter(t *testing.T, url string, timeout time.Duration, filter func(u, name string) string) *Directory {
	t.Helper()
	svc, _ := sampledata.LookupService("ldapgate")
	return newTestDirectory(t, DirectoryConfig{URLs: []string{url}, Timeout: timeout, MaxConnections: 4,
		BindDN: svc.DN(), BindPassword: svc.Password, BaseDN: sampledata.BaseDN, UserFilter: filter})
}

// TestFindUserManyMatchesIsAmbiguous: FindUser asks for two entries to
// tell one match from several; the directory's sizeLimitExceeded for a
// name matching more is "ambiguous" (49), not "directory unavailable".
func TestFindUserManyMatchesIsAmbiguous(t *testing.T) {
	dir := slapdtest.Start(t)
	everyone := func(string, string) string { return "(objectClass=inetOrgPerson)" }
	d := directoryWithFilter(t, dir.URL, 5*time.Second, everyone)
	if _, err := d.FindUser(context.Background(), nil, "anyone"); !errors.Is(err, ErrAmbiguousUser) {
		t.Fatalf("a name matching %d entries: %v, want ErrAmbiguousUser", len(sampledata.People), err)
	}
	if !d.Up() {
		t.Fatal("the directory answered: it is up")
	}
}

// TestLookupHonoursContext: a client that hangs up ends its lookup on a
// directory that stopped answering, at once rather than after the
// directory timeout, and its cancellation does not mark the directory
// down (our own fault says nothing about the directory).
func TestLookupHonoursContext(t *testing.T) {
	dir := slapdtest.Start(t)
	uid := func(u, _ string) string { return "(uid=" + ldap.EscapeFilter(u) + ")" }
	d := directoryWithFilter(t, dir.URL, time.Minute, uid)
	if _, err := d.FindUser(context.Background(), nil, "alice"); err != nil {
		t.Fatal(err) // the lookup connection is open and bound
	}
	dir.Pause(t)
	defer dir.Resume(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := d.FindUser(ctx, nil, "bob"); done <- err }()
	time.AfterFunc(100*time.Millisecond, cancel)
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled lookup: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the lookup ignored its context (directory timeout is 1m)")
	}
	if !d.Up() {
		t.Fatal("a cancelled lookup marked the directory down")
	}
}

// TestProbeReportsTheOneAnswer: Probe pings on its interval and reports
// Up, flagging changes: down when slapd stops, up again when it returns;
// after runs with every probe.
func TestProbeReportsTheOneAnswer(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleDirectory(t, time.Second, lookupPassword(), dir.URL)
	type report struct{ up, changed bool }
	var mu sync.Mutex
	var reports []report
	var afters atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Probe(ctx, 50*time.Millisecond, func(context.Context) { afters.Add(1) }, func(up, changed bool, _ error) {
			mu.Lock()
			reports = append(reports, report{up, changed})
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	saw := func(want report) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(reports, want)
		}
	}
	testutil.WaitFor(t, 10*time.Second, saw(report{true, false}), "a first probe: up, unchanged")
	dir.Stop()
	testutil.WaitFor(t, 10*time.Second, saw(report{false, true}), "the probe to see slapd gone")
	dir.Restart(t)
	testutil.WaitFor(t, 10*time.Second, saw(report{true, true}), "the probe to see slapd back")
	if afters.Load() == 0 {
		t.Fatal("after never ran")
	}
}
