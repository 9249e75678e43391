package integration

import (
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// Measured with this harness: ldapgate holds 16 descriptors at idle with
// one section, and about 3.5 per bind in flight (client, directory, Duo),
// peaking at 236 for 64 concurrent binds without a limit. 64 leaves room
// to start and to serve a few binds at a time, and none for a flood.
const (
	localFaultNoFile = 64
	floodBinds       = 64 // concurrent binds per round
	floodRounds      = 8
)

// sectionDuo is the part of /status that shows whether the Duo state moved.
type sectionDuo struct {
	State string    `json:"duo_state"`
	Since time.Time `json:"duo_since"`
}

func (e *env) sectionDuo(name string) sectionDuo {
	e.t.Helper()
	var doc struct {
		Sections []struct {
			Name string `json:"name"`
			sectionDuo
		} `json:"sections"`
	}
	e.getJSON("/status", &doc)
	for _, s := range doc.Sections {
		if s.Name == name {
			return s.sectionDuo
		}
	}
	e.t.Fatalf("no section %s in /status", name)
	return sectionDuo{}
}

// tryBind binds on a fresh connection and returns the LDAP result code, or
// -1 with the error when the exchange itself failed. It never touches t, so
// flood goroutines can call it.
func tryBind(addr, name, password string) (int, error) {
	conn, err := ldap.DialURL("ldap://"+addr, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	conn.SetTimeout(3 * pushTimeout)
	_, err = conn.SimpleBind(&ldap.SimpleBindRequest{Username: name, Password: password})
	if c := code(err); c >= 0 {
		return c, nil
	}
	return -1, err
}

// exhaustAccept opens more idle connections to the safe section than
// ldapgate has descriptors, waits until it holds all it may (so its next
// accept fails with EMFILE: gldap logs nothing, but retries), then closes
// them: the listener must survive that.
func (e *env) exhaustAccept() {
	e.t.Helper()
	var hogs []net.Conn
	defer func() {
		for _, c := range hogs {
			_ = c.Close()
		}
	}()
	for range 2 * localFaultNoFile {
		c, err := net.DialTimeout("tcp", e.addr["safe"], 5*time.Second)
		if err != nil {
			e.t.Fatalf("opening idle connections: %v", err)
		}
		hogs = append(hogs, c)
	}
	testutil.WaitFor(e.t, 10*time.Second, func() bool { return e.openFDs() >= localFaultNoFile }, "ldapgate to hold every descriptor it may")
}

// TestLocalFaultsNeverFailOpen runs ldapgate out of file descriptors with a
// flood of binds to a safe section by bob, whose push Duo always denies.
// Every dial to Duo may then fail with EMFILE: that is ldapgate's fault,
// not Duo's, so no bind may be allowed, failmode must never decide, and the
// integration's Duo state must not move. Afterwards ldapgate still serves.
func TestLocalFaultsNeverFailOpen(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("prlimit (util-linux) runs ldapgate under a descriptor limit and is not installed: run make test, which installs it")
	}
	sec := safeSection
	// At this descriptor limit the derived max_connections is 1, which would
	// refuse the flood before it runs the process out of descriptors: the
	// point here is what happens when it does.
	sec.MaxConnections = 1000
	sec.Extra = map[string]any{"max_connections_per_ip": 1000}
	// Over HTTP/1.1 every call to Duo dials, which is where the fault
	// meets Duo; over HTTP/2 the calls share a connection and dial rarely.
	// A push budget would keep most of the flood away from Duo (bob's
	// pushes are denied, and denied pushes count): lift it, so that every
	// bind asks Duo while descriptors run out.
	e := start(t, []section{sec}, withNoFile(localFaultNoFile), withDuoHTTP1(), withDuo("max_pushes", config.MaxMaxPushes))
	bob, alice := person(t, "bob"), person(t, "alice")
	e.waitDuoState("safe", "ok")
	before := e.sectionDuo("safe")
	idle := e.openFDs()
	if idle > localFaultNoFile/2 {
		t.Fatalf("ldapgate holds %d descriptors at idle; raise localFaultNoFile (%d) so the flood, not start-up, exhausts them", idle, localFaultNoFile)
	}

	var (
		mu      sync.Mutex
		results = map[int]int{} // LDAP result code → binds
		errs    = map[string]int{}
		allowed int
	)
	for round := range floodRounds {
		if round%2 == 1 {
			e.exhaustAccept()
		}
		var wg sync.WaitGroup
		for range floodBinds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := tryBind(e.addr["safe"], bob.DN(), bob.Password)
				mu.Lock()
				defer mu.Unlock()
				results[c]++
				if c == ldap.LDAPResultSuccess {
					allowed++
				}
				if err != nil {
					errs[err.Error()]++
				}
			}()
		}
		wg.Wait()
	}
	t.Logf("limit %d, %d at idle; %d binds by bob: result codes %v; exchange errors %v",
		localFaultNoFile, idle, floodRounds*floodBinds, results, errs)

	// The flood must really have run ldapgate out of descriptors, or this
	// test proves nothing.
	out := e.stderr.String()
	if !strings.Contains(out, "too many open files") {
		t.Errorf("ldapgate never ran out of descriptors; lower localFaultNoFile")
	}
	if allowed > 0 {
		t.Errorf("%d of %d binds by bob (push always denied) were allowed while ldapgate was out of descriptors", allowed, floodRounds*floodBinds)
	}
	var bad []string
	byRule := map[string]int{}
	for _, ev := range e.authEvents() {
		byRule[fmt.Sprint(ev["rule"])]++
		if ev["rule"] == "failmode_safe" || ev["status"] == "Allow" {
			bad = append(bad, fmt.Sprintf("%v/%v: %v", ev["username"], ev["rule"], ev["msg"]))
		}
	}
	t.Logf("auth log rules: %v", byRule)
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("the auth log has %d allowing or failmode events, e.g. %s", len(bad), bad[0])
	}
	// Some binds must have met the fault at Duo, not only at the directory
	// or the listener, or the classifier was never put to the test.
	if byRule["local_error"] == 0 && len(bad) == 0 {
		t.Errorf("no bind met a local fault at Duo; lower localFaultNoFile or raise floodBinds")
	}
	if after := e.sectionDuo("safe"); after != before {
		t.Errorf("the Duo state moved during the flood: %+v, then %+v", before, after)
	}

	// Once the flood has drained, ldapgate serves again. It may keep what
	// is bounded by itself: up to 16 idle HTTP/1.1 connections to Duo and
	// the lookup pool's connections; a leak would be hundreds.
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.openFDs() <= idle+floodBinds/2 }, "ldapgate to release the flood's descriptors")
	if c, err := tryBind(e.addr["safe"], alice.DN(), alice.Password); c != ldap.LDAPResultSuccess {
		t.Fatalf("alice after the flood: code %d, %v", c, err)
	}
	if st := e.duoState("safe"); st != "ok" {
		t.Errorf("duo state after the flood: %s", st)
	}
}
