package proxy

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// fakeSF is a SecondFactor made of a function, for in-process tests.
type fakeSF struct {
	verify func(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error)
}

func (f fakeSF) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	return f.verify(ctx, a)
}

// startProxy runs a proxy section in-process against a fresh in-memory
// sample directory.
func startProxy(t testing.TB, sf SecondFactor, events chan<- failmode.BindEvent) string {
	t.Helper()
	return startProxyAt(t, memoryDirectory(t), sf, events)
}

// startProxyAt runs a safe proxy section (admins secure, "," delimiter) for
// the sample directory at dirURL.
func startProxyAt(t testing.TB, dirURL string, sf SecondFactor, events chan<- failmode.BindEvent) string {
	t.Helper()
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), dirURL)
	rec := failmode.RecorderFunc(func(e failmode.BindEvent) {
		if events != nil {
			events <- e
		}
	})
	addr := serveTest(t, Config{Policy: func() failmode.Policy { return failmode.Policy{Mode: failmode.Safe} },
		SecureGroups: []string{sampledata.GroupDN(sampledata.AdminGroup)}, PasscodeDelimiter: ","}, d, sf, rec)
	return addr
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
