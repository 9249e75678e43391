package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/guard"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
	"github.com/ldapgate/ldapgate/store"
)

// countingDirectory is the real directory client, counting what reaches
// the directory: password binds and user lookups.
type countingDirectory struct {
	Directory
	binds, lookups atomic.Int64
}

func (c *countingDirectory) Bind(ctx context.Context, conn *ldap.Conn, name, password string, controls []ldap.Control) (*ldap.SimpleBindResult, error) {
	c.binds.Add(1)
	return c.Directory.Bind(ctx, conn, name, password, controls)
}

func (c *countingDirectory) FindUser(ctx context.Context, conn *ldap.Conn, name string) (directory.Identity, error) {
	c.lookups.Add(1)
	return c.Directory.FindUser(ctx, conn, name)
}

// budgetSF is a second factor that behaves as Duo does towards the
// budget: it asks Admit before "sending" the factor, then answers with
// verdict. It counts the calls and the factors sent.
type budgetSF struct {
	verdict func(failmode.Attempt) (failmode.Verdict, error)
	mu      sync.Mutex
	calls   int
	sent    int
	last    failmode.Attempt
}

func (f *budgetSF) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	f.mu.Lock()
	f.calls++
	f.last = a
	f.mu.Unlock()
	v, err := f.verdict(a)
	if err != nil {
		return v, err
	}
	if v.Bypass {
		return v, nil
	}
	if a.Admit != nil {
		factor := a.Factor
		if a.Passcode != "" {
			factor = failmode.FactorPasscode
		}
		if aerr := a.Admit(ctx, factor); aerr != nil {
			return failmode.Verdict{}, &failmode.Error{Class: failmode.Local, Stage: failmode.StageAuth, Err: aerr}
		}
	}
	f.mu.Lock()
	f.sent++
	f.mu.Unlock()
	return v, nil
}

func (f *budgetSF) lastAttempt() failmode.Attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *budgetSF) counts() (calls, sent int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.sent
}

// guarded runs a safe section with the given guards over a counting
// in-memory directory (with the lookup account), recording events.
type guarded struct {
	addr   string
	dir    *countingDirectory
	mu     sync.Mutex
	events []failmode.BindEvent
	alerts []GuardAlert
}

func startGuarded(t *testing.T, sf SecondFactor, g Guards, policy func() failmode.Policy) *guarded {
	t.Helper()
	out := &guarded{dir: &countingDirectory{Directory: sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))}}
	g.OnAlert = func(a GuardAlert) {
		out.mu.Lock()
		out.alerts = append(out.alerts, a)
		out.mu.Unlock()
	}
	if policy == nil {
		policy = func() failmode.Policy { return failmode.Policy{Mode: failmode.Safe} }
	}
	rec := failmode.RecorderFunc(func(e failmode.BindEvent) {
		out.mu.Lock()
		out.events = append(out.events, e)
		out.mu.Unlock()
	})
	out.addr = serveTest(t, Config{Name: "vpn", Policy: policy, PasscodeDelimiter: ",", Guards: g}, out.dir, sf, rec)
	return out
}

// waitEvents waits for n bind events: a bind's event is recorded just
// after its response is written.
func (g *guarded) waitEvents(t *testing.T, n int) []failmode.Rule {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(g.rules()) >= n }, fmt.Sprintf("%d bind events", n))
	return g.rules()
}

func (g *guarded) rules() []failmode.Rule {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]failmode.Rule, len(g.events))
	for i, e := range g.events {
		out[i] = e.Rule
	}
	return out
}

func count(rules []failmode.Rule, r failmode.Rule) int {
	n := 0
	for _, x := range rules {
		if x == r {
			n++
		}
	}
	return n
}

func (g *guarded) alertCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.alerts)
}

func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(store.Options{MaxKeys: 10000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// bindFrom binds once on a fresh connection from the loopback address
// src, and returns the LDAP result code and diagnostic (0, "" on success).
func bindFrom(t *testing.T, addr, src, name, password string) (uint16, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conn, err := ldap.DialURL("ldap://"+addr, ldap.DialWithDialer(d))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Bind(name, password)
	if err == nil {
		return 0, ""
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		t.Fatalf("bind %s: %v", name, err)
	}
	msg := ""
	if le.Err != nil {
		msg = le.Err.Error()
	}
	return le.ResultCode, msg
}

func approve(failmode.Attempt) (failmode.Verdict, error) { return failmode.Verdict{Allowed: true}, nil }

// TestThrottleSpraying: one address spraying wrong passwords at many names
// is throttled after per_address failures, answered exactly as a wrong
// password is, without the directory being asked; the same people still
// get in from another address.
func TestThrottleSpraying(t *testing.T) {
	st := newStore(t)
	g := startGuarded(t, &budgetSF{verdict: approve}, Guards{Throttle: guard.NewThrottle(st, "vpn",
		store.Budget{N: 5, Window: 15 * time.Minute}, store.Budget{N: 20, Window: time.Minute})}, nil)

	const perAddress = 20
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("sprayed%02d", i))
	}
	for _, p := range sampledata.People {
		names = append(names, p.UID)
	}
	var unthrottled [2]string // code and diagnostic of a refused, unthrottled bind
	for i, name := range names {
		code, diag := bindFrom(t, g.addr, "127.0.0.2", name, "Winter2025!")
		if code != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("spray %d (%s): code %d, want 49", i, name, code)
		}
		if i == 0 {
			unthrottled = [2]string{fmt.Sprint(code), diag}
		} else if got := [2]string{fmt.Sprint(code), diag}; got != unthrottled {
			t.Fatalf("spray %d answered %v, the first refusal %v: a throttled bind must look like any other", i, got, unthrottled)
		}
	}
	if n := g.dir.lookups.Load() + g.dir.binds.Load(); n != perAddress {
		t.Fatalf("the directory was asked %d times (lookups %d, binds %d) for %d sprayed binds, want %d: throttled binds must cost it nothing",
			n, g.dir.lookups.Load(), g.dir.binds.Load(), len(names), perAddress)
	}
	throttled := count(g.waitEvents(t, len(names)), failmode.RuleThrottled)
	if want := len(names) - perAddress; throttled != want {
		t.Fatalf("%d binds logged as throttled, want %d", throttled, want)
	}
	// The people sprayed from 127.0.0.2 still get in from 127.0.0.1.
	for _, uid := range []string{"alice", "grace"} {
		p := person(t, uid)
		if code, diag := bindFrom(t, g.addr, "127.0.0.1", p.UID, p.Password); code != 0 {
			t.Fatalf("%s from 127.0.0.1: %d %q", uid, code, diag)
		}
	}
}

// TestThrottleOneAccount: guessing one account's password from one
// address is throttled after per_user_address failures, the right password
// included; the owner gets in from elsewhere, the guesser's address can
// still bind other names, and a success clears its own failures.
func TestThrottleOneAccount(t *testing.T) {
	st := newStore(t)
	g := startGuarded(t, &budgetSF{verdict: approve}, Guards{Throttle: guard.NewThrottle(st, "vpn",
		store.Budget{N: 5, Window: 15 * time.Minute}, store.Budget{N: 20, Window: time.Minute})}, nil)
	alice, grace := person(t, "alice"), person(t, "grace")

	// Four failures, then the right password: let in, failures forgotten.
	for range 4 {
		bindFrom(t, g.addr, "127.0.0.3", grace.DN(), "guess")
	}
	if code, _ := bindFrom(t, g.addr, "127.0.0.3", grace.DN(), grace.Password); code != 0 {
		t.Fatalf("grace after 4 failures: %d", code)
	}
	for range 4 {
		bindFrom(t, g.addr, "127.0.0.3", grace.DN(), "guess")
	}
	if code, _ := bindFrom(t, g.addr, "127.0.0.3", grace.DN(), grace.Password); code != 0 {
		t.Fatalf("grace after a success and 4 more failures: %d (a success must clear the count)", code)
	}

	// Five failures for alice, respelled: the sixth is throttled, even
	// with the right password, and never reaches the directory.
	spellings := []string{alice.DN(), "UID=alice,ou=People,dc=example,dc=com", "uid=alice, ou=people, dc=example, dc=com", alice.DN(), alice.DN()}
	for _, name := range spellings {
		bindFrom(t, g.addr, "127.0.0.4", name, "guess")
	}
	before := g.dir.binds.Load()
	if code, _ := bindFrom(t, g.addr, "127.0.0.4", alice.DN(), alice.Password); code != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("alice's sixth bind from the guessing address: %d, want 49 (throttled)", code)
	}
	if g.dir.binds.Load() != before {
		t.Fatal("a throttled bind reached the directory")
	}
	if code, _ := bindFrom(t, g.addr, "127.0.0.1", alice.DN(), alice.Password); code != 0 {
		t.Fatalf("alice from another address: %d; failures elsewhere must not lock her out", code)
	}
	if code, _ := bindFrom(t, g.addr, "127.0.0.4", grace.DN(), grace.Password); code != 0 {
		t.Fatalf("grace from the guessing address: %d", code)
	}
}

// TestPushBudget: six binds of a user who denies every push send at most
// max_pushes pushes; the rest are refused without asking Duo at all, with
// their own rule and message, and one alert says so.
func TestPushBudget(t *testing.T) {
	st := newStore(t)
	sf := &budgetSF{verdict: func(failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Message: "Login request denied."}, nil
	}}
	g := startGuarded(t, sf, Guards{Budget: guard.NewPushes(st, "api/ikey", 3, 5, 10*time.Minute)}, nil)
	bob := person(t, "bob")
	var diags []string
	for range 6 {
		code, diag := bindFrom(t, g.addr, "127.0.0.1", bob.DN(), bob.Password)
		if code != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bob: code %d, want 49", code)
		}
		diags = append(diags, diag)
	}
	if calls, sent := sf.counts(); calls != 3 || sent != 3 {
		t.Fatalf("Duo asked %d times, %d pushes sent; want 3 and 3", calls, sent)
	}
	want := []string{failmode.MsgDenied, failmode.MsgDenied, failmode.MsgDenied, msgTooMany, msgTooMany, msgTooMany}
	if fmt.Sprint(diags) != fmt.Sprint(want) {
		t.Fatalf("diagnostics %q, want %q", diags, want)
	}
	if n := count(g.waitEvents(t, 6), failmode.RulePushBudget); n != 3 {
		t.Fatalf("%d binds logged as push_budget, want 3: %v", n, g.rules())
	}
	if n := g.alertCount(); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}
	g.mu.Lock()
	al := g.alerts[0]
	g.mu.Unlock()
	if al.Username != "bob" || al.Server != "vpn" || al.ClientIP != "127.0.0.1" || al.Rule != failmode.RulePushBudget {
		t.Fatalf("alert %+v", al)
	}
	// Passcodes have their own budget: bob can still type one.
	if _, _ = bindFrom(t, g.addr, "127.0.0.1", bob.DN(), bob.Password+",123456"); sf.lastAttempt().Passcode != "123456" {
		t.Fatal("a passcode was refused by the push budget")
	}
	// The push carries the section for pushinfo.
	if got := sf.lastAttempt().Server; got != "vpn" {
		t.Fatalf("attempt server %q, want vpn", got)
	}
}

// TestPushBudgetApprovedResets: a user who approves keeps logging in: an
// approved push gives the budget back.
func TestPushBudgetApprovedResets(t *testing.T) {
	st := newStore(t)
	sf := &budgetSF{verdict: approve}
	g := startGuarded(t, sf, Guards{Budget: guard.NewPushes(st, "api/ikey", 3, 5, 10*time.Minute)}, nil)
	alice := person(t, "alice")
	for i := range 6 {
		if code, _ := bindFrom(t, g.addr, "127.0.0.1", alice.DN(), alice.Password); code != 0 {
			t.Fatalf("approved bind %d refused: %d", i, code)
		}
	}
}

// TestPushBudgetConcurrent: binds racing for the last pushes cannot send
// more than the budget between them.
func TestPushBudgetConcurrent(t *testing.T) {
	st := newStore(t)
	release := make(chan struct{})
	sf := &budgetSF{verdict: func(failmode.Attempt) (failmode.Verdict, error) {
		<-release // every bind has passed the Spent check before any is settled
		return failmode.Verdict{}, nil
	}}
	g := startGuarded(t, sf, Guards{Budget: guard.NewPushes(st, "api/ikey", 3, 5, 10*time.Minute)}, nil)
	bob := person(t, "bob")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { bindFrom(t, g.addr, "127.0.0.1", bob.DN(), bob.Password) })
	}
	waitCalls(t, sf, 8)
	close(release)
	wg.Wait()
	if _, sent := sf.counts(); sent != 3 {
		t.Fatalf("%d pushes sent by 8 concurrent binds, want 3", sent)
	}
}

func waitCalls(t *testing.T, sf *budgetSF, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() bool { calls, _ := sf.counts(); return calls >= n },
		fmt.Sprintf("%d calls of the second factor", n))
}

// TestPushFraudBlocks: a push reported as fraud blocks pushes for the user
// at once (the budget notwithstanding) and alerts.
func TestPushFraudBlocks(t *testing.T) {
	st := newStore(t)
	sf := &budgetSF{verdict: func(failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Fraud: true, Message: "Reported as fraudulent."}, nil
	}}
	g := startGuarded(t, sf, Guards{Budget: guard.NewPushes(st, "api/ikey", 3, 5, 10*time.Minute)}, nil)
	alice := person(t, "alice")
	bindFrom(t, g.addr, "127.0.0.1", alice.DN(), alice.Password)
	if code, diag := bindFrom(t, g.addr, "127.0.0.1", alice.DN(), alice.Password); code != ldap.LDAPResultInvalidCredentials || diag != msgTooMany {
		t.Fatalf("after a fraud report: %d %q, want 49 %q", code, diag, msgTooMany)
	}
	if calls, _ := sf.counts(); calls != 1 {
		t.Fatalf("Duo asked %d times, want 1", calls)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.alerts) == 0 || !g.alerts[0].Fraud || g.alerts[0].Username != "alice" {
		t.Fatalf("alerts %+v, want a fraud alert for alice", g.alerts)
	}
}

// TestBindCache: a second identical bind within the ttl skips Duo but
// not the directory; another address, a wrong password (which evicts) and
// a failmode allow (never remembered) all go to Duo again.
func TestBindCache(t *testing.T) {
	st := newStore(t)
	cache, err := guard.NewCache(st, "vpn", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	down := atomic.Bool{}
	sf := &budgetSF{verdict: func(failmode.Attempt) (failmode.Verdict, error) {
		if down.Load() {
			return failmode.Verdict{}, &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StagePreauth, Detail: "connection refused"}
		}
		return failmode.Verdict{Allowed: true}, nil
	}}
	g := startGuarded(t, sf, Guards{Cache: cache}, nil)
	alice := person(t, "alice")
	bind := func(src, password string, wantCode uint16, wantCalls int, what string) {
		t.Helper()
		binds := g.dir.binds.Load()
		if code, _ := bindFrom(t, g.addr, src, alice.DN(), password); code != wantCode {
			t.Fatalf("%s: code %d, want %d", what, code, wantCode)
		}
		if calls, _ := sf.counts(); calls != wantCalls {
			t.Fatalf("%s: Duo asked %d times in all, want %d", what, calls, wantCalls)
		}
		if g.dir.binds.Load() == binds {
			t.Fatalf("%s: the directory did not check the password", what)
		}
	}
	bind("127.0.0.1", alice.Password, 0, 1, "first bind")
	bind("127.0.0.1", alice.Password, 0, 1, "second bind within the ttl")
	if r := g.waitEvents(t, 2); count(r, failmode.RuleBindCache) != 1 {
		t.Fatalf("rules %v, want the second bind logged as bind_cache", r)
	}
	bind("127.0.0.5", alice.Password, 0, 2, "from another address")
	bind("127.0.0.1", "wrong", ldap.LDAPResultInvalidCredentials, 2, "wrong password")
	bind("127.0.0.1", alice.Password, 0, 3, "after a wrong password (evicted)")
	bind("127.0.0.5", alice.Password, 0, 4, "another address after the eviction")

	// A failmode allow is never remembered.
	grace := person(t, "grace")
	down.Store(true)
	for i := range 2 {
		if code, _ := bindFrom(t, g.addr, "127.0.0.1", grace.DN(), grace.Password); code != 0 {
			t.Fatalf("failmode safe bind %d: %d", i, code)
		}
	}
	if calls, _ := sf.counts(); calls != 6 {
		t.Fatalf("Duo asked %d times in all, want 6: a failmode allow must not be cached", calls)
	}
	down.Store(false)
	bind("127.0.0.1", alice.Password, 0, 6, "alice still cached")
	cache.Clear()
	bind("127.0.0.1", alice.Password, 0, 7, "after Clear")
}
