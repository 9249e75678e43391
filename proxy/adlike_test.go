package proxy

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// adForest is a small directory that answers like an Active Directory
// domain controller of a two-domain forest: a UPN bind authenticates the
// account of that UPN's domain, Who Am I answers u:DOMAIN\account, and
// msDS-PrincipalName is computed on base-object reads only. Its subtree
// (base_dn DC=corp) holds only CORP's svc-app, which the section exempts.
type adForest struct {
	mu    sync.Mutex
	bound map[int]string // connection → u:DOMAIN\account
}

const (
	corpSvcDN = "CN=svc-app,OU=Service,DC=corp,DC=example"
	adBaseDN  = "DC=corp,DC=example"
)

func startADForest(t *testing.T) string {
	t.Helper()
	f := &adForest{bound: map[int]string{}}
	srv, err := gldap.NewServer(gldap.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	mux, _ := gldap.NewMux()
	_ = mux.Bind(f.bind)
	_ = mux.Search(f.search)
	_ = mux.ExtendedOperation(f.whoAmI, gldap.ExtendedOperationWhoAmI)
	_ = srv.Router(mux)
	go func() { _ = srv.Run("127.0.0.1:0") }()
	t.Cleanup(func() { _ = srv.Stop() })
	testutil.WaitFor(t, 5*time.Second, func() bool { return srv.Addr() != nil }, "the AD-like directory")
	return "ldap://" + srv.Addr().String()
}

func (f *adForest) bind(w *gldap.ResponseWriter, r *gldap.Request) {
	f.mu.Lock()
	delete(f.bound, r.ConnectionID())
	f.mu.Unlock()
	msg, err := r.GetSimpleBindMessage()
	if err != nil || string(msg.Password) != "pw" {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials)))
		return
	}
	account, domain, _ := strings.Cut(msg.UserName, "@")
	var authz string
	switch strings.ToLower(domain) {
	case "corp.example":
		authz = `u:CORP\` + account
	case "other.example": // another domain of the forest, same account name
		authz = `u:OTHER\` + account
	default:
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials)))
		return
	}
	f.mu.Lock()
	f.bound[r.ConnectionID()] = authz
	f.mu.Unlock()
	_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
}

func (f *adForest) whoAmI(w *gldap.ResponseWriter, r *gldap.Request) {
	f.mu.Lock()
	authz := f.bound[r.ConnectionID()]
	f.mu.Unlock()
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	resp.SetResponseValue([]byte(authz))
	_ = w.Write(resp)
}

func (f *adForest) search(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	defer func() { _ = w.Write(done) }()
	msg, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	e := r.NewSearchResponseEntry(corpSvcDN)
	e.AddAttribute("sAMAccountName", []string{"svc-app"})
	switch {
	case msg.Scope == gldap.BaseObject && strings.EqualFold(msg.BaseDN, corpSvcDN):
		e.AddAttribute("msDS-PrincipalName", []string{`CORP\svc-app`})
	case msg.Scope == gldap.WholeSubtree && strings.Contains(msg.Filter, "(sAMAccountName=svc-app)"):
	default:
		return // no groups, nothing else
	}
	_ = w.Write(e)
}

// TestADWhoAmINamesTheDomain: without a lookup account, a bind as
// svc-app@other.example authenticates OTHER\svc-app, while the search by
// name finds CORP's svc-app, the exempt one. The identity must not be
// borrowed across domains: 49, and nothing asked of Duo. The same account of
// CORP is exempt and gets in.
func TestADWhoAmINamesTheDomain(t *testing.T) {
	url := startADForest(t)
	d := newTestDirectory(t, directory.Config{Name: "ad", URLs: []string{url}, BaseDN: adBaseDN,
		UsernameAttribute: "sAMAccountName", MaxConnections: 4,
		UserFilter: func(u, _ string) string { return "(sAMAccountName=" + ldap.EscapeFilter(u) + ")" }})
	var asked []string
	var mu sync.Mutex
	sf := fakeSF{verify: func(_ context.Context, a failmode.Attempt) (failmode.Verdict, error) {
		mu.Lock()
		asked = append(asked, a.Username)
		mu.Unlock()
		return failmode.Verdict{}, nil
	}}
	events := make(chan failmode.BindEvent, 4)
	addr := serveTest(t, Config{Name: "ad", ExemptDNs: []string{corpSvcDN}}, d, sf,
		failmode.RecorderFunc(func(e failmode.BindEvent) { events <- e }))

	bind := func(name string) (error, failmode.BindEvent) {
		conn, err := ldap.DialURL("ldap://" + addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		err = conn.Bind(name, "pw")
		select {
		case ev := <-events:
			return err, ev
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no bind event", name)
		}
		return nil, failmode.BindEvent{}
	}
	err, ev := bind("svc-app@other.example")
	if testutil.ResultCode(err) != ldap.LDAPResultInvalidCredentials || ev.Rule != failmode.RuleIdentityMismatch {
		t.Fatalf("OTHER\\svc-app: %v, rule %q; want 49 identity_mismatch", err, ev.Rule)
	}
	err, ev = bind("svc-app@corp.example")
	if err != nil || ev.Rule != failmode.RuleExempt || !strings.EqualFold(ev.DN, corpSvcDN) {
		t.Fatalf("CORP\\svc-app: %v, rule %q dn %q; want exempt", err, ev.Rule, ev.DN)
	}
	if len(asked) != 0 {
		t.Fatalf("duo was asked about %v", asked)
	}
}
