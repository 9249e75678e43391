package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/certfile"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// allowAll is a second factor that approves everyone.
var allowAll = fakeSF{verify: func(context.Context, failmode.Attempt) (failmode.Verdict, error) {
	return failmode.Verdict{Allowed: true}, nil
}}

// tlsWorld is a section serving the in-memory directory with a
// certificate from its own CA, kept by a certfile.Reloader.
type tlsWorld struct {
	ca    *testca.CA
	dir   string // where the certificate files are
	srv   *Server
	plain string // listen's address, "" when the section has none
	ldaps string // ldaps_listen's address, "" when none
}

// serveTLS runs cfg (with a certificate for 127.0.0.1 and min TLS
// version minVersion) on the listeners it names; Listen and LDAPSListen
// are used as given ("127.0.0.1:0" or "").
func serveTLS(t *testing.T, cfg Config, minVersion uint16) *tlsWorld {
	t.Helper()
	w := &tlsWorld{ca: testca.New(t, "proxy test CA"), dir: t.TempDir()}
	certFile, keyFile := w.ca.Loopback(t).Write(t, w.dir, "server")
	certs, err := certfile.New(certFile, keyFile, 20*time.Millisecond, discard())
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: minVersion}
	if cfg.Name == "" {
		cfg.Name = "tls"
	}
	if cfg.Policy == nil {
		cfg.Policy = func() failmode.Policy { return failmode.Policy{Mode: failmode.Secure} }
	}
	cfg.MaxRequestSize = config.DefaultMaxRequestSize
	cfg.MaxBufferedBytes = config.BufferedRequestsFactor * config.DefaultMaxRequestSize
	d := sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t))
	w.srv, err = New(cfg, d, allowAll, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	runTest(t, w.srv)
	if a := w.srv.Addr(); a != nil {
		w.plain = a.String()
	}
	if a := w.srv.LDAPSAddr(); a != nil {
		w.ldaps = a.String()
	}
	return w
}

// client is a TLS configuration trusting the world's CA.
func (w *tlsWorld) client() *tls.Config {
	return &tls.Config{RootCAs: w.ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func (w *tlsWorld) dialLDAPS(t *testing.T, cfg *tls.Config) (*ldap.Conn, error) {
	t.Helper()
	conn, err := ldap.DialURL("ldaps://"+w.ldaps, ldap.DialWithTLSConfig(cfg))
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

func TestLDAPSServesTheSection(t *testing.T) {
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0"}, tls.VersionTLS12)
	alice := person(t, "alice")
	conn, err := w.dialLDAPS(t, w.client())
	if err != nil {
		t.Fatalf("LDAPS with a verifying client: %v", err)
	}
	if st, ok := conn.TLSConnectionState(); !ok || st.PeerCertificates[0].IPAddresses[0].String() != "127.0.0.1" {
		t.Fatalf("not TLS, or not the section's certificate: %v", ok)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("gated bind over LDAPS: %v", err)
	}
	who, err := conn.WhoAmI(nil)
	if err != nil || !strings.EqualFold(who.AuthzID, "dn:"+alice.DN()) {
		t.Fatalf("Who Am I relayed over LDAPS: %+v, %v", who, err)
	}
	if err := conn.StartTLS(w.client()); err == nil {
		t.Fatal("StartTLS on an LDAPS connection must be refused: TLS is already established")
	}
	// The plaintext listener of the same section still offers StartTLS.
	plain := dialProxy(t, w.plain)
	if err := plain.StartTLS(w.client()); err != nil {
		t.Fatalf("StartTLS on listen: %v", err)
	}
	if err := plain.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
}

// TestLDAPSOnlySection: a section may have ldaps_listen alone.
func TestLDAPSOnlySection(t *testing.T) {
	w := serveTLS(t, Config{LDAPSListen: "127.0.0.1:0"}, tls.VersionTLS12)
	if w.plain != "" {
		t.Fatalf("an LDAPS-only section reports a plaintext address %s", w.plain)
	}
	alice := person(t, "alice")
	conn, err := w.dialLDAPS(t, w.client())
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind on an LDAPS-only section: %v", err)
	}
}

// TestRequireTLSAcceptsLDAPS: tls.require counts an LDAPS connection as
// TLS, and still refuses the plaintext listener's binds.
func TestRequireTLSAcceptsLDAPS(t *testing.T) {
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0", RequireTLS: true}, tls.VersionTLS12)
	alice := person(t, "alice")
	conn, err := w.dialLDAPS(t, w.client())
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind over LDAPS with tls.require: %v", err)
	}
	if _, err := conn.Search(ldap.NewSearchRequest(sampledata.PeopleDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(uid=alice)", []string{"uid"}, nil)); err != nil {
		t.Fatalf("search over LDAPS with tls.require: %v", err)
	}
	err = dialProxy(t, w.plain).Bind(alice.DN(), alice.Password)
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired) {
		t.Fatalf("plaintext bind with tls.require: %v, want confidentialityRequired", err)
	}
}

// TestOldTLSRefused: a client that speaks at most TLS 1.1 gets no
// handshake, on LDAPS or with StartTLS; with min_version 1.3 a client of
// at most TLS 1.2 gets none either. The same clients allowed one version
// more are served, so the refusals are about the version.
func TestOldTLSRefused(t *testing.T) {
	for _, tc := range []struct {
		name          string
		min, refused  uint16
		served        uint16
		refusedClient string
	}{
		{"default min_version 1.2 refuses TLS 1.1", tls.VersionTLS12, tls.VersionTLS11, tls.VersionTLS12, "TLS 1.1"},
		{"min_version 1.3 refuses TLS 1.2", tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS13, "TLS 1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0"}, tc.min)
			old := w.client()
			old.MinVersion, old.MaxVersion = tls.VersionTLS10, tc.refused
			if _, err := w.dialLDAPS(t, old); err == nil {
				t.Fatalf("LDAPS: a %s client got a handshake", tc.refusedClient)
			}
			if err := dialProxy(t, w.plain).StartTLS(old); err == nil {
				t.Fatalf("StartTLS: a %s client got a handshake", tc.refusedClient)
			}
			if err := dialProxy(t, w.plain).StartTLS(w.client()); tc.min == tls.VersionTLS12 && err != nil {
				t.Fatalf("StartTLS: a current client was refused: %v", err)
			}
			ok := w.client()
			ok.MaxVersion = tc.served
			conn, err := w.dialLDAPS(t, ok)
			if err != nil {
				t.Fatalf("LDAPS: a client allowed the minimum was refused: %v", err)
			}
			if st, _ := conn.TLSConnectionState(); st.Version != tc.served {
				t.Fatalf("negotiated %x, want %x", st.Version, tc.served)
			}
		})
	}
}

// TestListenersShareTheSection: both listeners are one section, with one
// max_connections.
func TestListenersShareTheSection(t *testing.T) {
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0", MaxConnections: 1}, tls.VersionTLS12)
	alice := person(t, "alice")
	if err := dialProxy(t, w.plain).Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	conn, err := w.dialLDAPS(t, w.client())
	if err == nil {
		err = conn.Bind(alice.DN(), alice.Password)
	}
	if err == nil {
		t.Fatal("a second connection, on ldaps_listen, was served with max_connections 1")
	}
}

// TestCertificateReplacedOnDisk: a certificate replaced on disk is what
// the next LDAPS and StartTLS handshakes see; a session established
// before keeps working, still bound.
func TestCertificateReplacedOnDisk(t *testing.T) {
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0"}, tls.VersionTLS12)
	alice := person(t, "alice")
	established, err := w.dialLDAPS(t, w.client())
	if err != nil {
		t.Fatal(err)
	}
	if err := established.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatal(err)
	}
	first, _ := established.TLSConnectionState()

	next := w.ca.Loopback(t)
	next.Write(t, w.dir, "server")
	served := func() string {
		conn, err := w.dialLDAPS(t, w.client())
		if err != nil {
			t.Fatalf("LDAPS after the certificate changed: %v", err)
		}
		defer conn.Close()
		st, _ := conn.TLSConnectionState()
		return st.PeerCertificates[0].SerialNumber.String()
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return served() == next.Leaf.SerialNumber.String() },
		"a new LDAPS handshake to see the new certificate")
	plain := dialProxy(t, w.plain)
	if err := plain.StartTLS(w.client()); err != nil {
		t.Fatal(err)
	}
	if st, _ := plain.TLSConnectionState(); st.PeerCertificates[0].SerialNumber.Cmp(next.Leaf.SerialNumber) != 0 {
		t.Fatal("StartTLS after the reload presented the old certificate")
	}
	who, err := established.WhoAmI(nil)
	if err != nil || !strings.EqualFold(who.AuthzID, "dn:"+alice.DN()) {
		t.Fatalf("the session established before the reload: %+v, %v", who, err)
	}
	if st, _ := established.TLSConnectionState(); st.PeerCertificates[0].SerialNumber.Cmp(first.PeerCertificates[0].SerialNumber) != 0 {
		t.Fatal("the established session changed certificates")
	}
}

// TestLDAPWhoAmIOverTLS: OpenLDAP's own client verifies the section's
// certificate (LDAPTLS_CACERT) over LDAPS and with StartTLS (-ZZ).
func TestLDAPWhoAmIOverTLS(t *testing.T) {
	if _, err := exec.LookPath("ldapwhoami"); err != nil {
		t.Fatal("ldapwhoami not found: run `make test`, which installs ldap-utils")
	}
	w := serveTLS(t, Config{Listen: "127.0.0.1:0", LDAPSListen: "127.0.0.1:0", RequireTLS: true}, tls.VersionTLS12)
	caFile := w.ca.WriteFile(t, w.dir)
	alice := person(t, "alice")
	for _, args := range [][]string{
		{"-H", "ldaps://" + w.ldaps},
		{"-H", "ldap://" + w.plain, "-ZZ"},
	} {
		cmd := exec.Command("ldapwhoami", append(args, "-x", "-D", alice.DN(), "-w", alice.Password)...)
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+caFile, "LDAPTLS_REQCERT=demand", "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.EqualFold(strings.TrimSpace(string(out)), "dn:"+alice.DN()) {
			t.Errorf("ldapwhoami %v: %v\n%s", args, err, out)
		}
	}
	// Without the CA, OpenLDAP's client refuses the certificate.
	cmd := exec.Command("ldapwhoami", "-H", "ldaps://"+w.ldaps, "-x", "-D", alice.DN(), "-w", alice.Password)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+os.DevNull, "LDAPTLS_REQCERT=demand", "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("ldapwhoami trusted a certificate of an unknown CA:\n%s", out)
	}
}

// TestListenFailureServesNothing: a section whose LDAPS address is taken
// fails to start, naming it, and its plaintext listener is closed again.
func TestListenFailureServesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	plain := testutil.FreeAddr(t)
	ca := testca.New(t, "proxy test CA")
	cfg := Config{Name: "tls", Listen: plain, LDAPSListen: taken.Addr().String(),
		TLS:    &tls.Config{Certificates: []tls.Certificate{ca.Loopback(t).TLS(t)}, MinVersion: tls.VersionTLS12},
		Policy: func() failmode.Policy { return failmode.Policy{Mode: failmode.Secure} }, MaxRequestSize: config.DefaultMaxRequestSize,
		MaxBufferedBytes: config.BufferedRequestsFactor * config.DefaultMaxRequestSize}
	srv, err := New(cfg, sampleDirectory(t, 2*time.Second, lookupPassword(), memoryDirectory(t)), allowAll, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	err = srv.ListenAndServe(context.Background())
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("ListenAndServe with ldaps_listen taken: %v, want an error naming it", err)
	}
	if srv.Ready() {
		t.Fatal("a section that failed to listen says it is ready")
	}
	if c, err := net.Dial("tcp", plain); err == nil {
		c.Close()
		t.Fatalf("the plaintext listener %s stayed open after the section failed", plain)
	}
}
