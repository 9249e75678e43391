package slapdtest

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

func dial(t *testing.T, s *Server, timeout time.Duration) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: timeout}))
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(timeout)
	return conn
}

func person(t *testing.T, uid string) sampledata.Person {
	t.Helper()
	p, ok := sampledata.Lookup(uid)
	if !ok {
		t.Fatalf("no sample person %s", uid)
	}
	return p
}

func TestBind(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.URL, "ldap://127.0.0.1:") || s.Port == 0 {
		t.Fatalf("URL %q, Port %d", s.URL, s.Port)
	}

	for _, p := range sampledata.People {
		if err := dial(t, s, 5*time.Second).Bind(p.DN(), p.Password); err != nil {
			t.Errorf("bind as %s with the right password: %v", p.UID, err)
		}
	}
	for _, svc := range sampledata.Services {
		if err := dial(t, s, 5*time.Second).Bind(svc.DN(), svc.Password); err != nil {
			t.Errorf("bind as service %s: %v", svc.CN, err)
		}
	}
	if err := dial(t, s, 5*time.Second).Bind(s.RootDN, s.RootPassword); err != nil {
		t.Errorf("bind as rootdn: %v", err)
	}

	alice := person(t, "alice")
	err := dial(t, s, 5*time.Second).Bind(alice.DN(), "wrong-pass")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind with a wrong password: %v, want invalidCredentials (49)", err)
	}
	// frank's password is exactly "pass,word,9"; its prefix is wrong.
	frank := person(t, "frank")
	err = dial(t, s, 5*time.Second).Bind(frank.DN(), "pass")
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind as frank with a prefix of the password: %v, want invalidCredentials", err)
	}
}

func TestAnonymousReadsNothing(t *testing.T) {
	t.Parallel()
	s := Start(t)
	conn := dial(t, s, 5*time.Second)
	for _, base := range []string{sampledata.PeopleDN, sampledata.GroupsDN, sampledata.BaseDN} {
		res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "(objectClass=*)", nil, nil))
		// slapd hides the base as noSuchObject, or returns no entries.
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Errorf("anonymous search of %s: %v", base, err)
		}
		if res != nil && len(res.Entries) != 0 {
			t.Errorf("anonymous search of %s returned %d entries", base, len(res.Entries))
		}
	}
}

func TestLdapwhoami(t *testing.T) {
	t.Parallel()
	whoami, err := exec.LookPath("ldapwhoami")
	if err != nil {
		t.Fatalf("ldapwhoami not found (%v): run `make test`, which installs ldap-utils", err)
	}
	s := Start(t)
	alice := person(t, "alice")
	out, err := exec.Command(whoami, "-x", "-H", s.URL, "-D", alice.DN(), "-w", alice.Password).CombinedOutput()
	if err != nil {
		t.Fatalf("ldapwhoami: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "dn:"+alice.DN(); got != want {
		t.Errorf("ldapwhoami printed %q, want %q", got, want)
	}
	out, err = exec.Command(whoami, "-x", "-H", s.URL, "-D", alice.DN(), "-w", "wrong").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Invalid credentials (49)") {
		t.Errorf("ldapwhoami with a wrong password: %v\n%s", err, out)
	}
}

func TestServiceAccountSearches(t *testing.T) {
	t.Parallel()
	s := Start(t)
	svc, _ := sampledata.LookupService("ldapgate")
	conn := s.Conn(t, svc.DN(), svc.Password)

	res, err := conn.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=inetOrgPerson)", []string{"uid", "mail", "userPassword"}, nil))
	if err != nil {
		t.Fatalf("search people: %v", err)
	}
	if len(res.Entries) != len(sampledata.People) {
		t.Errorf("found %d people, want %d", len(res.Entries), len(sampledata.People))
	}
	for _, e := range res.Entries {
		p, ok := sampledata.Lookup(e.GetAttributeValue("uid"))
		if !ok || !strings.EqualFold(e.DN, p.DN()) || e.GetAttributeValue("mail") != p.Mail {
			t.Errorf("unexpected entry %s uid=%q mail=%q", e.DN, e.GetAttributeValue("uid"), e.GetAttributeValue("mail"))
		}
		if pw := e.GetAttributeValues("userPassword"); len(pw) != 0 {
			t.Errorf("%s: the lookup account can read userPassword", e.DN)
		}
	}

	res, err = conn.Search(ldap.NewSearchRequest(sampledata.GroupsDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(&(objectClass=groupOfNames)(member="+ldap.EscapeFilter(sampledata.PersonDN("adam"))+"))",
		[]string{"cn", "member"}, nil))
	if err != nil {
		t.Fatalf("search groups: %v", err)
	}
	if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("cn") != sampledata.AdminGroup {
		t.Fatalf("adam's groups: %d entries", len(res.Entries))
	}
	if got := res.Entries[0].GetAttributeValues("member"); len(got) != 1 || !strings.EqualFold(got[0], sampledata.PersonDN("adam")) {
		t.Errorf("admins member = %q", got)
	}
}

func TestWriteACLs(t *testing.T) {
	t.Parallel()
	s := Start(t)
	alice, adam := person(t, "alice"), person(t, "adam")

	// Users modify their own entries, not others'.
	aliceConn := s.Conn(t, alice.DN(), alice.Password)
	mod := ldap.NewModifyRequest(alice.DN(), nil)
	mod.Replace("description", []string{"changed by alice"})
	if err := aliceConn.Modify(mod); err != nil {
		t.Errorf("alice modifies her own entry: %v", err)
	}
	mod = ldap.NewModifyRequest(adam.DN(), nil)
	mod.Replace("description", []string{"changed by alice"})
	if err := aliceConn.Modify(mod); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("alice modifies adam: %v, want insufficientAccessRights", err)
	}

	newDN := sampledata.PersonDN("zoe")
	add := ldap.NewAddRequest(newDN, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"zoe"})
	add.Attribute("cn", []string{"Zoe Zimmer"})
	add.Attribute("sn", []string{"Zimmer"})
	add.Attribute("userPassword", []string{"zoe-pass"})
	if err := aliceConn.Add(add); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Errorf("alice adds a person: %v, want insufficientAccessRights", err)
	}

	// Members of admins add, rename and delete people.
	adamConn := s.Conn(t, adam.DN(), adam.Password)
	if err := adamConn.Add(add); err != nil {
		t.Fatalf("adam adds a person: %v", err)
	}
	if err := dial(t, s, 5*time.Second).Bind(newDN, "zoe-pass"); err != nil {
		t.Errorf("bind as the added person: %v", err)
	}
	if err := adamConn.ModifyDN(ldap.NewModifyDNRequest(newDN, "uid=zed", true, "")); err != nil {
		t.Errorf("adam renames a person: %v", err)
	}
	if err := adamConn.Del(ldap.NewDelRequest(sampledata.PersonDN("zed"), nil)); err != nil {
		t.Errorf("adam deletes a person: %v", err)
	}
}

func TestRestartKeepsPortAndData(t *testing.T) {
	t.Parallel()
	s := Start(t)
	alice := person(t, "alice")
	conn := s.Conn(t, alice.DN(), alice.Password)
	mod := ldap.NewModifyRequest(alice.DN(), nil)
	mod.Replace("description", []string{"before restart"})
	if err := conn.Modify(mod); err != nil {
		t.Fatalf("modify: %v", err)
	}

	port, url := s.Port, s.URL
	s.Restart(t)
	if s.Port != port || s.URL != url {
		t.Fatalf("restart moved from %s to %s", url, s.URL)
	}
	// The old connection died with the old process.
	if _, err := conn.WhoAmI(nil); err == nil {
		t.Error("a connection to the old process still works")
	}

	conn = s.Conn(t, alice.DN(), alice.Password)
	res, err := conn.Search(ldap.NewSearchRequest(alice.DN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"description"}, nil))
	if err != nil {
		t.Fatalf("search after restart: %v", err)
	}
	if got := res.Entries[0].GetAttributeValue("description"); got != "before restart" {
		t.Errorf("description after restart = %q, want the value written before", got)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.Stop()
	s.Stop() // idempotent
	c, err := net.DialTimeout("tcp", s.URL[len("ldap://"):], time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after Stop")
	}
	if _, err := os.Stat(s.Dir); err != nil {
		t.Errorf("Dir is gone before the test ends: %v", err)
	}
}

// TestLaunch: a server started without a test serves the sample directory
// until stop, which kills it and removes its directory, and may be called
// twice.
func TestLaunch(t *testing.T) {
	t.Parallel()
	s, stop, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	alice := person(t, "alice")
	if err := dial(t, s, 5*time.Second).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind: %v", err)
	}
	stop()
	stop()
	c, err := net.DialTimeout("tcp", s.URL[len("ldap://"):], time.Second)
	if err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after stop")
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir is still there after stop: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s := Start(t)
	alice := person(t, "alice")

	s.Pause(t)
	// The kernel still completes the TCP handshake; the bind is never answered.
	conn := dial(t, s, 300*time.Millisecond)
	start := time.Now()
	err := conn.Bind(alice.DN(), alice.Password)
	elapsed := time.Since(start)
	var lerr *ldap.Error
	if !errors.As(err, &lerr) || lerr.ResultCode != ldap.ErrorNetwork || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("bind to a paused slapd: %v, want a timeout", err)
	}
	if elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("the timeout took %v, want about 300ms", elapsed)
	}

	s.Resume(t)
	if err := dial(t, s, 5*time.Second).Bind(alice.DN(), alice.Password); err != nil {
		t.Errorf("bind after resume: %v", err)
	}
	// Restart and Stop work on a paused server too.
	s.Pause(t)
	s.Restart(t)
	s.Conn(t, alice.DN(), alice.Password)
}

func TestLogLevelAndExtraLDIF(t *testing.T) {
	t.Parallel()
	s := Start(t, WithLogLevel("stats"), WithExtraLDIF(`
dn: uid=xavier,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: xavier
cn: Xavier Extra
sn: Extra
userPassword: xavier-pass
`))
	s.Conn(t, sampledata.PersonDN("xavier"), "xavier-pass")
	if log := s.Log(); !strings.Contains(log, `BIND dn="uid=xavier,ou=people,dc=example,dc=com"`) {
		t.Errorf("stats log does not show the bind:\n%s", log)
	}
}

// TestParallelStart starts several servers at once, as a test suite might,
// and reports how long that takes.
func TestParallelStart(t *testing.T) {
	t.Parallel()
	const n = 4
	var mu sync.Mutex
	ports := map[int]bool{}
	start := time.Now()
	t.Run("group", func(t *testing.T) {
		for i := 0; i < n; i++ {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				s := Start(t)
				mu.Lock()
				defer mu.Unlock()
				if ports[s.Port] {
					t.Errorf("port %d used twice", s.Port)
				}
				ports[s.Port] = true
			})
		}
	})
	t.Logf("%d servers started (and stopped) in parallel in %v", n, time.Since(start))
}

func TestFindSlapd(t *testing.T) {
	p, err := FindSlapd()
	if err != nil {
		t.Fatalf("FindSlapd: %v (run `make test`, which installs slapd)", err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("FindSlapd returned %q, not an executable: %v", p, err)
	}
	// Without /usr/sbin on PATH, as for many non-root users.
	t.Setenv("PATH", "/nonexistent")
	if p, err := FindSlapd(); err != nil || p != "/usr/sbin/slapd" {
		if _, statErr := os.Stat("/usr/sbin/slapd"); statErr == nil {
			t.Errorf("FindSlapd without PATH = %q, %v; want /usr/sbin/slapd", p, err)
		}
	}
}

func BenchmarkStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Start(b).Stop()
	}
}
