package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestBindOutcomes covers the answers Duo gives when it is fine.
func TestBindOutcomes(t *testing.T) {
	e := start(t, []section{secureSection})
	tests := []struct {
		name     string
		uid      string
		password string // appended to the person's password
		wantCode int
		wantDiag string
		wantAuth int // /auth calls expected
	}{
		{"push approved", "alice", "", 0, "", 1},
		{"push denied", "bob", "", ldap.LDAPResultInvalidCredentials, "second factor denied", 1},
		{"passcode accepted", "carol", ",123456", 0, "", 1},
		{"eight digit passcode accepted", "carol", ",7654321", 0, "", 1},
		{"wrong passcode", "carol", ",000000", ldap.LDAPResultInvalidCredentials, "second factor denied", 1},
		{"no push device", "carol", "", ldap.LDAPResultInvalidCredentials, "second factor denied", 1},
		{"not enrolled", "dave", "", ldap.LDAPResultInvalidCredentials, "second factor denied", 0},
		{"bypass", "erin", "", 0, "", 0},
		{"password containing the delimiter", "frank", "", 0, "", 1},
		{"delimiter password with explicit factor", "frank", ",push", 0, "", 1},
		{"explicit phone factor", "alice", ",phone", 0, "", 1},
		{"privileged user approved", "adam", "", 0, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.duo.ResetCalls()
			p := person(t, tt.uid)
			err := e.bind("secure", p.DN(), p.Password+tt.password)
			if code(err) != tt.wantCode {
				t.Fatalf("bind: got %v (code %d), want code %d", err, code(err), tt.wantCode)
			}
			if tt.wantDiag != "" && !strings.Contains(err.Error(), tt.wantDiag) {
				t.Errorf("diagnostic %q does not say %q", err, tt.wantDiag)
			}
			calls := e.duo.Calls()
			if calls.Preauth != 1 || calls.Auth != tt.wantAuth {
				t.Errorf("duo calls %+v, want 1 preauth and %d auth", calls, tt.wantAuth)
			}
		})
	}
	// A preauth allow is Duo's bypass, and the log says so rather than
	// claiming a second factor was approved.
	var erinRule, erinMsg string
	testutil.WaitFor(t, 5*time.Second, func() bool {
		for _, ev := range e.authEvents() {
			if ev["username"] == "erin" && ev["status"] == "Allow" {
				erinRule, _ = ev["rule"].(string)
				erinMsg, _ = ev["msg"].(string)
				return true
			}
		}
		return false
	}, "erin's auth event")
	if erinRule != "bypass" || erinMsg != "Duo bypass: no second factor asked" {
		t.Errorf("erin (Duo bypass): rule %q msg %q, want bypass", erinRule, erinMsg)
	}
	// The factor and passcode reach Duo as chosen; the passcode is never logged by the simulator.
	e.duo.ResetCalls()
	carol := person(t, "carol")
	if err := e.bind("secure", carol.DN(), carol.Password+",123456"); err != nil {
		t.Fatal(err)
	}
	var sawPasscode bool
	for _, r := range e.duo.Requests() {
		if r.Path == "/auth/v2/auth" && r.Factor == "passcode" && r.Username == "carol" && r.IPAddr == "127.0.0.1" {
			sawPasscode = true
		}
	}
	if !sawPasscode {
		t.Errorf("no passcode auth for carol from 127.0.0.1 in %+v", e.duo.Requests())
	}
}

// TestPrimaryFailuresNeverReachDuo: a wrong or empty password, an unknown
// name, anonymous and SASL binds are refused before any Duo call.
func TestPrimaryFailuresNeverReachDuo(t *testing.T) {
	e := start(t, []section{secureSection, safeSection})
	alice := person(t, "alice")
	tests := []struct {
		name, dn, password string
		wantCode           int
	}{
		{"wrong password", alice.DN(), "nope", ldap.LDAPResultInvalidCredentials},
		{"wrong password with passcode", alice.DN(), "nope,123456", ldap.LDAPResultInvalidCredentials},
		{"empty password", alice.DN(), "", ldap.LDAPResultInvalidCredentials},
		{"only a passcode", alice.DN(), ",123456", ldap.LDAPResultInvalidCredentials},
		{"anonymous", "", "", ldap.LDAPResultInvalidCredentials},
		{"unknown DN", sampledata.PersonDN("mallory"), "x", ldap.LDAPResultInvalidCredentials},
		{"unknown name", "mallory", "x", ldap.LDAPResultInvalidCredentials},
		{"name with wrong password", "alice", "nope", ldap.LDAPResultInvalidCredentials},
	}
	for _, s := range []string{"secure", "safe"} {
		for _, tt := range tests {
			t.Run(s+"/"+tt.name, func(t *testing.T) {
				e.duo.ResetCalls()
				err := e.bind(s, tt.dn, tt.password)
				if code(err) != tt.wantCode {
					t.Fatalf("got %v, want code %d", err, tt.wantCode)
				}
				if c := e.duo.Calls(); c.Preauth+c.Auth != 0 {
					t.Fatalf("a primary failure reached Duo: %+v", c)
				}
			})
		}
		t.Run(s+"/sasl", func(t *testing.T) {
			e.duo.ResetCalls()
			conn := e.dial(s)
			err := conn.ExternalBind()
			if code(err) != ldap.LDAPResultAuthMethodNotSupported {
				t.Fatalf("SASL EXTERNAL: got %v, want authMethodNotSupported", err)
			}
			// The connection survives and a simple bind still works.
			if err := conn.Bind(alice.DN(), alice.Password); err != nil {
				t.Fatalf("simple bind after SASL: %v", err)
			}
		})
	}
}

// TestNonDNNames resolves uid, mail and DOMAIN\uid through the lookup account.
func TestNonDNNames(t *testing.T) {
	e := start(t, []section{secureSection, {Name: "nolookup", Failmode: "secure", NoLookupAccount: true}})
	alice := person(t, "alice")
	for _, name := range []string{"alice", "alice@example.com", `EXAMPLE\alice`} {
		e.duo.ResetCalls()
		if err := e.bind("secure", name, alice.Password); err != nil {
			t.Errorf("bind as %q: %v", name, err)
		}
		asked := ""
		for _, r := range e.duo.Requests() {
			if r.Path == "/auth/v2/preauth" {
				asked = r.Username
			}
		}
		if asked != "alice" {
			t.Errorf("bind as %q: Duo preauth was for %q, want alice", name, asked)
		}
	}
	// Without a lookup account, DN binds still work and read their own entry.
	if err := e.bind("nolookup", alice.DN(), alice.Password); err != nil {
		t.Errorf("DN bind without lookup account: %v", err)
	}
	bob := person(t, "bob")
	if err := e.bind("nolookup", bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Errorf("bob without lookup account: %v, want denied", err)
	}
}

// TestFailmodeTable drives every row of the failmode table through both
// failmodes, for an ordinary user and a secure-group member.
func TestFailmodeTable(t *testing.T) {
	// Every row binds the same people; auth-stage faults spend their push
	// budget (a push may have reached them), which this table is not about.
	e := startParallel(t, []section{secureSection, safeSection}, withDuo("max_pushes", 100)) // waits out Duo timeouts
	const allow, deny = 0, ldap.LDAPResultInvalidCredentials
	tests := []struct {
		fault duosim.Fault
		// want[section][user]
		safeUser, safeAdmin, secureUser, secureAdmin int
		msg                                          string // expected in the safe user's auth event
	}{
		{duosim.FaultNone, allow, allow, allow, allow, "second factor approved"},
		// With the state machine, some of the row's binds may be decided
		// after Duo became known-down ("duo unreachable: known unreachable
		// since ...: connection refused"), so only the prefix is fixed.
		{duosim.FaultRefuse, allow, deny, deny, deny, "failmode safe: allowed without second factor (duo unreachable: "},
		{duosim.FaultHang, allow, deny, deny, deny, "failmode safe: allowed without second factor (duo unreachable"},
		{duosim.FaultServerError, allow, deny, deny, deny, "failmode safe: allowed without second factor (duo unreachable"},
		{duosim.FaultUnauthorized, deny, deny, deny, deny, "misconfigured"},
		{duosim.FaultBadCert, deny, deny, deny, deny, "untrusted"},
		{duosim.FaultRateLimit, deny, deny, deny, deny, "degraded"},
		{duosim.FaultAuthHang, deny, deny, deny, deny, "degraded"},
		{duosim.FaultAuthError, deny, deny, deny, deny, "degraded"},
	}
	alice, adam := person(t, "alice"), person(t, "adam")
	for _, tt := range tests {
		name := string(tt.fault)
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			// Each row starts with Duo known to be fine: the state machine
			// would otherwise carry the previous row's outage into this one.
			e.healDuo()
			if err := e.duo.SetFault(tt.fault); err != nil {
				t.Fatal(err)
			}
			type bindCase struct {
				section string
				p       sampledata.Person
				want    int
			}
			cases := []bindCase{
				{"safe", alice, tt.safeUser}, {"safe", adam, tt.safeAdmin},
				{"secure", alice, tt.secureUser}, {"secure", adam, tt.secureAdmin},
			}
			// The four binds run at once: hangs then cost one timeout, not four.
			errs := make([]error, len(cases))
			var wg sync.WaitGroup
			for i, c := range cases {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = e.bind(c.section, c.p.DN(), c.p.Password)
				}()
			}
			wg.Wait()
			for i, c := range cases {
				if code(errs[i]) != c.want {
					t.Errorf("%s/%s: got %v, want code %d", c.section, c.p.UID, errs[i], c.want)
				}
				if c.want != allow && errs[i] != nil && !strings.Contains(errs[i].Error(), "second factor") {
					t.Errorf("%s/%s: diagnostic %q should tell the user about the second factor", c.section, c.p.UID, errs[i])
				}
			}
			// The event is written just after the response: wait for it.
			testutil.WaitFor(t, 5*time.Second, func() bool {
				for _, ev := range e.authEvents() {
					if ev["server_section"] == "safe" && ev["username"] == "alice" && strings.Contains(ev["msg"].(string), tt.msg) {
						return true
					}
				}
				return false
			}, fmt.Sprintf("an auth event for safe/alice saying %q", tt.msg))
		})
	}
}

// TestExemptions: exempt DNs skip Duo; exempt_primary_bind skips only the
// first bind and never a secure-group member; a second bind is always gated.
func TestExemptions(t *testing.T) {
	primary := section{Name: "primary", Failmode: "secure", ExemptPrimaryBind: true, SecureGroups: []string{adminsDN}}
	e := start(t, []section{secureSection, safeSection, primary})
	app, _ := sampledata.LookupService("app")
	alice, bob, adam := person(t, "alice"), person(t, "bob"), person(t, "adam")

	t.Run("exempt DN needs no Duo even when Duo is down", func(t *testing.T) {
		if err := e.duo.SetFault(duosim.FaultUnauthorized); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.healDuo)
		e.duo.ResetCalls()
		if err := e.bind("safe", appDN, app.Password); err != nil {
			t.Fatalf("exempt bind: %v", err)
		}
		if err := e.bind("safe", appDN, "wrong"); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("exempt DN with a wrong password: %v", err)
		}
		if c := e.duo.Calls(); c.Preauth != 0 {
			t.Fatalf("exempt DN reached Duo: %+v", c)
		}
	})
	t.Run("not exempt in another section", func(t *testing.T) {
		if err := e.bind("secure", appDN, app.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("app in the secure section: %v, want denied (no Duo username)", err)
		}
	})
	t.Run("second bind after an exempt bind is gated", func(t *testing.T) {
		e.duo.ResetCalls()
		conn := e.dial("safe")
		if err := conn.Bind(appDN, app.Password); err != nil {
			t.Fatal(err)
		}
		if err := conn.Bind(bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bob after app: %v, want denied by Duo", err)
		}
		if c := e.duo.Calls(); c.Auth != 1 {
			t.Fatalf("bob's bind was not gated: %+v", c)
		}
	})
	t.Run("exempt_primary_bind", func(t *testing.T) {
		e.duo.ResetCalls()
		conn := e.dial("primary")
		if err := conn.Bind(bob.DN(), bob.Password); err != nil {
			t.Fatalf("first bind should be exempt: %v", err)
		}
		if c := e.duo.Calls(); c.Preauth != 0 {
			t.Fatalf("first bind reached Duo: %+v", c)
		}
		if err := conn.Bind(bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("second bind: %v, want gated and denied", err)
		}
		if err := conn.Bind(alice.DN(), alice.Password); err != nil {
			t.Fatalf("third bind (approved): %v", err)
		}
	})
	t.Run("exempt_primary_bind never exempts a secure group", func(t *testing.T) {
		e.duo.ResetCalls()
		if err := e.bind("primary", adam.DN(), adam.Password); err != nil {
			t.Fatal(err)
		}
		if c := e.duo.Calls(); c.Auth != 1 {
			t.Fatalf("adam's first bind skipped Duo: %+v", c)
		}
	})
}

// TestAnonymous: refused by default, relayed as anonymous when allowed.
func TestAnonymous(t *testing.T) {
	e := start(t, []section{secureSection, {Name: "anon", Failmode: "secure", AllowAnonymous: true}})
	conn := e.dial("anon")
	if err := conn.UnauthenticatedBind(""); err != nil {
		t.Fatalf("anonymous bind on an allowing section: %v", err)
	}
	// The search is relayed as anonymous: slapd's ACL hides ou=people from
	// anonymous users, so the answer is slapd's noSuchObject, not ldapgate's
	// insufficientAccessRights.
	_, err := conn.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=*)", nil, nil))
	if code(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("anonymous search: %v, want the directory's noSuchObject", err)
	}
	// The base object is readable by anyone in this directory? No: assert only what
	// the relay guarantees — a second anonymous bind keeps working.
	if err := conn.UnauthenticatedBind(""); err != nil {
		t.Fatalf("second anonymous bind: %v", err)
	}
	if err := e.bind("anon", person(t, "alice").DN(), ""); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("empty password with a name must still be refused: %v", err)
	}

	// A failed bind leaves the connection anonymous (RFC 4511 §4.2.1): after
	// alice, a refused bind must not leave her identity on the connection,
	// whether it failed at the directory or before reaching it.
	alice := person(t, "alice")
	people := ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=*)", []string{"uid"}, nil)
	for _, failing := range []struct{ name, password string }{
		{"wrong password", "wrong"},
		{"empty password", ""},
		{"unknown user", "x"},
	} {
		c := e.dial("anon")
		if err := c.Bind(alice.DN(), alice.Password); err != nil {
			t.Fatal(err)
		}
		if res, err := c.Search(people); err != nil || len(res.Entries) != len(sampledata.People) {
			t.Fatalf("alice's search: %v", err)
		}
		dn := alice.DN()
		if failing.name == "unknown user" {
			dn = "mallory"
		}
		_, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: failing.password, AllowEmptyPassword: true})
		if code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("%s: %v", failing.name, err)
		}
		if _, err := c.Search(people); code(err) != ldap.LDAPResultNoSuchObject {
			t.Fatalf("after a failed bind (%s) the search must run as anonymous, got %v", failing.name, err)
		}
	}
	if err := e.bind("secure", "", ""); code(err) != ldap.LDAPResultInvalidCredentials {
		t.Fatalf("anonymous on a default section: %v", err)
	}
	// Allowed and refused anonymous binds are told apart in the auth log.
	rules := map[string]map[string]bool{}
	testutil.WaitFor(t, 5*time.Second, func() bool {
		rules = map[string]map[string]bool{}
		for _, ev := range e.authEvents() {
			sec, _ := ev["server_section"].(string)
			if rules[sec] == nil {
				rules[sec] = map[string]bool{}
			}
			rule, _ := ev["rule"].(string)
			rules[sec][rule+"/"+fmt.Sprint(ev["status"])] = true
		}
		return rules["secure"]["anonymous_refused/Reject"]
	}, "the refused anonymous bind's event")
	if !rules["anon"]["anonymous/Allow"] || rules["anon"]["anonymous_refused/Reject"] || rules["secure"]["anonymous/Allow"] {
		t.Errorf("anonymous outcomes in the auth log: %v", rules)
	}
}
