package integration

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

// TestFailedBindsDoNotExhaustTheDirectory: 2,000 clients that each send a
// failed bind and stay connected, in front of a slapd limited to 1,024
// descriptors. Clients that never proved a password share the directory's
// bounded pool instead of holding a connection each, so slapd keeps
// answering a direct client and a legitimate bind through ldapgate still
// succeeds.
func TestFailedBindsDoNotExhaustTheDirectory(t *testing.T) {
	const clients, workers = 2000, 50
	sec := secureSection
	sec.Extra = map[string]any{"max_connections_per_ip": clients + 100, "max_connections": clients + 100,
		// Throttling would refuse these failed binds before the directory:
		// this test is about the directory pool, so it sets it out of reach.
		"throttle": map[string]any{"per_user_address": 10000, "per_address": 10000}}
	e := start(t, []section{sec}, withSlapd(slapdtest.WithNoFile(1024)))
	alice := person(t, "alice")

	var (
		mu    sync.Mutex
		conns []*ldap.Conn
		codes = map[int]int{}
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	next := make(chan int, clients)
	for i := range clients {
		next <- i
	}
	close(next)
	deadline := time.Now().Add(2 * time.Minute)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if time.Now().After(deadline) {
					return
				}
				c, err := ldap.DialURL("ldap://"+e.addr[sec.Name], ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
				if err != nil {
					mu.Lock()
					codes[-1]++
					mu.Unlock()
					continue
				}
				c.SetTimeout(10 * time.Second)
				err = c.Bind(alice.DN(), "wrong password")
				mu.Lock()
				codes[code(err)]++
				conns = append(conns, c) // stays connected
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d clients connected; bind results by code: %v", len(conns), codes)
	if codes[ldap.LDAPResultInvalidCredentials] == 0 {
		t.Fatalf("no failed bind reached the directory: %v", codes)
	}

	// The directory still answers everyone else.
	direct, err := ldap.DialURL(e.slapd.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("direct client cannot reach slapd: %v", err)
	}
	defer direct.Close()
	direct.SetTimeout(5 * time.Second)
	if err := direct.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("direct bind to slapd: %v", err)
	}
	if _, err := direct.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", nil, nil)); err != nil {
		t.Fatalf("direct search on slapd: %v", err)
	}
	// And a legitimate login through ldapgate succeeds.
	if err := e.bind(sec.Name, alice.DN(), alice.Password); err != nil {
		t.Fatalf("legitimate bind through ldapgate with %d failed clients connected: %v", len(conns), err)
	}
	if codes[-1] > 0 || len(conns) < clients {
		t.Errorf("%d of %d clients could not connect to ldapgate", clients-len(conns), clients)
	}
}
