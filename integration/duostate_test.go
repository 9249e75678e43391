package integration

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// These tests drive faults where Duo's signed check and its logins disagree,
// and a Duo that is slow but works. A state wrongly "unreachable" lets every
// safe-section user in on the password alone, so each test binds as bob
// (whose push the simulator always denies) in a safe section: any bind that
// succeeds is an MFA bypass.

// maxDuoStateChanges is the documented bound on duo_state announcements in
// one check-ok-but-preauth-fails episode: ok → unreachable (traffic),
// unreachable → degraded (the probe contradicts it), degraded → ok (a clean
// window after the fault ends).
const maxDuoStateChanges = 3

// bindWithin binds on a fresh connection whose client timeout is timeout, and
// returns the result instead of failing the test, so that it can run in
// goroutines. A dial failure is returned as is (it is not an LDAP result).
func (e *env) bindWithin(sectionName, name, password string, timeout time.Duration) error {
	conn, err := ldap.DialURL("ldap://"+e.addr[sectionName], ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return fmt.Errorf("dial %s: %w", sectionName, err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	_, err = conn.SimpleBind(&ldap.SimpleBindRequest{Username: name, Password: password})
	return err
}

// duoStateNotices returns the duo_state records of the auth log, in order.
func (e *env) duoStateNotices() []string {
	e.t.Helper()
	var out []string
	for _, ev := range e.authEvents() {
		if ev["event"] == "duo_state" {
			msg, _ := ev["msg"].(string)
			out = append(out, msg)
		}
	}
	return out
}

// noneUnreachable fails the test if any announced change entered unreachable.
func (e *env) noneUnreachable() {
	e.t.Helper()
	for _, n := range e.duoStateNotices() {
		if strings.Contains(n, "-> unreachable") {
			e.t.Errorf("the state became unreachable although logins work: %q", n)
		}
	}
}

// failmodeAllows counts the auth-log records of binds failmode let in.
func (e *env) failmodeAllows(username string) int {
	e.t.Helper()
	n := 0
	for _, ev := range e.authEvents() {
		if ev["rule"] == "failmode_safe" && ev["username"] == username {
			n++
		}
	}
	return n
}

// bindUntil binds as p on section every tick until done reports true (at most
// limit), checking each result with check.
func (e *env) bindUntil(sectionName string, p sampledata.Person, limit time.Duration, done func() bool, check func(i int, err error)) int {
	e.t.Helper()
	tick := time.NewTicker(200 * time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	deadline := time.Now().Add(limit)
	i := 0
	for ; !done(); i++ {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up after %s and %d binds", limit, i)
		}
		check(i, e.bindWithin(sectionName, p.DN(), p.Password, 10*time.Second))
		<-tick.C
	}
	return i
}

// TestDuoStateCheckHangsWhileLoginsWork: only /auth/v2/check hangs; preauth
// and auth answer. Probes keep timing out, but logins prove Duo answers: the
// state never becomes unreachable and bob is never let in.
func TestDuoStateCheckHangsWhileLoginsWork(t *testing.T) {
	e := startParallel(t, []section{safeSection}, withDuo("probe_interval", "1s"))
	bob := person(t, "bob")
	e.waitDuoState("safe", "ok")
	checks := e.duo.Calls().Check
	if err := e.duo.SetFault(duosim.FaultCheckHang); err != nil {
		t.Fatal(err)
	}
	// Five checks arriving means at least four probes ran into their
	// deadline (duo.timeout, 1s here) while bob kept binding.
	n := e.bindUntil("safe", bob, 30*time.Second, func() bool { return e.duo.Calls().Check >= checks+5 }, func(i int, err error) {
		if code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bind %d: %v; want Duo's denial (49): the check hanging must not open the safe section", i, err)
		}
		if st := e.duoState("safe"); st == "unreachable" {
			t.Fatalf("bind %d: state unreachable while preauth and auth answer", i)
		}
	})
	t.Logf("%d binds across %d probes", n, e.duo.Calls().Check-checks)
	e.noneUnreachable()
	if got := e.failmodeAllows("bob"); got != 0 {
		t.Fatalf("%d failmode allows for bob", got)
	}
}

// TestDuoStateSlowDuoIsNotAnOutage: every call takes 6s, within duo.timeout
// (10s). Preauth and auth answer, the probe too: the state never becomes
// unreachable and bob is never let in.
func TestDuoStateSlowDuoIsNotAnOutage(t *testing.T) {
	const slow = 6 * time.Second
	e := startParallel(t, []section{safeSection}, withDuo("probe_interval", "1s"),
		withDuo("timeout", "10s"), withDuo("push_timeout", "20s"))
	bob := person(t, "bob")
	e.waitDuoState("safe", "ok")
	e.duo.SetSlow(slow)
	checks := e.duo.Calls().Check
	if err := e.duo.SetFault(duosim.FaultSlow); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wave := func(n int) {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// preauth + auth take 2 × 6s; give the client room.
				err := e.bindWithin("safe", bob.DN(), bob.Password, 30*time.Second)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}()
		}
	}
	wave(2)
	// A second check arriving means the first slow probe has ended: the
	// old 5s probe deadline would have declared Duo unreachable by now.
	testutil.WaitFor(t, 20*time.Second, func() bool { return e.duo.Calls().Check >= checks+2 }, "a slow probe to finish")
	wave(2)
	wg.Wait()
	for i, err := range errs {
		if code(err) != ldap.LDAPResultInvalidCredentials {
			t.Errorf("bind %d: %v; want Duo's denial (49) from a slow but working Duo", i, err)
		}
	}
	if st := e.duoState("safe"); st == "unreachable" {
		t.Errorf("state unreachable with a slow but working Duo")
	}
	e.noneUnreachable()
	if got := e.failmodeAllows("bob"); got != 0 {
		t.Errorf("%d failmode allows for bob", got)
	}
}

// TestDuoStateCheckOKPreauthFailsDoesNotFlap: the signed check succeeds while
// preauth answers 503. Binds fail open per bind (that is failmode safe for a
// 5xx), but the state settles: the number of announced changes stays within
// the documented bound and does not grow with the probes.
func TestDuoStateCheckOKPreauthFailsDoesNotFlap(t *testing.T) {
	e := startParallel(t, []section{safeSection}, withDuo("probe_interval", "1s"))
	bob := person(t, "bob")
	e.waitDuoState("safe", "ok")
	checks := e.duo.Calls().Check
	if err := e.duo.SetFault(duosim.FaultPreauthError); err != nil {
		t.Fatal(err)
	}
	either := func(int, error) {} // allowed by failmode or denied: both are right here
	e.bindUntil("safe", bob, 30*time.Second, func() bool { return e.duo.Calls().Check >= checks+3 }, either)
	mid := len(e.duoStateNotices())
	e.bindUntil("safe", bob, 30*time.Second, func() bool { return e.duo.Calls().Check >= checks+7 }, either)
	notices := e.duoStateNotices()
	t.Logf("duo_state notices: %q", notices)
	if len(notices) > maxDuoStateChanges {
		t.Fatalf("%d duo_state changes over %d probes, want at most %d: %q",
			len(notices), e.duo.Calls().Check-checks, maxDuoStateChanges, notices)
	}
	if len(notices) != mid {
		t.Fatalf("changes kept coming with the probes: %d after 3 probes, %d after 7: %q", mid, len(notices), notices)
	}
	if len(notices) == 0 || !strings.Contains(notices[len(notices)-1], "-> degraded") {
		t.Errorf("want the episode to settle in degraded (Duo answers, logins fail): %q", notices)
	}
}
