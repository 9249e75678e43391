package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ldapgate/ldapgate/internal/testca"
)

// tlsFiles writes a good server pair, a client pair, and the key of
// another pair, and returns their paths.
type tlsFiles struct{ cert, key, otherKey, clientCert, clientKey, missing string }

func writeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	ca := testca.New(t, "config test CA")
	dir := t.TempDir()
	var f tlsFiles
	f.cert, f.key = ca.Loopback(t).Write(t, dir, "server")
	_, f.otherKey = ca.Loopback(t).Write(t, dir, "other")
	f.clientCert, f.clientKey = ca.Client(t, "ldapgate").Write(t, dir, "client")
	f.missing = filepath.Join(dir, "missing.pem")
	return f
}

// withServerKeys adds YAML lines to the minimal section (indented as its keys).
func withServerKeys(lines ...string) string {
	return strings.Replace(minimal, "    directory: corp\n", "    directory: corp\n    "+strings.Join(lines, "\n    ")+"\n", 1)
}

// withDirectoryKeys adds YAML lines to the minimal directory.
func withDirectoryKeys(lines ...string) string {
	return strings.Replace(minimal, `    base_dn: "dc=example,dc=com"`+"\n", `    base_dn: "dc=example,dc=com"`+"\n    "+strings.Join(lines, "\n    ")+"\n", 1)
}

func TestTLSConfigProblems(t *testing.T) {
	f := writeTLSFiles(t)
	pair := fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.cert, f.key)
	for _, tc := range []struct {
		name string
		yaml string
		path string // the key the problem must name
		msg  string
		kind error
	}{
		{"ldaps_listen without a certificate", withServerKeys(`ldaps_listen: "127.0.0.1:1636"`),
			"servers[0].ldaps_listen", "needs a certificate", ErrInvalid},
		{"ldaps_listen not host:port", withServerKeys(`ldaps_listen: "nope"`, pair),
			"servers[0].ldaps_listen", "must be host:port", ErrInvalid},
		{"ldaps_listen the same as listen", withServerKeys(`ldaps_listen: "127.0.0.1:1389"`, pair),
			"servers[0].ldaps_listen", `collides with servers[0].listen "127.0.0.1:1389"`, ErrInvalid},
		{"min_version 1.1", withServerKeys(fmt.Sprintf("tls: {cert_file: %q, key_file: %q, min_version: \"1.1\"}", f.cert, f.key)),
			"servers[0].tls.min_version", "1.1 is too old", ErrInvalid},
		{"min_version 1.0 as a YAML number", withServerKeys("tls: {min_version: 1.0}"),
			"servers[0].tls.min_version", "too old", ErrInvalid},
		{"min_version nonsense", withServerKeys(`tls: {min_version: "tls13"}`),
			"servers[0].tls.min_version", "not a TLS version; allowed 1.2 or 1.3", ErrInvalid},
		{"cert_file without key_file", withServerKeys(fmt.Sprintf("tls: {cert_file: %q}", f.cert)),
			"servers[0].tls.key_file", "is required with cert_file", ErrRequired},
		{"key_file without cert_file", withServerKeys(fmt.Sprintf("tls: {key_file: %q}", f.key)),
			"servers[0].tls.cert_file", "is required with key_file", ErrRequired},
		{"unreadable certificate", withServerKeys(fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.missing, f.key)),
			"servers[0].tls.cert_file", "missing.pem", ErrInvalid},
		{"unreadable key", withServerKeys(fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.cert, f.missing)),
			"servers[0].tls.key_file", "missing.pem", ErrInvalid},
		{"key of another certificate", withServerKeys(fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.cert, f.otherKey)),
			"servers[0].tls.key_file", "is not the key of cert_file", ErrInvalid},
		{"a key given as the certificate", withServerKeys(fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.key, f.key)),
			"servers[0].tls.cert_file", "no certificate found", ErrInvalid},
		{"no listener at all", strings.Replace(minimal, "    listen: \"127.0.0.1:1389\"\n", "", 1),
			"servers[0].listen", "or ldaps_listen", ErrRequired},
		{"directory cert_file without key_file", withDirectoryKeys("start_tls: true", fmt.Sprintf("cert_file: %q", f.clientCert)),
			"directories.corp.key_file", "is required with cert_file", ErrRequired},
		{"directory key_file without cert_file", withDirectoryKeys("start_tls: true", fmt.Sprintf("key_file: %q", f.clientKey)),
			"directories.corp.cert_file", "is required with key_file", ErrRequired},
		{"directory key of another certificate", withDirectoryKeys("start_tls: true", fmt.Sprintf("cert_file: %q", f.clientCert), fmt.Sprintf("key_file: %q", f.otherKey)),
			"directories.corp.key_file", "is not the key of cert_file", ErrInvalid},
		{"directory unreadable client certificate", withDirectoryKeys("start_tls: true", fmt.Sprintf("cert_file: %q", f.missing), fmt.Sprintf("key_file: %q", f.clientKey)),
			"directories.corp.cert_file", "missing.pem", ErrInvalid},
		{"directory client certificate without TLS", withDirectoryKeys(fmt.Sprintf("cert_file: %q", f.clientCert), fmt.Sprintf("key_file: %q", f.clientKey)),
			"directories.corp.cert_file", "no URL uses TLS", ErrInvalid},
		{"directory tls_server_name without TLS", withDirectoryKeys("tls_server_name: ldap.example.com"),
			"directories.corp.tls_server_name", "no URL uses TLS", ErrInvalid},
		{"directory tls_server_name with a port", withDirectoryKeys("start_tls: true", "tls_server_name: ldap.example.com:636"),
			"directories.corp.tls_server_name", "must be a host name", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse: %v, want a *ValidationError", err)
			}
			i := slices.IndexFunc(ve.Problems, func(p Problem) bool { return p.Path == tc.path })
			if i < 0 {
				t.Fatalf("no problem at %s:\n%v", tc.path, err)
			}
			if p := ve.Problems[i]; !strings.Contains(p.Msg, tc.msg) || !errors.Is(p, tc.kind) {
				t.Errorf("%s: %q (%v), want it to say %q (%v)", tc.path, p.Msg, p.Err, tc.msg, tc.kind)
			}
		})
	}
}

func TestTLSConfigAccepted(t *testing.T) {
	f := writeTLSFiles(t)
	c, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Servers[0]; s.TLS.MinVersion != DefaultTLSMinVersion || s.TLS.MinTLSVersion() != tls.VersionTLS12 {
		t.Errorf("default min_version %q (%x), want 1.2", s.TLS.MinVersion, s.TLS.MinTLSVersion())
	}
	for _, tc := range []struct {
		name string
		yaml string
		min  uint16
	}{
		{"LDAPS only", strings.Replace(withServerKeys(`ldaps_listen: "127.0.0.1:1636"`, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.cert, f.key)),
			"    listen: \"127.0.0.1:1389\"\n", "", 1), tls.VersionTLS12},
		{"both listeners on port 0", strings.Replace(withServerKeys(`ldaps_listen: "127.0.0.1:0"`, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", f.cert, f.key)),
			`listen: "127.0.0.1:1389"`, `listen: "127.0.0.1:0"`, 1), tls.VersionTLS12},
		{"both listeners, TLS 1.3 as a YAML number", withServerKeys(`ldaps_listen: "127.0.0.1:1636"`,
			fmt.Sprintf("tls: {cert_file: %q, key_file: %q, min_version: 1.3, require: true}", f.cert, f.key)), tls.VersionTLS13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Servers[0].TLS.MinTLSVersion(); got != tc.min {
				t.Errorf("min TLS version %x, want %x", got, tc.min)
			}
		})
	}
	yaml := strings.Replace(minimal, `["ldap://127.0.0.1:389"]`, `["ldaps://10.0.0.5:636"]`, 1)
	yaml = strings.Replace(yaml, `    base_dn: "dc=example,dc=com"`+"\n", fmt.Sprintf(`    base_dn: "dc=example,dc=com"
    tls_server_name: ldap.example.com
    cert_file: %q
    key_file: %q
`, f.clientCert, f.clientKey), 1)
	c, err = Parse([]byte(yaml), noEnv)
	if err != nil {
		t.Fatalf("a directory with a server name and a client certificate: %v", err)
	}
	if d := c.Directories["corp"]; d.TLSServerName != "ldap.example.com" || d.CertFile != f.clientCert {
		t.Errorf("directory TLS keys not read: %+v", d)
	}
}

// TestCleartextFindings: the audit names every hop where a password would
// cross the network in cleartext: a plain listener beyond loopback that
// does not require TLS (with or without a certificate to offer), and an
// ldap:// directory beyond loopback without StartTLS.
func TestCleartextFindings(t *testing.T) {
	f := writeTLSFiles(t)
	pair := fmt.Sprintf("cert_file: %q, key_file: %q", f.cert, f.key)
	public := func(yaml string) string {
		return strings.Replace(yaml, `listen: "127.0.0.1:1389"`, `listen: "0.0.0.0:1389"`, 1)
	}
	for _, tc := range []struct {
		name string
		yaml string
		want []string // path: start of message
	}{
		{"plain listener on loopback", minimal, nil},
		{"plain listener beyond loopback", public(minimal), []string{"servers[0].listen: 0.0.0.0:1389: clients may send passwords in cleartext"}},
		{"StartTLS offered but not required", public(withServerKeys("tls: {" + pair + "}")),
			[]string{"servers[0].listen: 0.0.0.0:1389: clients may send passwords in cleartext"}},
		{"StartTLS required", public(withServerKeys("tls: {" + pair + ", require: true}")), nil},
		{"LDAPS only", strings.Replace(withServerKeys(`ldaps_listen: "0.0.0.0:1636"`, "tls: {"+pair+"}"),
			"    listen: \"127.0.0.1:1389\"\n", "", 1), nil},
		{"remote directory in cleartext", strings.Replace(withServerKeys("tls: {"+pair+", require: true}"),
			`["ldap://127.0.0.1:389"]`, `["ldap://localhost:389", "ldap://dc1.example.com", "ldaps://dc2.example.com", "ldap://[::1]:389", "ldap://10.1.2.3:389"]`, 1),
			[]string{"directories.corp.urls[1]: ldap://dc1.example.com: passwords cross", "directories.corp.urls[4]: ldap://10.1.2.3:389: passwords cross"}},
		{"remote directory with StartTLS", strings.Replace(withDirectoryKeys("start_tls: true"), `["ldap://127.0.0.1:389"]`, `["ldap://dc1.example.com"]`, 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range c.Audit() {
				if strings.HasPrefix(f.ID, "cleartext-") {
					got = append(got, f.Path+": "+f.Message)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("cleartext findings %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, g := range got {
				if !strings.HasPrefix(g, tc.want[i]) {
					t.Errorf("finding %d: %q, want it to start %q", i, g, tc.want[i])
				}
			}
		})
	}
}
