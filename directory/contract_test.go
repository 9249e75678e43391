package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/demodir"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

// The contract is what the proxy relies on a directory for, seen through
// this client: it runs against real slapd and against the in-memory
// directory (internal/demodir) that proxy's own tests use in its place, so
// a difference between the two fails here rather than passing there.

func TestContractSlapd(t *testing.T) {
	dir := slapdtest.Start(t)
	contract(t, dir.URL, dir.Stop)
}

func TestContractMemory(t *testing.T) {
	dir, err := demodir.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Stop() })
	contract(t, dir.URL(), func() { _ = dir.Stop() })
}

// contract runs the suite against the sample tree at url; stop takes the
// directory away for good (the last case).
func contract(t *testing.T, url string, stop func()) {
	contractOver(t, target{URL: url}, stop)
}

// target is where and how the contract reaches the directory: a URL, and
// for LDAPS or StartTLS the TLS configuration.
type target struct {
	URL      string
	TLS      *tls.Config
	StartTLS bool
}

// with is c aimed at the target.
func (tg target) with(c Config) Config {
	c.URLs, c.TLS, c.StartTLS = []string{tg.URL}, tg.TLS, tg.StartTLS
	return c
}

// contractOver is the contract reaching the directory as tg says.
func contractOver(t *testing.T, tg target, stop func()) {
	ctx := context.Background()
	svc, _ := sampledata.LookupService("ldapgate")
	byUIDOrMail := func(u, name string) string {
		return "(|(uid=" + ldap.EscapeFilter(u) + ")(mail=" + ldap.EscapeFilter(name) + "))"
	}
	lookup := newTestClient(t, tg.with(Config{BindDN: svc.DN(), BindPassword: svc.Password,
		UserFilter: byUIDOrMail, MaxConnections: 2}))
	alice := person(t, "alice")

	t.Run("FindUser resolves every spelling to the directory's DN", func(t *testing.T) {
		for _, name := range []string{"alice", alice.Mail, `CORP\alice`, alice.DN(), strings.ToUpper(alice.DN()),
			"uid=alice, ou=people, dc=example, dc=com"} {
			id, err := lookup.FindUser(ctx, nil, name)
			if err != nil || !strings.EqualFold(id.DN, alice.DN()) || id.Username != "alice" {
				t.Errorf("FindUser(%q) = %+v, %v; want alice's entry", name, id, err)
			}
			if err == nil && id.DN == strings.ToUpper(alice.DN()) {
				t.Errorf("FindUser(%q) returned the DN as typed, not as the directory spells it", name)
			}
		}
	})
	t.Run("FindUser tells none from several", func(t *testing.T) {
		if _, err := lookup.FindUser(ctx, nil, "nobody"); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("unknown name: %v, want ErrNoSuchUser", err)
		}
		if _, err := lookup.FindUser(ctx, nil, "uid=nobody,"+sampledata.PeopleDN); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("unknown DN: %v, want ErrNoSuchUser", err)
		}
		everyone := newTestClient(t, tg.with(Config{BindDN: svc.DN(), BindPassword: svc.Password,
			UserFilter: func(string, string) string { return "(objectClass=inetOrgPerson)" }}))
		if _, err := everyone.FindUser(ctx, nil, "anyone"); !errors.Is(err, ErrAmbiguousUser) {
			t.Errorf("a filter matching everyone: %v, want ErrAmbiguousUser", err)
		}
	})
	t.Run("a password check binds on a lease and Who Am I names the entry", func(t *testing.T) {
		lease, err := lookup.CheckConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lookup.Bind(ctx, lease.Conn, alice.DN(), "wrong", nil); !isCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("wrong password: %v, want the directory's invalidCredentials", err)
		}
		if who, err := lookup.WhoAmI(ctx, lease.Conn); err != nil || who != "" {
			t.Fatalf("after a refused bind Who Am I = %q, %v; want anonymous", who, err)
		}
		if _, err := lookup.Bind(ctx, lease.Conn, alice.DN(), alice.Password, nil); err != nil {
			t.Fatalf("good password: %v", err)
		}
		conn := lease.Keep()
		defer conn.Close()
		who, err := lookup.WhoAmI(ctx, conn)
		if err != nil || !strings.EqualFold(who, "dn:"+alice.DN()) {
			t.Fatalf("Who Am I = %q, %v; want dn:%s", who, err, alice.DN())
		}
		if _, err := lookup.Bind(ctx, conn, "uid=nobody,"+sampledata.PeopleDN, "x", nil); !isCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("unknown DN: %v, want invalidCredentials like a wrong password", err)
		}
	})
	t.Run("the password-check pool is bounded and reuses refused connections", func(t *testing.T) {
		a, err := lookup.CheckConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := lookup.CheckConn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lookup.CheckConn(ctx); !errors.Is(err, ErrBusy) {
			t.Fatalf("third lease with max_connections 2: %v, want ErrBusy", err)
		}
		a.Release()
		c, err := lookup.CheckConn(ctx)
		if err != nil || !c.Reused || c.Conn != a.Conn {
			t.Fatalf("lease after a release: reused=%v, %v; want the released connection", c != nil && c.Reused, err)
		}
		b.Discard()
		c.Discard()
	})
	t.Run("groups and entries as the lookup account sees them", func(t *testing.T) {
		groups, err := lookup.Groups(ctx, nil, alice.DN())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := lowered(groups), groupDNs(sampledata.GroupsOf("alice")); !slices.Equal(got, want) {
			t.Errorf("Groups(alice) = %v, want %v", got, want)
		}
		if err := lookup.ReadEntry(ctx, nil, sampledata.GroupDN(sampledata.AdminGroup)); err != nil {
			t.Errorf("reading the admins group: %v", err)
		}
		if err := lookup.ReadEntry(ctx, nil, sampledata.GroupDN("nosuchgroup")); !errors.Is(err, ErrNoSuchEntry) {
			t.Errorf("reading a missing group: %v, want ErrNoSuchEntry", err)
		}
	})
	t.Run("without a lookup account the user's own connection reads", func(t *testing.T) {
		own := newTestClient(t, tg.with(Config{UserFilter: byUIDOrMail}))
		conn, err := own.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := own.FindUser(ctx, nil, "alice"); err == nil {
			t.Fatal("FindUser without a lookup account or a connection succeeded")
		}
		if _, err := own.Bind(ctx, conn, alice.DN(), alice.Password, nil); err != nil {
			t.Fatal(err)
		}
		id, err := own.FindUser(ctx, conn, alice.Mail)
		if err != nil || !strings.EqualFold(id.DN, alice.DN()) {
			t.Fatalf("FindUser as alice: %+v, %v", id, err)
		}
		if groups, err := own.Groups(ctx, conn, id.DN); err != nil || len(groups) != len(sampledata.GroupsOf("alice")) {
			t.Fatalf("Groups as alice: %v, %v", groups, err)
		}
	})
	t.Run("a refused lookup account is a problem of ours, and says so", func(t *testing.T) {
		wrong := newTestClient(t, tg.with(Config{BindDN: svc.DN(), BindPassword: "not-the-password"}))
		if err := wrong.Ping(ctx); !errors.Is(err, ErrLookupAccount) {
			t.Fatalf("Ping: %v, want ErrLookupAccount", err)
		}
		if wrong.Up() || !strings.Contains(wrong.Problem(), "lookup account") {
			t.Fatalf("Up() = %v, Problem() = %q with the lookup account refused", wrong.Up(), wrong.Problem())
		}
		if _, err := wrong.FindUser(ctx, nil, "alice"); !errors.Is(err, ErrLookupAccount) || IsUnavailable(err) {
			t.Fatalf("FindUser: %v, want ErrLookupAccount (not an outage)", err)
		}
	})
	t.Run("a directory gone is unavailable, never an answer", func(t *testing.T) {
		if err := lookup.Ping(ctx); err != nil || !lookup.Up() {
			t.Fatalf("before: Ping %v, Up %v", err, lookup.Up())
		}
		stop()
		_, err := lookup.FindUser(ctx, nil, "alice")
		if !IsUnavailable(err) || errors.Is(err, ErrNoSuchUser) {
			t.Fatalf("FindUser with the directory gone: %v, want an UnavailableError", err)
		}
		if _, ok := Answered(err); ok {
			t.Fatalf("%v reads as the directory's answer", err)
		}
		if lookup.Up() || lookup.Problem() != "unreachable" {
			t.Fatalf("Up() = %v, Problem() = %q with the directory gone", lookup.Up(), lookup.Problem())
		}
		if _, err := lookup.CheckConn(ctx); !IsUnavailable(err) {
			t.Fatalf("CheckConn with the directory gone: %v", err)
		}
	})
}

func isCode(err error, code uint16) bool {
	le, ok := Answered(err)
	return ok && le.ResultCode == code
}

func lowered(dns []string) []string {
	out := make([]string, len(dns))
	for i, dn := range dns {
		out[i] = strings.ToLower(dn)
	}
	slices.Sort(out)
	return out
}

func groupDNs(cns []string) []string {
	dns := make([]string, len(cns))
	for i, cn := range cns {
		dns[i] = sampledata.GroupDN(cn)
	}
	return lowered(dns)
}
