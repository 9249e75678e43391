package proxy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// runSection serves a section on loopback port 0 and returns its handle,
// a func that stops it (as SIGTERM does) and the channel ListenAndServe's
// return arrives on.
func runSection(t *testing.T, cfg Config, d Directory, sf SecondFactor) (*Server, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg.Name, cfg.Listen = "test", "127.0.0.1:0"
	if cfg.Policy == nil {
		cfg.Policy = func() failmode.Policy { return failmode.Policy{Mode: failmode.Secure} }
	}
	cfg.MaxRequestSize = config.DefaultMaxRequestSize
	cfg.MaxBufferedBytes = config.BufferedRequestsFactor * config.DefaultMaxRequestSize
	srv, err := New(cfg, d, sf, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- srv.ListenAndServe(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Errorf("section did not stop")
		}
	})
	testutil.WaitFor(t, 5*time.Second, srv.Ready, "the section to listen")
	return srv, cancel, done
}

func verdict(allowed bool) fakeSF {
	return fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: allowed}, nil
	}}
}

// TestReconfigureKeepsConnections: new settings decide the next bind on a
// connection opened before them; a bind already running ends with the
// settings it began with; the connection is never dropped.
func TestReconfigureKeepsConnections(t *testing.T) {
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	holding, release := make(chan struct{}), make(chan struct{})
	held := fakeSF{verify: func(ctx context.Context, _ failmode.Attempt) (failmode.Verdict, error) {
		close(holding)
		<-release
		return failmode.Verdict{Allowed: false}, nil
	}}
	srv, _, _ := runSection(t, Config{}, d, held)
	alice := person(t, "alice")
	conn := dialProxy(t, srv.Addr().String())
	bindErr := make(chan error, 1)
	go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
	<-holding

	cfg := srv.current().cfg
	if err := srv.Reconfigure(context.Background(), cfg, d, verdict(true), nil, discard()); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-bindErr; !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("the bind running across the reload: %v, want 49 from the settings it began with", err)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("the next bind on the same connection: %v, want success from the new settings", err)
	}

	moved := cfg
	moved.Listen = "127.0.0.1:1"
	if err := srv.Reconfigure(context.Background(), moved, d, verdict(true), nil, discard()); !errors.Is(err, ErrListenChanged) {
		t.Fatalf("a new listen address: %v, want ErrListenChanged", err)
	}
	if got := ListenerChanges(cfg, Config{}); len(got) == 0 {
		t.Fatal("ListenerChanges found nothing between a section and zero settings")
	}
}

// TestStopLetsBindFinish: when the section stops, a bind waiting for its
// second factor ends with its real answer (its context is not cancelled),
// and no new connection is taken.
func TestStopLetsBindFinish(t *testing.T) {
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	holding, release := make(chan struct{}), make(chan struct{})
	sf := fakeSF{verify: func(ctx context.Context, _ failmode.Attempt) (failmode.Verdict, error) {
		close(holding)
		select {
		case <-release:
			return failmode.Verdict{Allowed: true}, nil
		case <-ctx.Done():
			return failmode.Verdict{}, ctx.Err()
		}
	}}
	srv, stop, done := runSection(t, Config{ShutdownTimeout: 10 * time.Second}, d, sf)
	addr := srv.Addr().String()
	alice := person(t, "alice")
	conn := dialProxy(t, addr)
	bindErr := make(chan error, 1)
	go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
	<-holding

	stop()
	testutil.WaitFor(t, 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}, "the stopping section to refuse new connections")
	close(release)
	if err := <-bindErr; err != nil {
		t.Fatalf("the bind in flight at stop: %v, want its real answer (success)", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the section did not stop once its bind ended")
	}
}

// TestStopCutsAtShutdownTimeout: a bind still running at shutdown_timeout
// is cut (denied), and the section stops within it.
func TestStopCutsAtShutdownTimeout(t *testing.T) {
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	holding := make(chan struct{})
	sf := fakeSF{verify: func(ctx context.Context, _ failmode.Attempt) (failmode.Verdict, error) {
		close(holding)
		<-ctx.Done()
		return failmode.Verdict{}, ctx.Err()
	}}
	const timeout = 500 * time.Millisecond
	srv, stop, done := runSection(t, Config{ShutdownTimeout: timeout}, d, sf)
	alice := person(t, "alice")
	conn := dialProxy(t, srv.Addr().String())
	bindErr := make(chan error, 1)
	go func() { bindErr <- conn.Bind(alice.DN(), alice.Password) }()
	<-holding
	begin := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeout + 5*time.Second):
		t.Fatal("the section did not stop at its shutdown_timeout")
	}
	if took := time.Since(begin); took < timeout {
		t.Fatalf("stopped after %s, before shutdown_timeout %s: the bind was not given its time", took, timeout)
	}
	if err := <-bindErr; err == nil {
		t.Fatal("the bind cut at shutdown_timeout succeeded")
	}
}
