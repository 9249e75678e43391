package directory

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// probing runs d.Probe on a short interval until the test ends and returns
// a function reporting whether any report said the directory was down.
func probing(t *testing.T, d *Client) (sawDown func() bool) {
	t.Helper()
	var mu sync.Mutex
	down := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Probe(ctx, 50*time.Millisecond, nil, func(up, _ bool, _ error) {
			mu.Lock()
			down = down || !up
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() bool { mu.Lock(); defer mu.Unlock(); return down }
}

func urlUp(d *Client, i int, up bool) func() bool {
	return func() bool {
		u := d.URLs()[i]
		return u.Up == up && !u.Checked.IsZero()
	}
}

// TestProbeSeesADownSecondary: with two slapds as two URLs of one directory,
// the probe pings both, so the secondary going down shows in its own state
// (with the error and since when) while the primary serves and the
// directory stays up; its return shows too.
func TestProbeSeesADownSecondary(t *testing.T) {
	primary, secondary := slapdtest.Start(t), slapdtest.Start(t)
	d := sampleClient(t, time.Second, lookupPassword(), primary.URL, secondary.URL)
	sawDown := probing(t, d)
	testutil.WaitFor(t, 10*time.Second, func() bool { return urlUp(d, 0, true)() && urlUp(d, 1, true)() },
		"both URLs probed and up")
	if got := d.URLs(); got[0].URL != primary.URL || got[1].URL != secondary.URL {
		t.Fatalf("URLs = %+v, want %s then %s", got, primary.URL, secondary.URL)
	}

	stopped := time.Now()
	secondary.Stop()
	testutil.WaitFor(t, 10*time.Second, urlUp(d, 1, false), "the probe to see the secondary down")
	u := d.URLs()[1]
	if u.Err == "" || u.Since.Before(stopped) {
		t.Fatalf("down secondary: %+v, want an error and a since after %v", u, stopped)
	}
	if !d.URLs()[0].Up || !d.Up() || d.Problem() != "" {
		t.Fatalf("primary serves, yet URLs %+v, Up %v, Problem %q", d.URLs(), d.Up(), d.Problem())
	}
	if _, err := d.FindUser(context.Background(), nil, "alice"); err != nil {
		t.Fatalf("lookup with the secondary down: %v", err)
	}

	secondary.Restart(t)
	testutil.WaitFor(t, 10*time.Second, func() bool {
		u := d.URLs()[1]
		return u.Up && u.Err == "" && u.Since.After(stopped)
	}, "the probe to see the secondary back")
	if sawDown() {
		t.Fatal("a probe reported the directory down while the primary served")
	}
}

// TestOperationsCreditTheirURL: a failure on a connection marks the URL it
// was dialled to down, not the other one, and a dial records each URL it
// tries; the directory is down only when no URL serves.
func TestOperationsCreditTheirURL(t *testing.T) {
	first, second := slapdtest.Start(t), slapdtest.Start(t)
	d := sampleClient(t, time.Second, lookupPassword(), first.URL, second.URL)
	conn, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if u := d.URLs(); !u[0].Up || u[0].Checked.IsZero() || !u[1].Checked.IsZero() {
		t.Fatalf("after one dial to the first URL: %+v", u)
	}
	first.Stop()
	alice := person(t, "alice")
	if _, err := d.Bind(context.Background(), conn, alice.DN(), alice.Password, nil); !IsUnavailable(err) {
		t.Fatalf("bind on a stopped slapd: %v, want unavailable", err)
	}
	// credited to the first URL only: the second is still unchecked
	if u := d.URLs(); u[0].Up || !strings.Contains(u[0].Err, "bind") || !u[1].Checked.IsZero() || u[1].Err != errNotChecked {
		t.Fatalf("after a failed bind on the first URL: %+v", u)
	}
	c2, err := d.Dial(context.Background())
	if err != nil {
		t.Fatalf("dial with the second URL serving: %v", err)
	}
	c2.Close()
	if u := d.URLs(); u[1].Checked.IsZero() || !u[1].Up || !d.Up() {
		t.Fatalf("after a dial that reached the second URL: %+v (Up %v)", u, d.Up())
	}
	second.Stop()
	if _, err := d.Dial(context.Background()); !IsUnavailable(err) {
		t.Fatalf("dial with both stopped: %v", err)
	}
	if u := d.URLs(); u[0].Up || u[1].Up || d.Up() || d.Problem() != "unreachable" {
		t.Fatalf("both stopped: %+v, Up %v, Problem %q", u, d.Up(), d.Problem())
	}
}

// TestRefusedLookupAccountPerURL: a URL that answers but refuses the lookup
// account does not serve; with no other, the directory is down and says
// why.
func TestRefusedLookupAccountPerURL(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleClient(t, time.Second, "not-the-password", dir.URL)
	err := d.pingAll(context.Background())
	if !errors.Is(err, ErrLookupAccount) {
		t.Fatalf("ping with a wrong lookup password: %v", err)
	}
	u := d.URLs()[0]
	if u.Up || u.Err != ErrLookupAccount.Error() || d.Up() || !strings.Contains(d.Problem(), "lookup account") {
		t.Fatalf("URL %+v, Up %v, Problem %q", u, d.Up(), d.Problem())
	}
}

// TestPingHonoursContext: a URL that accepts connections and never answers
// is down after the directory timeout; a probe whose context ends (the
// program stops) returns at once and records nothing.
func TestPingHonoursContext(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	url := "ldap://" + hung.Addr().String()

	d := sampleClient(t, time.Minute, lookupPassword(), url)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := d.pingAll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ping: %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("the ping ignored its context")
	}
	if u := d.URLs()[0]; u.Up || !u.Checked.IsZero() || u.Err != errNotChecked {
		t.Fatalf("a cancelled ping recorded %+v", u)
	}

	d = sampleClient(t, 300*time.Millisecond, lookupPassword(), url)
	if err := d.pingAll(context.Background()); err == nil {
		t.Fatal("a hung URL answered the ping")
	}
	if u := d.URLs()[0]; u.Up || u.Err == "" {
		t.Fatalf("hung URL after a ping: %+v", u)
	}
}

// TestURLStateHasNoUserinfo: a URL that carries a user and password (config
// refuses them; this is the last line) never shows them.
func TestURLStateHasNoUserinfo(t *testing.T) {
	d := newTestClient(t, Config{URLs: []string{"ldap://cn=x:s3cret@127.0.0.1:1"}})
	if u := d.URLs()[0].URL; u != "ldap://127.0.0.1:1" {
		t.Fatalf("URL = %q", u)
	}
	if _, err := New(Config{URLs: []string{"ldap://u:s3cret@[::1"}, Timeout: time.Second, MaxConnections: 1, MaxIdle: 1,
		UserFilter: func(string, string) string { return "" }, GroupFilter: func(string) string { return "" },
		UsernameAttribute: "uid"}, discard()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestNothingKnownIsNotUp: before anything reached a URL the directory is
// not up, and says why; the first answer makes it so.
func TestNothingKnownIsNotUp(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleClient(t, time.Second, lookupPassword(), dir.URL)
	if d.Up() || d.Problem() != errNotChecked {
		t.Fatalf("before any check: Up() = %v, Problem() = %q", d.Up(), d.Problem())
	}
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !d.Up() || d.Problem() != "" {
		t.Fatalf("after a ping: Up() = %v, Problem() = %q", d.Up(), d.Problem())
	}
}
