package app

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// listenLines reads the JSON "listening" lines and remembers each
// section's plaintext and LDAPS (tls=ldaps) addresses.
type listenLines struct {
	mu    sync.Mutex
	plain map[string]string
	ldaps map[string]string
}

func readListenLines(r io.Reader) *listenLines {
	l := &listenLines{plain: map[string]string{}, ldaps: map[string]string{}}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var rec struct{ Msg, Addr, Server, TLS string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "listening" {
				continue
			}
			l.mu.Lock()
			if rec.TLS == "ldaps" {
				l.ldaps[rec.Server] = rec.Addr
			} else {
				l.plain[rec.Server] = rec.Addr
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *listenLines) get(server string) (plain, ldaps string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.plain[server], l.ldaps[server]
}

// TestServeTLSBothSides runs the program in-process with TLS on both
// sides: a section with listen (StartTLS, required) and ldaps_listen,
// whose addresses it logs, before a slapd reached over LDAPS whose
// certificate names another host (tls_server_name) and which demands a
// client certificate (cert_file/key_file). ldapgate try drives it with
// --ldaps, --starttls and --ca-file.
func TestServeTLSBothSides(t *testing.T) {
	ca := testca.New(t, "app test CA")
	tmp := t.TempDir()
	caFile := ca.WriteFile(t, tmp)
	slapdCert, slapdKey := ca.Server(t, "ldap.example.com").Write(t, tmp, "slapd")
	dir := slapdtest.Start(t, slapdtest.WithTLS(slapdCert, slapdKey), slapdtest.WithClientCertificates(caFile))
	clientCert, clientKey := ca.Client(t, "ldapgate").Write(t, tmp, "client")
	gateCert, gateKey := ca.Loopback(t).Write(t, tmp, "gate")

	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	duoCA := filepath.Join(tmp, "duo-ca.pem")
	if err := os.WriteFile(duoCA, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, _ := sampledata.LookupService("ldapgate")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
directories:
  sample:
    urls: [%q]
    ca_file: %q
    tls_server_name: ldap.example.com
    cert_file: %q
    key_file: %q
    base_dn: %q
    bind_dn: %q
    bind_password: %q
    username_attribute: uid
    timeout: 2s
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    ldaps_listen: "127.0.0.1:0"
    tls: {cert_file: %q, key_file: %q, require: true, min_version: "1.2"}
    directory: sample
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}
`, dir.LDAPSURL, caFile, clientCert, clientKey, sampledata.BaseDN, svc.DN(), svc.Password,
		gateCert, gateKey, sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), duoCA))

	logR, logW := io.Pipe()
	lines := readListenLines(logR)
	serveInProcess(t, cfg, logW)
	testutil.WaitFor(t, 10*time.Second, func() bool { p, l := lines.get("vpn"); return p != "" && l != "" },
		"both listeners of vpn to log their addresses")
	plain, ldaps := lines.get("vpn")
	if plain == ldaps || strings.HasSuffix(ldaps, ":0") {
		t.Fatalf("listen %s, ldaps_listen %s: want two bound addresses", plain, ldaps)
	}

	alice, _ := sampledata.Lookup("alice")
	conn, err := ldap.DialURL("ldaps://"+ldaps, ldap.DialWithTLSConfig(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("LDAPS to ldapgate: %v", err)
	}
	defer conn.Close()
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("gated bind over LDAPS, checked over mutual TLS upstream: %v", err)
	}

	try := func(args ...string) (string, int) {
		t.Helper()
		return runCLI(t, append([]string{"try", "--dn", alice.DN(), "--password", alice.Password, "--timeout", "20s"}, args...)...)
	}
	for _, args := range [][]string{
		{"--url", "ldap://" + ldaps, "--ldaps", "--ca-file", caFile},
		{"--url", "ldaps://" + ldaps, "--ca-file", caFile},
		{"--url", "ldap://" + plain, "--starttls", "--ca-file", caFile},
	} {
		if out, code := try(args...); code != 0 || !strings.EqualFold(strings.TrimSpace(out), "dn:"+alice.DN()) {
			t.Errorf("try %v: exit %d\n%s", args, code, out)
		}
	}
	if out, code := try("--url", "ldap://"+plain); code != int(ldap.LDAPResultConfidentialityRequired) {
		t.Errorf("try in cleartext with tls.require: exit %d, want 13\n%s", code, out)
	}
	if out, code := try("--url", "ldaps://"+ldaps); code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("try without the CA: exit %d, want 1 and a certificate error\n%s", code, out)
	}
	for _, args := range [][]string{
		{"--url", "ldap://" + plain, "--starttls", "--ldaps"},
		{"--url", "ldaps://" + ldaps, "--starttls"},
		{"--url", "ldap://" + plain, "--ca-file", caFile},
	} {
		if out, code := try(args...); code != 2 {
			t.Errorf("try %v: exit %d, want 2 (usage)\n%s", args, code, out)
		}
	}
}

// TestCheckWarnsAboutCleartext: check passes a valid file but its audit
// names, with the key path, every hop a password would cross in cleartext.
func TestCheckWarnsAboutCleartext(t *testing.T) {
	public := strings.Replace(goodConfig, `listen: "127.0.0.1:1389"`, `listen: "0.0.0.0:1389"`, 1)
	out, code := runCLI(t, "check", "--config", writeConfig(t, public))
	if code != 0 || !strings.Contains(out, "finding: medium cleartext-client-listener servers[0].listen: 0.0.0.0:1389: clients may send passwords in cleartext") {
		t.Fatalf("plain listener: exit %d\n%s", code, out)
	}
	remote := strings.Replace(goodConfig, "ldap://127.0.0.1:389", "ldap://dc1.example.com:389", 1)
	out, code = runCLI(t, "check", "--config", writeConfig(t, remote))
	if code != 0 || !strings.Contains(out, "finding: medium cleartext-directory directories.corp.urls[0]: ldap://dc1.example.com:389: passwords cross the network") {
		t.Fatalf("remote cleartext directory: exit %d\n%s", code, out)
	}

	ca := testca.New(t, "app test CA")
	certFile, keyFile := ca.Loopback(t).Write(t, t.TempDir(), "gate")
	secure := strings.Replace(goodConfig, "    directory: corp\n",
		fmt.Sprintf("    directory: corp\n    tls: {cert_file: %q, key_file: %q, require: true}\n", certFile, keyFile), 1)
	out, code = runCLI(t, "check", "--config", writeConfig(t, secure))
	if code != 0 || strings.Contains(out, "finding") {
		t.Fatalf("TLS required, loopback directory: exit %d, want no finding\n%s", code, out)
	}
	bad := strings.Replace(secure, "require: true", `require: true, min_version: "1.1"`, 1)
	out, code = runCLI(t, "check", "--config", writeConfig(t, bad))
	if code != 1 || !strings.Contains(out, "servers[0].tls.min_version: 1.1 is too old") {
		t.Fatalf("min_version 1.1: exit %d\n%s", code, out)
	}
}

// TestReloadCertificates: reloadCertificates (the SIGHUP path) reads
// every pair again, section and directory alike, and reports a pair that
// fails while keeping the one in use.
func TestReloadCertificates(t *testing.T) {
	ca := testca.New(t, "app test CA")
	tmp := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, tmp, "gate")
	clientCert, clientKey := ca.Client(t, "ldapgate").Write(t, tmp, "client")
	body := strings.Replace(goodConfig, "    directory: corp\n",
		fmt.Sprintf("    directory: corp\n    tls: {cert_file: %q, key_file: %q}\n", certFile, keyFile), 1)
	body = strings.Replace(body, `    base_dn: "dc=example,dc=com"`,
		fmt.Sprintf("    base_dn: \"dc=example,dc=com\"\n    start_tls: true\n    cert_file: %q\n    key_file: %q", clientCert, clientKey), 1)
	cfg, err := config.Load(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	a, err := assemble(cfg, newLogger(io.Discard, cfg.Log))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if len(a.state().certs) != 2 {
		t.Fatalf("%d certificate pairs followed, want 2 (the section's, the directory's client certificate)", len(a.state().certs))
	}
	server, client := ca.Loopback(t), ca.Client(t, "ldapgate")
	server.Write(t, tmp, "gate")
	client.Write(t, tmp, "client")
	if err := a.reloadCertificates(); err != nil {
		t.Fatal(err)
	}
	// Directories are wired before sections.
	for i, want := range []*testca.Pair{&client, &server} {
		if got := a.state().certs[i].Current().Leaf.SerialNumber; got.Cmp(want.Leaf.SerialNumber) != 0 {
			t.Errorf("pair %d: serial %s after reload, want %s", i, got, want.Leaf.SerialNumber)
		}
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reloadCertificates(); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("reload with a broken key: %v, want an error naming %s", err, keyFile)
	}
	if got := a.state().certs[1].Current().Leaf.SerialNumber; got.Cmp(server.Leaf.SerialNumber) != 0 {
		t.Fatal("a failed reload replaced the pair in use")
	}
}
