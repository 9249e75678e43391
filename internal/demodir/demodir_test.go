package demodir

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

func start(t *testing.T) *Directory {
	t.Helper()
	d, err := Start(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	return d
}

func dial(t *testing.T, d *Directory) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// code is the LDAP result code of err.
var code = testutil.ResultCode

func TestBind(t *testing.T) {
	d := start(t)
	alice, _ := sampledata.Lookup("alice")
	app, _ := sampledata.LookupService("app")
	tests := []struct {
		name, dn, password string
		want               int
		whoami             string
	}{
		{"person", alice.DN(), alice.Password, 0, "dn:" + alice.DN()},
		{"dn compared as a DN", "UID=Alice, OU=People,DC=Example,DC=com", alice.Password, 0, "dn:" + alice.DN()},
		{"service account", app.DN(), app.Password, 0, "dn:" + app.DN()},
		{"wrong password", alice.DN(), "nope", 49, ""},
		{"empty password", alice.DN(), "", 49, ""},
		{"unknown dn", sampledata.PersonDN("mallory"), "x", 49, ""},
		{"entry without password", sampledata.GroupDN("admins"), "x", 49, ""},
		{"not a dn", "alice", alice.Password, 49, ""},
		{"anonymous", "", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, d)
			_, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: tt.dn, Password: tt.password, AllowEmptyPassword: true})
			if got := code(err); got != tt.want {
				t.Fatalf("bind: code %d (%v), want %d", got, err, tt.want)
			}
			res, err := c.WhoAmI(nil)
			if err != nil {
				t.Fatalf("whoami: %v", err)
			}
			if res.AuthzID != tt.whoami {
				t.Fatalf("whoami %q, want %q", res.AuthzID, tt.whoami)
			}
		})
	}
}

func TestFailedBindMakesConnectionAnonymous(t *testing.T) {
	d := start(t)
	alice, _ := sampledata.Lookup("alice")
	c := dial(t, d)
	if err := c.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(alice.DN(), "wrong"); code(err) != 49 {
		t.Fatalf("second bind: %v", err)
	}
	if res, err := c.WhoAmI(nil); err != nil || res.AuthzID != "" {
		t.Fatalf("whoami after a failed bind: %+v %v", res, err)
	}
}

func TestSearch(t *testing.T) {
	d := start(t)
	svc, _ := sampledata.LookupService("ldapgate")
	c := dial(t, d)
	if err := c.Bind(svc.DN(), svc.Password); err != nil {
		t.Fatal(err)
	}
	people := func(uids ...string) []string {
		var dns []string
		for _, u := range uids {
			dns = append(dns, sampledata.PersonDN(u))
		}
		return dns
	}
	all := people("alice", "bob", "carol", "dave", "erin", "adam", "frank", "grace")
	base := sampledata.BaseDN
	tests := []struct {
		name      string
		base      string
		scope     int
		filter    string
		sizeLimit int
		want      []string // DNs, in directory order
		wantCode  int
		matched   string
	}{
		{"user filter by uid", base, ldap.ScopeWholeSubtree, "(|(uid=alice)(mail=alice))", 0, people("alice"), 0, ""},
		{"user filter by mail", base, ldap.ScopeWholeSubtree, "(|(uid=alice@example.com)(mail=ALICE@example.com))", 0, people("alice"), 0, ""},
		{"group filter", base, ldap.ScopeWholeSubtree, "(&(objectClass=groupOfNames)(member=" + sampledata.PersonDN("adam") + "))", 0, []string{sampledata.GroupDN("admins")}, 0, ""},
		{"member compared as a DN", base, ldap.ScopeWholeSubtree, "(member=UID=Adam, OU=People,DC=example,DC=com)", 0, []string{sampledata.GroupDN("admins")}, 0, ""},
		{"base scope", sampledata.PersonDN("bob"), ldap.ScopeBaseObject, "(objectClass=*)", 0, people("bob"), 0, ""},
		{"base scope, filter false", sampledata.PersonDN("bob"), ldap.ScopeBaseObject, "(uid=alice)", 0, nil, 0, ""},
		{"one level", base, ldap.ScopeSingleLevel, "(objectClass=*)", 0, []string{sampledata.PeopleDN, sampledata.GroupsDN, sampledata.ServicesDN}, 0, ""},
		{"initial substring", sampledata.PeopleDN, ldap.ScopeSingleLevel, "(cn=a*)", 0, people("alice", "adam"), 0, ""},
		{"any and final substrings", base, ldap.ScopeWholeSubtree, "(cn=*AR*er)", 0, people("alice", "carol"), 0, ""},
		{"not", base, ldap.ScopeWholeSubtree, "(&(objectClass=inetOrgPerson)(!(uid=a*)))", 0, people("bob", "carol", "dave", "erin", "frank", "grace"), 0, ""},
		{"greater or equal", base, ldap.ScopeWholeSubtree, "(uid>=f)", 0, people("frank", "grace"), 0, ""},
		{"less or equal", base, ldap.ScopeWholeSubtree, "(uid<=b)", 0, people("alice", "adam"), 0, ""},
		{"present", base, ldap.ScopeWholeSubtree, "(mail=*)", 0, all, 0, ""},
		{"userPassword is not searchable", base, ldap.ScopeWholeSubtree, "(userPassword=*)", 0, nil, 0, ""},
		{"extensible match is false", base, ldap.ScopeWholeSubtree, "(cn:caseExactMatch:=Bob Baker)", 0, nil, 0, ""},
		{"size limit", sampledata.PeopleDN, ldap.ScopeSingleLevel, "(objectClass=*)", 2, people("alice", "bob"), 4, ""},
		{"size limit not reached", sampledata.PeopleDN, ldap.ScopeSingleLevel, "(uid=alice)", 1, people("alice"), 0, ""},
		{"no such base", sampledata.PersonDN("mallory"), ldap.ScopeWholeSubtree, "(objectClass=*)", 0, nil, 32, sampledata.PeopleDN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Search(ldap.NewSearchRequest(tt.base, tt.scope, ldap.NeverDerefAliases, tt.sizeLimit, 0, false, tt.filter, []string{"1.1"}, nil))
			if got := code(err); got != tt.wantCode {
				t.Fatalf("code %d (%v), want %d", got, err, tt.wantCode)
			}
			var le *ldap.Error
			if tt.matched != "" && (!errors.As(err, &le) || le.MatchedDN != tt.matched) {
				t.Fatalf("matched DN: %v, want %q", err, tt.matched)
			}
			var got []string
			if res != nil {
				for _, e := range res.Entries {
					got = append(got, e.DN)
					if len(e.Attributes) != 0 {
						t.Errorf("1.1 returned attributes for %s: %v", e.DN, e.Attributes)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSearchAttributes(t *testing.T) {
	d := start(t)
	alice, _ := sampledata.Lookup("alice")
	c := dial(t, d)
	if err := c.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	names := func(attrs []string, typesOnly bool) ([]string, *ldap.Entry) {
		t.Helper()
		res, err := c.Search(ldap.NewSearchRequest(sampledata.PersonDN("bob"), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, typesOnly, "(objectClass=*)", attrs, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("search %v: %v", attrs, err)
		}
		var out []string
		for _, a := range res.Entries[0].Attributes {
			out = append(out, a.Name)
		}
		return out, res.Entries[0]
	}
	every := []string{"objectClass", "uid", "cn", "sn", "mail"}
	tests := []struct {
		name  string
		attrs []string
		want  []string
	}{
		{"none means all", nil, every},
		{"star", []string{"*"}, every},
		{"named, any case", []string{"CN", "mail", "nosuch"}, []string{"cn", "mail"}},
		{"1.1 is none", []string{"1.1"}, nil},
		{"userPassword is never returned", []string{"userPassword", "uid"}, []string{"uid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := names(tt.attrs, false); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, e := names([]string{"cn"}, false); e.GetAttributeValue("cn") != "Bob Baker" {
		t.Errorf("cn = %q", e.GetAttributeValue("cn"))
	}
	if _, e := names([]string{"cn"}, true); len(e.GetAttributeValues("cn")) != 0 {
		t.Errorf("typesOnly returned values: %v", e.GetAttributeValues("cn"))
	}
}

func TestAnonymous(t *testing.T) {
	d := start(t)
	c := dial(t, d)
	_, err := c.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if code(err) != 32 {
		t.Fatalf("anonymous search: %v, want noSuchObject", err)
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"namingContexts", "supportedExtension"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("root DSE: %v", err)
	}
	if got := res.Entries[0].GetAttributeValue("namingContexts"); got != sampledata.BaseDN {
		t.Fatalf("namingContexts %q", got)
	}
}

func TestEverythingElseIsRefused(t *testing.T) {
	d := start(t)
	alice, _ := sampledata.Lookup("alice")
	c := dial(t, d)
	if err := c.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest(alice.DN(), nil)
	mod.Replace("sn", []string{"X"})
	if err := c.Modify(mod); code(err) != 53 {
		t.Errorf("modify: %v", err)
	}
	if err := c.Del(ldap.NewDelRequest(alice.DN(), nil)); code(err) != 53 {
		t.Errorf("delete: %v", err)
	}
	if _, err := c.Compare(alice.DN(), "uid", "alice"); code(err) != 53 {
		t.Errorf("compare: %v", err)
	}
	if _, err := c.PasswordModify(ldap.NewPasswordModifyRequest("", "a", "b")); code(err) != 53 {
		t.Errorf("password modify: %v", err)
	}
	if err := c.ExternalBind(); code(err) != 7 {
		t.Errorf("SASL bind: %v", err)
	}
}

func TestStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(d.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := ldap.DialURL(d.URL()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still listening after the context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop after cancel: %v", err)
	}
	if _, err := Start(t.Context(), d.Addr()); err != nil {
		t.Fatalf("port not released: %v", err)
	}
}
