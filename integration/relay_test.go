package integration

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestRelayAfterBind: operations are refused before a bind and relayed
// unchanged after one.
func TestRelayAfterBind(t *testing.T) {
	e := start(t, []section{secureSection}, withOwnSlapd()) // modifies, adds and deletes entries
	alice, adam, bob := person(t, "alice"), person(t, "adam"), person(t, "bob")
	peopleSearch := func(attrs ...string) *ldap.SearchRequest {
		return ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=inetOrgPerson)", attrs, nil)
	}

	t.Run("nothing before bind", func(t *testing.T) {
		conn := e.dial("secure")
		if _, err := conn.Search(peopleSearch("uid")); code(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Errorf("search before bind: %v", err)
		}
		if _, err := conn.Compare(alice.DN(), "uid", "alice"); code(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Errorf("compare before bind: %v", err)
		}
		if _, err := conn.WhoAmI(nil); code(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Errorf("whoami before bind: %v", err)
		}
	})

	t.Run("denied second factor leaves nothing bound", func(t *testing.T) {
		conn := e.dial("secure")
		if err := conn.Bind(bob.DN(), bob.Password); code(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bob: %v", err)
		}
		if _, err := conn.Search(peopleSearch("uid")); code(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Fatalf("search after a denied bind must not run as bob: %v", err)
		}
	})

	conn := e.dial("secure")
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	t.Run("search", func(t *testing.T) {
		res, err := conn.Search(peopleSearch("uid", "mail"))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != len(sampledata.People) {
			t.Fatalf("got %d entries, want %d", len(res.Entries), len(sampledata.People))
		}
		for _, en := range res.Entries {
			if en.GetAttributeValue("uid") == "" || en.GetAttributeValue("mail") == "" {
				t.Errorf("entry %s lacks attributes", en.DN)
			}
		}
	})
	t.Run("paged search", func(t *testing.T) {
		res, err := conn.SearchWithPaging(peopleSearch("uid"), 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != len(sampledata.People) {
			t.Fatalf("paged: got %d entries, want %d", len(res.Entries), len(sampledata.People))
		}
	})
	t.Run("size limit is the directory's answer", func(t *testing.T) {
		req := peopleSearch("uid")
		req.SizeLimit = 2
		res, err := conn.Search(req)
		if code(err) != ldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 2 {
			t.Fatalf("got %v with %v", err, res)
		}
	})
	t.Run("no such object keeps matchedDN", func(t *testing.T) {
		_, err := conn.Search(ldap.NewSearchRequest("uid=nobody,ou=nowhere,"+sampledata.BaseDN, ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", nil, nil))
		var le *ldap.Error
		if code(err) != ldap.LDAPResultNoSuchObject || !asLDAPError(err, &le) || !strings.EqualFold(le.MatchedDN, sampledata.BaseDN) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("extensible match filter", func(t *testing.T) {
		res, err := conn.Search(ldap.NewSearchRequest(sampledata.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(&(objectClass=inetOrgPerson)(ou:dn:=people))", []string{"uid"}, nil))
		if err != nil || len(res.Entries) != len(sampledata.People) {
			t.Fatalf("(ou:dn:=people): %v, %d entries", err, entriesOf(res))
		}
	})
	t.Run("compare", func(t *testing.T) {
		if ok, err := conn.Compare(alice.DN(), "mail", alice.Mail); err != nil || !ok {
			t.Errorf("compare true: %v %v", ok, err)
		}
		if ok, err := conn.Compare(alice.DN(), "mail", "x@example.com"); err != nil || ok {
			t.Errorf("compare false: %v %v", ok, err)
		}
	})
	t.Run("whoami", func(t *testing.T) {
		res, err := conn.WhoAmI(nil)
		if err != nil || !strings.EqualFold(res.AuthzID, "dn:"+alice.DN()) {
			t.Fatalf("whoami: %+v %v", res, err)
		}
	})
	t.Run("modify own entry", func(t *testing.T) {
		req := ldap.NewModifyRequest(alice.DN(), nil)
		req.Replace("description", []string{"first", "second"})
		if err := conn.Modify(req); err != nil {
			t.Fatal(err)
		}
		res, err := conn.Search(ldap.NewSearchRequest(alice.DN(), ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"description"}, nil))
		if err != nil || len(res.Entries) != 1 || strings.Join(res.Entries[0].GetAttributeValues("description"), "|") != "first|second" {
			t.Fatalf("modify did not land intact: %v %+v", err, res)
		}
		del := ldap.NewModifyRequest(alice.DN(), nil)
		del.Delete("description", nil)
		if err := conn.Modify(del); err != nil {
			t.Fatalf("delete all values: %v", err)
		}
	})
	t.Run("refusals are the directory's", func(t *testing.T) {
		err := conn.Del(ldap.NewDelRequest(person(t, "bob").DN(), nil))
		if code(err) != ldap.LDAPResultInsufficientAccessRights {
			t.Fatalf("alice deleting bob: %v", err)
		}
	})

	t.Run("add, rename, delete as an admin", func(t *testing.T) {
		admin := e.dial("secure")
		if err := admin.Bind(adam.DN(), adam.Password); err != nil {
			t.Fatal(err)
		}
		dn := sampledata.PersonDN("temp")
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{"temp"})
		add.Attribute("cn", []string{"Temp"})
		add.Attribute("sn", []string{"Temp"})
		if err := admin.Add(add); err != nil {
			t.Fatalf("add: %v", err)
		}
		if err := admin.Add(add); code(err) != ldap.LDAPResultEntryAlreadyExists {
			t.Fatalf("second add: %v", err)
		}
		if err := admin.ModifyDN(ldap.NewModifyDNRequest(dn, "uid=temp2", true, "")); err != nil {
			t.Fatalf("modrdn: %v", err)
		}
		if err := admin.Del(ldap.NewDelRequest(sampledata.PersonDN("temp2"), nil)); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
}

func asLDAPError(err error, le **ldap.Error) bool {
	e, ok := err.(*ldap.Error)
	if ok {
		*le = e
	}
	return ok
}

// TestOpenLDAPClients drives ldapgate with ldapwhoami and ldapsearch.
func TestOpenLDAPClients(t *testing.T) {
	for _, tool := range []string{"ldapwhoami", "ldapsearch"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run make test, which installs ldap-utils", tool)
		}
	}
	e := start(t, []section{secureSection})
	alice, bob := person(t, "alice"), person(t, "bob")
	uri := "ldap://" + e.addr["secure"]

	out, err := exec.Command("ldapwhoami", "-x", "-H", uri, "-D", alice.DN(), "-w", alice.Password).CombinedOutput()
	if err != nil || !strings.Contains(strings.ToLower(string(out)), "dn:"+alice.DN()) {
		t.Fatalf("ldapwhoami alice: %v\n%s", err, out)
	}
	out, err = exec.Command("ldapwhoami", "-x", "-H", uri, "-D", bob.DN(), "-w", bob.Password).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Invalid credentials (49)") || !strings.Contains(string(out), "second factor denied") {
		t.Fatalf("ldapwhoami bob should be denied with a clear message: %v\n%s", err, out)
	}
	out, err = exec.Command("ldapsearch", "-x", "-LLL", "-H", uri, "-D", alice.DN(), "-w", alice.Password,
		"-b", sampledata.PeopleDN, "(uid=grace)", "mail").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mail: grace@example.com") {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
}

// TestNoLeaks: connections, whatever they end in, leave no file descriptor
// behind in ldapgate.
func TestNoLeaks(t *testing.T) {
	e := start(t, []section{secureSection}, withProcess()) // counts its descriptors
	alice, bob := person(t, "alice"), person(t, "bob")
	// Warm up: the lookup account's shared connection and the Duo client's
	// keep-alive connection are long-lived by design.
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	baseline := e.openFDs()
	for i := 0; i < 30; i++ {
		p := alice
		if i%3 == 1 {
			p = bob // denied at Duo: the upstream connection must be closed
		}
		conn := e.dial("secure")
		_ = conn.Bind(p.DN(), p.Password)
		if i%3 == 2 {
			_, _ = conn.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=*)", []string{"uid"}, nil))
		}
		conn.Close()
		raw, err := net.Dial("tcp", e.addr["secure"]) // a client that connects and leaves
		if err != nil {
			t.Fatal(err)
		}
		raw.Close()
	}
	// Allow a little slack for Duo keep-alive connections, which the HTTP
	// transport pools and closes when idle.
	testutil.WaitFor(t, 10*time.Second, func() bool { return e.openFDs() <= baseline+2 }, "ldapgate's fds to return to the baseline")
}

// TestGarbageDoesNotHurt: bytes that are not LDAP end that connection only,
// and an absurd length is refused at once rather than waited for.
func TestGarbageDoesNotHurt(t *testing.T) {
	e := start(t, []section{secureSection})
	for _, tt := range []struct {
		name      string
		bytes     []byte
		wantClose bool // the server must hang up by itself
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"4 GiB length", []byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, true},
		{"2 GiB length", []byte{0x30, 0x84, 0x7f, 0xff, 0x00, 0x00, 0x02, 0x01, 0x01}, true},
		{"unknown operation", []byte{0x30, 0x05, 0x02, 0x01, 0x01, 0x77, 0x00}, true},
		{"tls hello on the plain port", []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", e.addr["secure"])
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			_, _ = raw.Write(tt.bytes)
			_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 512)
			var rerr error
			for rerr == nil {
				_, rerr = raw.Read(buf)
			}
			if ne, ok := rerr.(net.Error); tt.wantClose && ok && ne.Timeout() {
				t.Fatalf("ldapgate kept the connection open after %s", tt.name)
			}
		})
	}
	alice := person(t, "alice")
	if err := e.bind("secure", alice.DN(), alice.Password); err != nil {
		t.Fatalf("ldapgate should still serve after garbage: %v", err)
	}
}

func entriesOf(res *ldap.SearchResult) int {
	if res == nil {
		return -1
	}
	return len(res.Entries)
}

// TestMaxConnections: beyond max_connections a client is told busy and
// disconnected; the clients already in keep working, and a freed place is
// reused.
func TestMaxConnections(t *testing.T) {
	e := start(t, []section{{Name: "capped", Failmode: "secure", MaxConnections: 2}})
	alice := person(t, "alice")
	// The harness's own "is it listening?" probes count until ldapgate sees
	// them close, so admission may take a moment.
	admit := func() *ldap.Conn {
		var conn *ldap.Conn
		testutil.WaitFor(t, 5*time.Second, func() bool {
			c := e.dial("capped")
			if err := c.Bind(alice.DN(), alice.Password); err != nil {
				c.Close()
				return false
			}
			conn = c
			return true
		}, "a connection to be admitted")
		return conn
	}
	first, second := admit(), admit()
	third := e.dial("capped")
	if err := third.Bind(alice.DN(), alice.Password); err == nil {
		t.Fatal("a third connection beyond max_connections 2 was served")
	}
	if _, err := first.WhoAmI(nil); err != nil {
		t.Fatalf("an admitted client stopped working: %v", err)
	}
	second.Close()
	testutil.WaitFor(t, 5*time.Second, func() bool {
		return e.bind("capped", alice.DN(), alice.Password) == nil
	}, "a freed place to be reused")
}
