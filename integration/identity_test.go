package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// The identity sections: one whose directory has a lookup account, one
// whose directory has none (lookups then run as the user who just bound).
var (
	lookupSection   = section{Name: "lookup", Failmode: "secure"}
	noLookupSection = section{Name: "nolookup", Failmode: "secure", NoLookupAccount: true}
)

// preauthUsers returns the usernames Duo was asked about since the
// simulator's request log held n requests.
func (e *env) preauthUsers(n int) []string {
	var users []string
	reqs := e.duo.Requests()
	if n > len(reqs) {
		e.t.Fatalf("simulator request log shrank from %d to %d", n, len(reqs))
	}
	for _, r := range reqs[n:] {
		if strings.HasSuffix(r.Path, "/preauth") {
			users = append(users, r.Username)
		}
	}
	return users
}

// setMail lets a user edit their own mail attribute, as the sample ACL
// allows (by self write), the way an attacker with an account would.
func setMail(t *testing.T, e *env, p sampledata.Person, mail string) {
	t.Helper()
	c := e.slapd.Conn(t, p.DN(), p.Password)
	mod := ldap.NewModifyRequest(p.DN(), nil)
	mod.Replace("mail", []string{mail})
	if err := c.Modify(mod); err != nil {
		t.Fatalf("%s sets own mail: %v", p.UID, err)
	}
}

// TestQuotedDNCannotBorrowAnotherIdentity is the identity-confusion attack:
// alice (whose own pushes she approves) knows bob's password but not his
// second factor. She sets her own mail to an LDAPv2-quoted spelling of bob's
// DN, which slapd binds as bob but go-ldap's DN parser rejects, and binds
// with that name and bob's password. The bind must fail, and Duo must be
// asked about nobody: not alice (that would let her approve bob's login),
// and not bob either, since the name is ambiguous.
func TestQuotedDNCannotBorrowAnotherIdentity(t *testing.T) {
	e := start(t, []section{lookupSection, noLookupSection}, withOwnSlapd()) // alice's mail changes
	alice, bob := person(t, "alice"), person(t, "bob")
	quoted := `uid="bob",` + sampledata.PeopleDN
	setMail(t, e, alice, quoted)

	// The premise: the directory really authenticates that spelling as bob.
	direct := e.slapd.Conn(t, "", "")
	if err := direct.Bind(quoted, bob.Password); err != nil {
		t.Fatalf("slapd refuses the quoted DN: %v", err)
	}
	if who, err := direct.WhoAmI(nil); err != nil || !strings.EqualFold(who.AuthzID, "dn:"+bob.DN()) {
		t.Fatalf("slapd bound the quoted DN as %q (%v), want bob", who.AuthzID, err)
	}

	for _, name := range []string{lookupSection.Name, noLookupSection.Name} {
		t.Run(name, func(t *testing.T) {
			mark := len(e.duo.Requests())
			conn := e.dial(name)
			err := conn.Bind(quoted, bob.Password)
			if code(err) != ldap.LDAPResultInvalidCredentials {
				who, _ := conn.WhoAmI(nil)
				t.Fatalf("bind as %s with bob's password: %v (whoami %+v), want invalidCredentials", quoted, err, who)
			}
			if users := e.preauthUsers(mark); len(users) != 0 {
				t.Fatalf("duo was asked about %v", users)
			}
			// The refused connection does not relay as anyone.
			if _, err := conn.Search(ldap.NewSearchRequest(sampledata.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
				0, 0, false, "(objectClass=*)", nil, nil)); code(err) != ldap.LDAPResultInsufficientAccessRights {
				t.Fatalf("search after the refused bind: %v, want insufficientAccessRights", err)
			}
		})
	}
}

// TestEveryNameFormBindsTheEntryDuoChecked walks the spellings of a bind
// name a directory may accept. Whatever the outcome, a successful bind must
// leave the connection authenticated as exactly the entry Duo was asked
// about and the auth log names, and Duo must be asked about nobody else.
func TestEveryNameFormBindsTheEntryDuoChecked(t *testing.T) {
	e := start(t, []section{lookupSection, noLookupSection})
	alice := person(t, "alice")
	names := []string{
		alice.DN(),
		"UID=Alice,OU=People,DC=Example,DC=Com",
		"uid=alice, ou=people, dc=example, dc=com",
		`uid=al\69ce,ou=people,dc=example,dc=com`,
		`uid="alice",ou=people,dc=example,dc=com`,
		"0.9.2342.19200300.100.1.1=alice,ou=people,dc=example,dc=com",
		"uid=alice+cn=Alice Archer,ou=people,dc=example,dc=com",
		"uid=alice;ou=people;dc=example;dc=com",
		"alice",
		"ALICE",
		" alice",
		alice.Mail,
		"Alice@Example.COM",
		`EXAMPLE\alice`,
	}
	type row struct{ section, name, outcome string }
	var rows []row
	for _, sec := range []string{lookupSection.Name, noLookupSection.Name} {
		for _, name := range names {
			mark := len(e.duo.Requests())
			conn := e.dial(sec)
			err := conn.Bind(name, alice.Password)
			users := e.preauthUsers(mark)
			if err != nil {
				rows = append(rows, row{sec, name, fmt.Sprintf("refused %d", code(err))})
				if len(users) > 1 || (len(users) == 1 && users[0] != alice.UID) {
					t.Errorf("%s %q: refused, but duo was asked about %v", sec, name, users)
				}
				conn.Close()
				continue
			}
			who, werr := conn.WhoAmI(nil)
			if werr != nil {
				t.Fatalf("%s %q: whoami after a good bind: %v", sec, name, werr)
			}
			rows = append(rows, row{sec, name, "bound " + who.AuthzID})
			if !strings.EqualFold(who.AuthzID, "dn:"+alice.DN()) {
				t.Errorf("%s %q: bound as %q, want alice", sec, name, who.AuthzID)
			}
			if len(users) != 1 || users[0] != alice.UID {
				t.Errorf("%s %q: bound as alice, but duo was asked about %v", sec, name, users)
			}
			conn.Close()
		}
	}
	var bound int
	for _, r := range rows {
		t.Logf("%-9s %-62q %s", r.section, r.name, r.outcome)
		if strings.HasPrefix(r.outcome, "bound") {
			bound++
		}
	}
	// The plain forms must keep working: a DN in both sections; uid, mail
	// and DOMAIN\user through the lookup account.
	if bound < 6 {
		t.Errorf("only %d of %d name forms bound", bound, len(rows))
	}
	// The auth log names the entry authenticated and the name as typed.
	evs := e.waitEvents(1)
	var sawMixed bool
	for _, ev := range evs {
		if ev["status"] != "Allow" {
			continue
		}
		if dn, _ := ev["dn"].(string); !strings.EqualFold(dn, alice.DN()) {
			t.Errorf("allowed event with dn %q, want alice's: %v", dn, ev)
		}
		if ev["bind_name"] == "UID=Alice,OU=People,DC=Example,DC=Com" {
			sawMixed = true
		}
	}
	if !sawMixed {
		t.Error("no allowed event carries the bind name as typed")
	}
}

// groupACL hides ou=groups from everyone but the lookup account.
var groupsOnlyForLookup = fmt.Sprintf(`access to dn.subtree=%q
	by dn.exact=%q read
	by * none
`, sampledata.GroupsDN, sampledata.ServiceDN("ldapgate"))

// groupsHiddenFromLookup hides ou=groups from the lookup account only.
var groupsHiddenFromLookup = fmt.Sprintf(`access to dn.subtree=%q
	by dn.exact=%q none
	by users read
	by * none
`, sampledata.GroupsDN, sampledata.ServiceDN("ldapgate"))

// bindEvents returns the auth log's bind decisions, without notices.
func (e *env) bindEvents() []map[string]any {
	var out []map[string]any
	for _, ev := range e.authEvents() {
		if ev["status"] != nil && ev["status"] != "" {
			out = append(out, ev)
		}
	}
	return out
}

// failmodeRule binds uid in a safe section while Duo refuses connections
// and returns the auth log's rule for it.
func failmodeRule(t *testing.T, e *env, sectionName, uid string) string {
	t.Helper()
	p := person(t, uid)
	n := len(e.bindEvents())
	err := e.bind(sectionName, p.DN(), p.Password)
	var evs []map[string]any
	testutil.WaitFor(t, 5*time.Second, func() bool { evs = e.bindEvents(); return len(evs) > n }, "the bind's auth event")
	rule, _ := evs[len(evs)-1]["rule"].(string)
	if (err == nil) != (rule == "failmode_safe") {
		t.Fatalf("%s: bind %v but rule %q", uid, err, rule)
	}
	return rule
}

// TestUnreadableSecureGroupsCountAsPrivileged: when the identity that checks
// membership cannot see a secure group, a membership search answers zero
// entries; that must not read as "not a member" in a safe section while
// Duo is unreachable.
func TestUnreadableSecureGroupsCountAsPrivileged(t *testing.T) {
	t.Run("users cannot read groups, no lookup account", func(t *testing.T) {
		safe := section{Name: "safe", Failmode: "safe", SecureGroups: []string{adminsDN}, NoLookupAccount: true}
		e := start(t, []section{safe}, withSlapd(slapdtest.WithACL(groupsOnlyForLookup)))
		if err := e.duo.SetFault(duosim.FaultRefuse); err != nil {
			t.Fatal(err)
		}
		for _, uid := range []string{"adam", "alice"} {
			if rule := failmodeRule(t, e, "safe", uid); rule != "secure_group" {
				t.Errorf("%s: rule %q, want secure_group (membership cannot be read)", uid, rule)
			}
		}
	})
	t.Run("lookup account can read groups", func(t *testing.T) {
		safe := section{Name: "safe", Failmode: "safe", SecureGroups: []string{adminsDN}}
		e := start(t, []section{safe}, withSlapd(slapdtest.WithACL(groupsOnlyForLookup)))
		if err := e.duo.SetFault(duosim.FaultRefuse); err != nil {
			t.Fatal(err)
		}
		if rule := failmodeRule(t, e, "safe", "adam"); rule != "secure_group" {
			t.Errorf("adam: rule %q, want secure_group", rule)
		}
		if rule := failmodeRule(t, e, "safe", "alice"); rule != "failmode_safe" {
			t.Errorf("alice: rule %q, want failmode_safe (the lookup account sees she is no admin)", rule)
		}
	})
	t.Run("lookup account cannot read groups", func(t *testing.T) {
		safe := section{Name: "safe", Failmode: "safe", SecureGroups: []string{adminsDN}}
		e := start(t, []section{safe}, withSlapd(slapdtest.WithACL(groupsHiddenFromLookup)))
		// Not ready, and the reason names the group.
		var rs struct {
			Ready    bool `json:"ready"`
			Sections []struct {
				Reason string `json:"reason"`
			} `json:"sections"`
		}
		testutil.WaitFor(t, 10*time.Second, func() bool {
			e.getJSON("/readyz", &rs)
			return len(rs.Sections) == 1 && strings.Contains(rs.Sections[0].Reason, adminsDN)
		}, "readyz to name the unreadable secure group")
		if rs.Ready || e.readyz() != 503 {
			t.Errorf("ready with unreadable secure groups: %+v", rs)
		}
		if err := e.duo.SetFault(duosim.FaultRefuse); err != nil {
			t.Fatal(err)
		}
		for _, uid := range []string{"adam", "alice"} {
			if rule := failmodeRule(t, e, "safe", uid); rule != "secure_group" {
				t.Errorf("%s: rule %q, want secure_group (the lookup account cannot read the groups)", uid, rule)
			}
		}
	})
}

// nestedGroups makes grace an admin through a group of groups:
// root-admins ∋ ops ∋ grace, with a cycle (ops ∋ root-admins) for good
// measure.
var nestedGroups = fmt.Sprintf(`dn: cn=ops,%[1]s
objectClass: groupOfNames
cn: ops
member: %[2]s
member: cn=root-admins,%[1]s

dn: cn=root-admins,%[1]s
objectClass: groupOfNames
cn: root-admins
member: cn=ops,%[1]s
`, sampledata.GroupsDN, sampledata.PersonDN("grace"))

// TestNestedSecureGroups: with nested_groups, a member of a group that is a
// member of a secure group is privileged.
func TestNestedSecureGroups(t *testing.T) {
	rootAdmins := "cn=root-admins," + sampledata.GroupsDN
	for _, tc := range []struct {
		name   string
		nested bool
		want   string // grace's rule while Duo is unreachable
	}{
		{"nested_groups true", true, "secure_group"},
		{"nested_groups false", false, "failmode_safe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			safe := section{Name: "safe", Failmode: "safe", SecureGroups: []string{rootAdmins}}
			e := start(t, []section{safe}, withSlapd(slapdtest.WithExtraLDIF(nestedGroups)), withDirectory("nested_groups", tc.nested))
			if err := e.duo.SetFault(duosim.FaultRefuse); err != nil {
				t.Fatal(err)
			}
			if rule := failmodeRule(t, e, "safe", "grace"); rule != tc.want {
				t.Errorf("grace: rule %q, want %s", rule, tc.want)
			}
			if rule := failmodeRule(t, e, "safe", "alice"); rule != "failmode_safe" {
				t.Errorf("alice: rule %q, want failmode_safe", rule)
			}
		})
	}
}

// TestRefusedLookupAccountIsNotReady: with a wrong lookup-account password
// no one can be authenticated (every bind is 52), so the section is not
// ready, and readiness, /status and the metric say the same thing and why.
func TestRefusedLookupAccountIsNotReady(t *testing.T) {
	e := start(t, []section{secureSection}, withLookupPassword("not-the-password"))
	alice := person(t, "alice")
	if err := e.bind("secure", alice.DN(), alice.Password); code(err) != ldap.LDAPResultUnavailable {
		t.Fatalf("bind with the lookup account refused: %v, want unavailable (52)", err)
	}
	var rs struct {
		Ready    bool `json:"ready"`
		Sections []struct {
			Reason      string `json:"reason"`
			DirectoryUp bool   `json:"directory_up"`
		} `json:"sections"`
	}
	testutil.WaitFor(t, 15*time.Second, func() bool {
		e.getJSON("/readyz", &rs)
		return len(rs.Sections) == 1 && strings.Contains(rs.Sections[0].Reason, "lookup account")
	}, "readyz to say the lookup account is refused")
	if rs.Ready || rs.Sections[0].DirectoryUp || e.readyz() != 503 {
		t.Fatalf("ready with a refused lookup account: %+v", rs)
	}
	if up := e.mustMetric("ldapgate_directory_up", map[string]string{"directory": "sample"}); up != 0 {
		t.Fatalf("ldapgate_directory_up = %v with the lookup account refused, want 0 like /readyz", up)
	}
}
