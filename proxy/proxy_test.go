package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"

	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// fakeSF is a SecondFactor made of a function, for in-process tests.
type fakeSF struct {
	verify func(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error)
}

func (f fakeSF) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	return f.verify(ctx, a)
}

// startProxy runs a proxy section in-process against a fresh slapd.
func startProxy(t testing.TB, sf SecondFactor, events chan<- failmode.BindEvent) string {
	t.Helper()
	_, addr := startProxyWithDir(t, sf, events)
	return addr
}

// startProxyWithDir is startProxy that also returns the directory's URL.
func startProxyWithDir(t testing.TB, sf SecondFactor, events chan<- failmode.BindEvent) (string, string) {
	t.Helper()
	dir := slapdtest.Start(t)
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dir.URL)
	rec := failmode.RecorderFunc(func(e failmode.BindEvent) {
		if events != nil {
			events <- e
		}
	})
	addr := serveTest(t, Config{Policy: func() failmode.Policy { return failmode.Policy{Mode: failmode.Safe} },
		SecureGroups: []string{sampledata.GroupDN(sampledata.AdminGroup)}, PasscodeDelimiter: ","}, d, sf, rec)
	return dir.URL, addr
}

func dialProxy(t testing.TB, addr string) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestClientGoneCancelsSecondFactor: a client that hangs up while its push
// is pending cancels the Duo call; nothing waits for push_timeout.
func TestClientGoneCancelsSecondFactor(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan error, 1)
	sf := fakeSF{verify: func(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return failmode.Verdict{}, ctx.Err()
	}}
	addr := startProxy(t, sf, nil)
	conn := dialProxy(t, addr)
	alice, _ := sampledata.Lookup("alice")
	go func() { _ = conn.Bind(alice.DN(), alice.Password) }()
	<-started
	conn.Close()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("second factor saw %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second-factor call was not cancelled when the client left")
	}
}

// TestUnclassifiedErrorsDeny: a second factor that fails in a way nobody
// classified never lets anyone in, even in a safe section.
func TestUnclassifiedErrorsDeny(t *testing.T) {
	events := make(chan failmode.BindEvent, 1)
	addr := startProxy(t, fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, errors.New("something odd")
	}}, events)
	alice, _ := sampledata.Lookup("alice")
	err := dialProxy(t, addr).Bind(alice.DN(), alice.Password)
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("got %v, want invalidCredentials", err)
	}
	if ev := <-events; ev.Status != failmode.StatusError || ev.Rule != failmode.RuleUnknown {
		t.Fatalf("event %+v", ev)
	}
}

// TestSecondFactorPanicIsContained: a panic while deciding a bind ends
// that connection only; the proxy keeps serving.
func TestSecondFactorPanicIsContained(t *testing.T) {
	var once sync.Once
	addr := startProxy(t, fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		var v failmode.Verdict
		once.Do(func() { panic("boom") })
		v.Allowed = true
		return v, nil
	}}, nil)
	alice, _ := sampledata.Lookup("alice")
	if err := dialProxy(t, addr).Bind(alice.DN(), alice.Password); err == nil {
		t.Fatal("a bind whose decision panicked must not succeed")
	}
	if err := dialProxy(t, addr).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("the proxy stopped serving after a panic: %v", err)
	}
}

// TestNoGoroutineLeak: client connections, whatever they do, leave no
// goroutine behind once they are closed.
func TestNoGoroutineLeak(t *testing.T) {
	addr := startProxy(t, fakeSF{verify: func(_ context.Context, a failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: a.Username != "bob"}, nil
	}}, nil)
	alice, _ := sampledata.Lookup("alice")
	bob, _ := sampledata.Lookup("bob")
	warm := dialProxy(t, addr)
	if err := warm.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	baseline := settle()
	for i := 0; i < 20; i++ {
		conn, err := ldap.DialURL("ldap://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		p := alice
		if i%2 == 1 {
			p = bob
		}
		_ = conn.Bind(p.DN(), p.Password)
		_, _ = conn.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=*)", []string{"uid"}, nil))
		conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := settle()
		if n <= baseline+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, baseline, truncate(string(buf), 8000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("\n... (%d more bytes)", len(s)-n)
}

// TestDirectoryFailover: a directory URL that refuses connections is
// skipped in favour of the next one.
func TestDirectoryFailover(t *testing.T) {
	dir := slapdtest.Start(t)
	dead := "ldap://" + testutil.FreeAddr(t) // nothing listens there
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dead, dir.URL)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("ping with the first URL dead: %v", err)
	}
	id, err := d.FindUser(context.Background(), nil, "alice")
	if err != nil || id.DN != sampledata.PersonDN("alice") || id.Username != "alice" {
		t.Fatalf("FindUser: %+v %v", id, err)
	}

	// Every URL dead: unavailable, never "no such user".
	d2 := sampleDirectory(t, time.Second, lookupPassword(), dead)
	if _, err := d2.FindUser(context.Background(), nil, "alice"); !IsUnavailable(err) {
		t.Fatalf("all URLs dead: %v, want an UnavailableError", err)
	}
	if d2.Up() {
		t.Fatal("Up() after every URL failed")
	}
}

// TestLookupAccountRefused: a wrong lookup-account password is an operator
// problem: readiness fails and binds get "unavailable", never "invalid
// credentials" and never a second-factor call.
func TestLookupAccountRefused(t *testing.T) {
	dir := slapdtest.Start(t)
	d := sampleDirectory(t, 2*time.Second, "not-the-password", dir.URL)
	if err := d.Ping(context.Background()); !errors.Is(err, ErrLookupAccount) {
		t.Fatalf("Ping: %v, want ErrLookupAccount", err)
	}
	// The directory answers, but no one can be authenticated: not up, and
	// the one answer says why.
	if d.Up() || !strings.Contains(d.Problem(), "lookup account") {
		t.Fatalf("Up() = %v, Problem() = %q with the lookup account refused", d.Up(), d.Problem())
	}
	_, err := d.FindUser(context.Background(), nil, "alice")
	if rule := lookupRule(err); outcomes[rule].code != ldap.LDAPResultUnavailable || rule != failmode.RuleDirectoryUnavailable {
		t.Fatalf("FindUser with a refused lookup account: %v maps to %s", err, rule)
	}
	for err, want := range map[error]int{
		ErrNoSuchUser:                                ldap.LDAPResultInvalidCredentials,
		fmt.Errorf("x: %w", ErrAmbiguousUser):        ldap.LDAPResultInvalidCredentials,
		&UnavailableError{Op: "search", Err: io.EOF}: ldap.LDAPResultUnavailable,
		errors.New("anything else"):                  ldap.LDAPResultUnavailable,
	} {
		if code := outcomes[lookupRule(err)].code; code != want {
			t.Errorf("lookupRule(%v) answers %d, want %d", err, code, want)
		}
	}
}

// TestDirectoryHungServer: a directory URL that accepts connections but
// never answers costs one timeout; after it, new connections go to the next
// URL first.
func TestDirectoryHungServer(t *testing.T) {
	dir := slapdtest.Start(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accept, never answer
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
	d := sampleDirectory(t, 300*time.Millisecond, lookupPassword(), "ldap://"+hung.Addr().String(), dir.URL)
	// The lookup account's first connection lands on the hung server, times
	// out, and the retry goes to the next URL.
	if id, err := d.FindUser(context.Background(), nil, "alice"); err != nil || id.Username != "alice" {
		t.Fatalf("FindUser across a hung first URL: %+v %v", id, err)
	}
	// A client's own connection now starts with the URL that answers.
	conn, err := d.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice, _ := sampledata.Lookup("alice")
	if _, err := d.Bind(context.Background(), conn, alice.DN(), alice.Password, nil); err != nil {
		t.Fatalf("bind after failover: %v", err)
	}
}

// sampleDirectory builds a Directory for the sample tree at urls, with the
// lookup account and password given; t.Cleanup closes it.
func sampleDirectory(t testing.TB, timeout time.Duration, password string, urls ...string) *Directory {
	t.Helper()
	svc, _ := sampledata.LookupService("ldapgate")
	return newTestDirectory(t, DirectoryConfig{URLs: urls, Timeout: timeout,
		BindDN: svc.DN(), BindPassword: password, BaseDN: sampledata.BaseDN})
}

// lookupPassword is the sample lookup account's password.
func lookupPassword() string {
	svc, _ := sampledata.LookupService("ldapgate")
	return svc.Password
}
