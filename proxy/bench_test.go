package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

// BenchmarkProxyOverhead measures, in one run, the same client work against
// slapd directly (the baseline) and through ldapgate with a second factor
// that approves at once, so the ratio is ldapgate's own cost: binds (each
// one a directory bind, two lookups and the decision) and searches (pure
// relay). The reference proxy manages about 0.15× direct for binds.
func BenchmarkProxyOverhead(b *testing.B) {
	approve := fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
		return failmode.Verdict{Allowed: true}, nil
	}}
	dirURL := slapdtest.Start(b).URL
	addr := startProxyAt(b, dirURL, approve, nil)
	alice, _ := sampledata.Lookup("alice")
	search := ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=grace)", []string{"cn", "mail"}, nil)

	run := func(b *testing.B, url string, op func(*ldap.Conn) error) time.Duration {
		conn, err := ldap.DialURL(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Bind(alice.DN(), alice.Password); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := op(conn); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / time.Duration(b.N)
	}
	for _, tc := range []struct {
		name string
		op   func(*ldap.Conn) error
	}{
		{"bind", func(c *ldap.Conn) error { return c.Bind(alice.DN(), alice.Password) }},
		{"search", func(c *ldap.Conn) error { _, err := c.Search(search); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			direct := run(b, dirURL, tc.op)
			proxied := run(b, "ldap://"+addr, tc.op)
			b.ReportMetric(float64(direct.Nanoseconds()), "ns/op-direct")
			b.ReportMetric(float64(proxied.Nanoseconds()), "ns/op-ldapgate")
			b.ReportMetric(float64(direct)/float64(proxied), "x-of-direct-speed")
		})
	}
}
