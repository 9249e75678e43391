package proxy

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/breakglass"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/store"
)

var (
	bgParams = breakglass.Params{Time: 1, MemoryKiB: 64, Threads: 1}
	bgMax    = breakglass.Params{Time: 4, MemoryKiB: 1024, Threads: 2}
)

// glassDuo is a second factor whose answer and known state the test sets:
// down makes it answer as duostate's Gate does while Duo is unreachable.
type glassDuo struct {
	answer atomic.Pointer[failmode.Error] // nil: approve
	down   atomic.Bool
	calls  atomic.Int32
}

func (g *glassDuo) Verify(context.Context, failmode.Attempt) (failmode.Verdict, error) {
	g.calls.Add(1)
	if e := g.answer.Load(); e != nil {
		c := *e
		return failmode.Verdict{}, &c
	}
	return failmode.Verdict{Allowed: true}, nil
}

func (g *glassDuo) outage() {
	g.down.Store(true)
	g.answer.Store(&failmode.Error{Class: failmode.Unreachable, Stage: failmode.StagePreauth, Detail: "known unreachable"})
}

type glassSection struct {
	addr   string
	duo    *glassDuo
	events chan failmode.BindEvent
	codes  string
}

// startGlass runs a section whose break-glass users are alice and adam
// (adam is in the secure group), with codes issued to alice, adam and bob
// (who is not listed).
func startGlass(t *testing.T, mode failmode.Mode) (*glassSection, map[string][]string) {
	t.Helper()
	dir := t.TempDir()
	g := &glassSection{duo: &glassDuo{}, events: make(chan failmode.BindEvent, 16), codes: filepath.Join(dir, "codes.json")}
	st, err := store.Open(store.Options{MaxKeys: 64, UsedFile: filepath.Join(dir, "used")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k, err := breakglass.New(breakglass.Options{Section: "test", CodesFile: g.codes, MaxParams: bgMax, Checks: 1,
		Users: []string{sampledata.PersonDN("alice"), strings.ToUpper(sampledata.PersonDN("adam"))}}, st)
	if err != nil {
		t.Fatal(err)
	}
	issued := map[string][]string{}
	for _, uid := range []string{"alice", "adam", "bob"} {
		if issued[uid], err = breakglass.Issue(g.codes, "test", sampledata.PersonDN(uid), 3, bgParams, bgMax, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	rec := failmode.RecorderFunc(func(e failmode.BindEvent) { g.events <- e })
	g.addr = serveTest(t, Config{Policy: func() failmode.Policy { return failmode.Policy{Mode: mode} },
		SecureGroups: []string{sampledata.GroupDN(sampledata.AdminGroup)}, PasscodeDelimiter: ",",
		BreakGlass: k, DuoUnreachable: g.duo.down.Load}, d, g.duo, rec)
	return g, issued
}

// bind binds as uid with password typed and returns the LDAP result code
// and the bind's event.
func (g *glassSection) bind(t *testing.T, uid, typed string) (uint16, failmode.BindEvent) {
	t.Helper()
	err := dialProxy(t, g.addr).Bind(sampledata.PersonDN(uid), typed)
	code := uint16(ldap.LDAPResultSuccess)
	if err != nil {
		le, ok := err.(*ldap.Error)
		if !ok {
			t.Fatalf("bind: %v", err)
		}
		code = le.ResultCode
	}
	select {
	case ev := <-g.events:
		return code, ev
	case <-time.After(5 * time.Second):
		t.Fatal("no bind event")
	}
	return 0, failmode.BindEvent{}
}

func (g *glassSection) expect(t *testing.T, what, uid, typed string, code uint16, rule failmode.Rule) failmode.BindEvent {
	t.Helper()
	got, ev := g.bind(t, uid, typed)
	if got != code || ev.Rule != rule {
		t.Fatalf("%s: code %d rule %s (%s), want %d %s", what, got, ev.Rule, ev.Msg, code, rule)
	}
	return ev
}

func pw(uid string) string { p, _ := sampledata.Lookup(uid); return p.Password }

// TestBreakGlassSecureSection: in a secure section a listed user gets in
// with a code only while Duo is known unreachable, once per code; never
// while Duo is up or misconfigured, never with a wrong password, another
// user's code, or as a user not listed.
func TestBreakGlassSecureSection(t *testing.T) {
	g, codes := startGlass(t, failmode.Secure)
	const ok, denied = ldap.LDAPResultSuccess, ldap.LDAPResultInvalidCredentials
	alice := codes["alice"]

	// Duo up: refused at once, Duo not asked, the code untouched.
	g.expect(t, "duo ok", "alice", pw("alice")+","+alice[0], denied, failmode.RuleBreakGlassRefused)
	if g.duo.calls.Load() != 0 {
		t.Fatal("a bind with a break-glass code asked Duo")
	}
	g.expect(t, "duo ok, no code", "alice", pw("alice"), ok, failmode.RuleSecondFactor)

	// Duo misconfigured (state down, class misconfigured): never.
	g.duo.down.Store(true)
	g.duo.answer.Store(&failmode.Error{Class: failmode.Misconfigured, Stage: failmode.StagePreauth, Detail: "401"})
	g.expect(t, "misconfigured", "alice", pw("alice")+","+alice[0], denied, failmode.RuleMisconfigured)
	// Duo lost after preauth: degraded, never.
	g.duo.answer.Store(&failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageAuth, Detail: "reset"})
	g.expect(t, "degraded", "alice", pw("alice")+","+alice[0], denied, failmode.RuleDegraded)
	// One unreachable call while the state is not (yet) unreachable: never.
	g.duo.down.Store(false)
	g.duo.answer.Store(&failmode.Error{Class: failmode.Unreachable, Stage: failmode.StagePreauth, Detail: "refused"})
	g.expect(t, "state not unreachable", "alice", pw("alice")+","+alice[0], denied, failmode.RuleBreakGlassRefused)

	g.duo.outage()
	g.expect(t, "outage, no code", "alice", pw("alice"), denied, failmode.RuleFailmodeDeny)
	g.expect(t, "wrong password", "alice", "wrong,"+alice[0], denied, failmode.RuleInvalidCredentials)
	g.expect(t, "another user's code", "alice", pw("alice")+","+codes["adam"][0], denied, failmode.RuleBreakGlassInvalid)
	g.expect(t, "not listed", "bob", pw("bob")+","+codes["bob"][0], denied, failmode.RuleBreakGlassInvalid)
	g.expect(t, "not listed, a listed user's code", "bob", pw("bob")+","+alice[1], denied, failmode.RuleBreakGlassInvalid)
	g.expect(t, "made-up code", "alice", pw("alice")+",0000-0000-0000-0000-0000-0000", denied, failmode.RuleBreakGlassInvalid)

	ev := g.expect(t, "a code", "alice", pw("alice")+","+alice[0], ok, failmode.RuleBreakGlass)
	if ev.Status != failmode.StatusAllow || ev.DN != sampledata.PersonDN("alice") || ev.ClientIP == "" || ev.Factor != factorBreakGlass {
		t.Fatalf("event %+v", ev)
	}
	if strings.Contains(ev.Msg, alice[0]) {
		t.Fatal("the event carries the code")
	}
	g.expect(t, "the same code again", "alice", pw("alice")+","+alice[0], denied, failmode.RuleBreakGlassInvalid)
	// Typed without dashes, in lower case: still a code.
	g.expect(t, "ungrouped", "alice", pw("alice")+","+strings.ToLower(strings.ReplaceAll(alice[1], "-", "")), ok, failmode.RuleBreakGlass)
	// The admin, a secure-group member, too; and the codes refused above
	// were not spent by the refusals.
	g.expect(t, "listed admin", "adam", pw("adam")+","+codes["adam"][0], ok, failmode.RuleBreakGlass)
	g.expect(t, "a code refused while duo was up", "alice", pw("alice")+","+alice[2], ok, failmode.RuleBreakGlass)

	// Duo back: the admin's remaining codes are refused again.
	g.duo.down.Store(false)
	g.duo.answer.Store(nil)
	g.expect(t, "duo back", "adam", pw("adam")+","+codes["adam"][1], denied, failmode.RuleBreakGlassRefused)
}

// TestBreakGlassSafeSection: in a safe section failmode already lets
// ordinary users in during an outage (their code is not spent); a
// secure-group member, whom failmode denies, gets in with a code.
func TestBreakGlassSafeSection(t *testing.T) {
	g, codes := startGlass(t, failmode.Safe)
	g.duo.outage()
	g.expect(t, "ordinary user", "alice", pw("alice")+","+codes["alice"][0], ldap.LDAPResultSuccess, failmode.RuleFailmodeSafe)
	g.expect(t, "secure group, no code", "adam", pw("adam"), ldap.LDAPResultInvalidCredentials, failmode.RuleSecureGroup)
	g.expect(t, "secure group with a code", "adam", pw("adam")+","+codes["adam"][0], ldap.LDAPResultSuccess, failmode.RuleBreakGlass)
	g.duo.down.Store(false)
	g.duo.answer.Store(nil)
	g.expect(t, "the ordinary user's code was not spent", "alice", pw("alice")+","+codes["alice"][0], ldap.LDAPResultInvalidCredentials, failmode.RuleBreakGlassRefused)
}

// TestBreakGlassOffLeavesPasswordWhole: a section without break-glass
// sends a code-shaped suffix to the directory as part of the password.
func TestBreakGlassOffLeavesPasswordWhole(t *testing.T) {
	events := make(chan failmode.BindEvent, 1)
	addr := startProxy(t, fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, nil
	}}, events)
	err := dialProxy(t, addr).Bind(sampledata.PersonDN("alice"), pw("alice")+",0123-4567-89AB-CDEF-GHJK-MNPQ")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("got %v, want the directory's invalidCredentials", err)
	}
	if ev := <-events; ev.Rule != failmode.RuleInvalidCredentials {
		t.Fatalf("event %+v", ev)
	}
}

func TestSplitBreakGlass(t *testing.T) {
	const code = "0123-4567-89AB-CDEF-GHJK-MNPQ"
	for _, tt := range []struct {
		typed, delim, pw, code string
		ok                     bool
	}{
		{"secret," + code, ",", "secret", "0123456789ABCDEFGHJKMNPQ", true},
		{"pa,ss," + code, ",", "pa,ss", "0123456789ABCDEFGHJKMNPQ", true},
		{"secret," + code + ",push", ",", "secret," + code + ",push", "", false},
		{"secret," + code, "", "secret," + code, "", false},
		{"secret::" + code, "::", "secret", "0123456789ABCDEFGHJKMNPQ", true},
		{"secret,123456", ",", "secret,123456", "", false},
		{code, ",", code, "", false},
		{"," + code, ",", "", "0123456789ABCDEFGHJKMNPQ", true},
	} {
		pw, bg, ok := splitBreakGlass(tt.typed, tt.delim, breakglass.ParseCode)
		if pw != tt.pw || bg != tt.code || ok != tt.ok {
			t.Errorf("splitBreakGlass(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.typed, tt.delim, pw, bg, ok, tt.pw, tt.code, tt.ok)
		}
	}
}

// FuzzSplitBreakGlass: whatever is typed, the split either leaves the
// password whole, or cuts it at the last delimiter into a password and a
// tail that reads as the canonical code returned; never a panic.
func FuzzSplitBreakGlass(f *testing.F) {
	for _, s := range []string{"secret,0123-4567-89AB-CDEF-GHJK-MNPQ", "a,b,c", ",", "x,0123456789abcdefghjkmnpq", "p,o1il o1il-o1il-o1il-o1il-o1il"} {
		f.Add(s, ",")
	}
	f.Add("secret::0123456789ABCDEFGHJKMNPQ", "::")
	f.Fuzz(func(t *testing.T, typed, delim string) {
		pw, code, ok := splitBreakGlass(typed, delim, breakglass.ParseCode)
		if !ok {
			if pw != typed || code != "" {
				t.Fatalf("no code, but %q, %q", pw, code)
			}
			return
		}
		i := strings.LastIndex(typed, delim)
		if delim == "" || i < 0 || pw != typed[:i] {
			t.Fatalf("%q split at the wrong place: %q", typed, pw)
		}
		if c, ok := breakglass.ParseCode(typed[i+len(delim):]); !ok || c != code || len(code) != breakglass.CodeLen {
			t.Fatalf("%q: code %q is not its tail's canonical form", typed, code)
		}
	})
}
