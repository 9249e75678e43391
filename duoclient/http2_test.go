package duoclient_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestHTTP2WhenOffered: calls go over HTTP/2 when the endpoint offers it
// through ALPN, and over HTTP/1.1 when it offers only that.
func TestHTTP2WhenOffered(t *testing.T) {
	for _, tc := range []struct {
		name      string
		http1Only bool
		want      string
	}{
		{"h2 offered", false, "HTTP/2.0"},
		{"http/1.1 only", true, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, c := aliceSim(t, tc.http1Only)
			v, err := c.Verify(context.Background(), failmode.Attempt{Username: "alice", Factor: failmode.FactorPush})
			if err != nil || !v.Allowed {
				t.Fatalf("Verify = %+v, %v", v, err)
			}
			reqs := sim.Requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests reached the simulator, want preauth and auth", len(reqs))
			}
			for _, r := range reqs {
				if r.Proto != tc.want {
					t.Errorf("%s came over %s, want %s", r.Path, r.Proto, tc.want)
				}
			}
		})
	}
}

// aliceSim is a simulator that knows alice (approving), offering HTTP/1.1
// alone when asked, and a client of it.
func aliceSim(t *testing.T, http1Only bool) (*duosim.Sim, *duoclient.Client) {
	t.Helper()
	sim, err := duosim.New(duosim.Options{HTTP1Only: http1Only, Users: []duosim.User{{Name: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, simClient(t, sim, nil)
}

// holdPushes opens the client's connection with a check, then starts n
// pushes the simulator holds (auth_hang) and returns once all n are held.
// The returned func waits for them to end, as the test lets them, and
// returns how each failed.
func holdPushes(t *testing.T, sim *duosim.Sim, c *duoclient.Client, n int) (ended func() []*failmode.Error) {
	t.Helper()
	ctx := context.Background()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFault(duosim.FaultAuthHang); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Verify(ctx, failmode.Attempt{Username: "alice", Factor: failmode.FactorPush})
			errs <- err
		})
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return sim.Held() == n }, "every push held")
	return func() []*failmode.Error {
		t.Helper()
		wg.Wait()
		close(errs)
		var fes []*failmode.Error
		for err := range errs {
			var fe *failmode.Error
			if !errors.As(err, &fe) {
				t.Fatalf("held push ended with %v, want a classified error", err)
			}
			fes = append(fes, fe)
		}
		return fes
	}
}

// TestPendingPushesShareAConnection: pushes waiting for their users hold
// no connection each over HTTP/2; they share the one the first call opened.
// Over HTTP/1.1 (the endpoint offers nothing else) each holds its own.
func TestPendingPushesShareAConnection(t *testing.T) {
	const pending = 40
	for _, tc := range []struct {
		name      string
		http1Only bool
	}{
		{"h2", false},
		{"http/1.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, c := aliceSim(t, tc.http1Only)
			ended := holdPushes(t, sim, c, pending)
			switch n := sim.Connections(); {
			case !tc.http1Only && n != 1:
				t.Errorf("%d pending pushes over HTTP/2 opened %d connections to Duo, want the one", pending, n)
			case tc.http1Only && n < pending:
				t.Errorf("%d pending pushes over HTTP/1.1 opened only %d connections: each must hold its own", pending, n)
			default:
				t.Logf("%d pending pushes, %d connections", pending, n)
			}
			// Releasing them answers every push 503: Duo answered, the
			// logins did not complete.
			if err := sim.SetFault(duosim.FaultNone); err != nil {
				t.Fatal(err)
			}
			for _, fe := range ended() {
				if fe.Class != failmode.Degraded {
					t.Fatalf("released push: %v, want Degraded", fe)
				}
			}
		})
	}
}

// TestSharedConnectionLost: when Duo drops the one connection every
// pending push shares, each push is Degraded (Duo stopped answering after
// authentication began) and each new preauth, on a new connection, sees
// the outage: never an unclassified (Local) error.
func TestSharedConnectionLost(t *testing.T) {
	sim, c := aliceSim(t, false)
	ended := holdPushes(t, sim, c, 20)
	// refuse closes the listener and every connection, the shared one too.
	if err := sim.SetFault(duosim.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	for _, fe := range ended() {
		if fe.Class != failmode.Degraded || fe.Stage != failmode.StageAuth {
			t.Fatalf("push whose connection was dropped: %v, want Degraded at auth", fe)
		}
	}
	_, err := c.Verify(context.Background(), failmode.Attempt{Username: "alice", Factor: failmode.FactorPush})
	var fe *failmode.Error
	if !errors.As(err, &fe) || fe.Class != failmode.Unreachable || fe.Stage != failmode.StagePreauth {
		t.Fatalf("preauth after the drop: %v, want Unreachable", err)
	}
}

// TestCallOnAConnectionClosedUnderIt: Duo (or a balancer in front of it)
// may close a connection the client holds idle at any moment. A check or
// preauth that takes it just then is sent again on a new connection, as
// net/http does by itself over HTTP/1.1: the close says nothing about Duo.
func TestCallOnAConnectionClosedUnderIt(t *testing.T) {
	sim, c := aliceSim(t, false)
	ctx := context.Background()
	for i, call := range []func() error{
		func() error { return c.Check(ctx) },
		func() error {
			_, err := c.Verify(ctx, failmode.Attempt{Username: "alice", Factor: failmode.FactorPush})
			return err
		},
	} {
		if err := c.Check(ctx); err != nil { // the connection to be closed
			t.Fatal(err)
		}
		// refuse closes every connection; clearing it listens again.
		if err := sim.SetFault(duosim.FaultRefuse); err != nil {
			t.Fatal(err)
		}
		if err := sim.SetFault(duosim.FaultNone); err != nil {
			t.Fatal(err)
		}
		if err := call(); err != nil {
			t.Fatalf("call %d on the closed connection: %v, want it sent again and answered", i, err)
		}
	}
}
