package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// PEM-encoded, and returns the paths and the certificate's DER bytes.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	write(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile, der
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStartupFailuresNameTheirCause: every configuration that cannot start
// fails check and serve alike, with the key and the cause, a non-zero exit
// and no panic — serve must never get further than check would let it.
func TestStartupFailuresNameTheirCause(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir, "server")
	otherCert, _, _ := selfSigned(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	write(t, garbage, []byte("this is not a certificate\n"))
	underFile := filepath.Join(garbage, "logs", "auth.log") // a regular file where a directory must be

	base := func(extraServer, extraTop string) string {
		return `
directories:
  corp:
    urls: ["ldap://127.0.0.1:389"]
    base_dn: "dc=example,dc=com"
` + extraTop + `
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: "do-not-print-me"}
` + extraServer
	}
	for _, tc := range []struct {
		name string
		cfg  string
		want []string
	}{
		{"directory CA not a certificate", strings.Replace(base("", ""), `base_dn: "dc=example,dc=com"`,
			`base_dn: "dc=example,dc=com"`+"\n    ca_file: "+garbage, 1), []string{"directories.corp.ca_file", "no certificate"}},
		{"Duo CA not a certificate", strings.Replace(base("", ""), `secret_key: "do-not-print-me"}`,
			`secret_key: "do-not-print-me", ca_file: `+garbage+`}`, 1), []string{"servers[0].duo.ca_file", "no certificate"}},
		{"auth log under a file", base("", "auth_log: "+underFile), []string{"auth_log", "not a directory"}},
		{"certificate and key do not match", base("    tls: {cert_file: "+otherCert+", key_file: "+key+"}\n", ""),
			[]string{"servers[0].tls", "private key does not match public key"}},
		{"key file is not a key", base("    tls: {cert_file: "+cert+", key_file: "+garbage+"}\n", ""),
			[]string{"servers[0].tls"}},
		{"localhost beside 127.0.0.1", base(`  - name: wiki
    listen: "localhost:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: "do-not-print-me"}
`, ""), []string{"servers[1].listen", "servers[0].listen"}},
		{"0.0.0.0 beside 127.0.0.1", base(`  - name: wiki
    listen: "0.0.0.0:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: "do-not-print-me"}
`, ""), []string{"servers[1].listen", "servers[0].listen"}},
		{"health on a section's port", base("", `health: {listen: "[::]:1389"}`), []string{"health.listen", "servers[0].listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfig(t, tc.cfg)
			for _, cmd := range []string{"check", "serve"} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				out, code := runCLICtx(t, ctx, cmd, "--config", file)
				cancel()
				if code == 0 {
					t.Fatalf("%s accepted it:\n%s", cmd, out)
				}
				if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
					t.Fatalf("%s panicked:\n%s", cmd, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s output lacks %q:\n%s", cmd, w, out)
					}
				}
				if strings.Contains(out, "do-not-print-me") {
					t.Fatalf("%s printed the secret", cmd)
				}
			}
		})
	}
}

// TestDERCAFileIsAccepted: a CA exported as DER (a Windows .cer) is read as
// it is, for the directory and for Duo; check says ok.
func TestDERCAFileIsAccepted(t *testing.T) {
	dir := t.TempDir()
	_, _, der := selfSigned(t, dir, "ca")
	cer := filepath.Join(dir, "ca.cer")
	write(t, cer, der)
	cfg := strings.Replace(goodConfig, `base_dn: "dc=example,dc=com"`, `base_dn: "dc=example,dc=com"`+"\n    ca_file: "+cer, 1)
	cfg = strings.Replace(cfg, `secret_key: "do-not-print-me"}`, `secret_key: "do-not-print-me", ca_file: `+cer+`}`, 1)
	if out, code := runCLI(t, "check", "--config", writeConfig(t, cfg)); code != 0 {
		t.Fatalf("a DER CA file: code %d\n%s", code, out)
	}
}

// TestSecretFilesReadableByOthersWarn: a secret file other users can read
// is valid (the service still starts) but the audit reports it by key.
func TestSecretFilesReadableByOthersWarn(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "duo.secret")
	write(t, secret, []byte("do-not-print-me\n"))
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(goodConfig, `secret_key: "do-not-print-me"}`, `secret_key_file: `+secret+`}`, 1)
	out, code := runCLI(t, "check", "--config", writeConfig(t, cfg))
	if code != 0 {
		t.Fatalf("check refused a readable secret file (it should warn): %d\n%s", code, out)
	}
	want := "finding: high secret-file-readable servers[0].duo.secret_key_file: " + secret + " is readable by its group and every user (mode 0644)"
	if !strings.Contains(out, want) || strings.Contains(out, "do-not-print-me") {
		t.Fatalf("output lacks %q (or shows the secret):\n%s", want, out)
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _ := runCLI(t, "check", "--config", writeConfig(t, cfg)); strings.Contains(out, "finding") {
		t.Fatalf("a 0600 secret file warned:\n%s", out)
	}
}

// TestCheckStrictAndJSON: findings do not fail check unless --strict;
// --format json carries problems and findings for CI, with the same
// exit status as text.
func TestCheckStrictAndJSON(t *testing.T) {
	weak := writeConfig(t, strings.Replace(goodConfig, "    directory: corp\n", "    directory: corp\n    exempt_primary_bind: true\n", 1))
	if out, code := runCLI(t, "check", "--config", weak); code != 0 || !strings.Contains(out, "finding: high exempt-primary-bind servers[0].exempt_primary_bind") {
		t.Fatalf("a finding without --strict: exit %d\n%s", code, out)
	}
	if _, code := runCLI(t, "check", "--config", weak, "--strict"); code != 1 {
		t.Fatalf("a finding with --strict: exit %d, want 1", code)
	}
	out, code := runCLI(t, "check", "--config", weak, "--format", "json")
	var rep struct {
		Valid    bool
		Findings []struct{ ID, Severity, Path, Message string }
		Problems []struct{ Path, Message string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Valid || len(rep.Findings) != 1 ||
		rep.Findings[0].ID != "exempt-primary-bind" || rep.Findings[0].Severity != "high" || rep.Findings[0].Path != "servers[0].exempt_primary_bind" {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	bad := writeConfig(t, strings.Replace(goodConfig, "    directory: corp\n", "    directory: corp\n    failmode: open\n", 1))
	out, code = runCLI(t, "check", "--config", bad, "--format", "json")
	rep.Problems = nil
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&rep); err != nil || code != 1 || rep.Valid || len(rep.Problems) != 1 ||
		rep.Problems[0].Path != "servers[0].failmode" {
		t.Fatalf("json of an invalid file: exit %d, %v\n%s", code, err, out)
	}
	accepted := writeConfig(t, strings.Replace(goodConfig, "    directory: corp\n", "    directory: corp\n    exempt_primary_bind: true\n", 1)+
		"check: {accept: [exempt-primary-bind]}\n")
	if out, code := runCLI(t, "check", "--config", accepted, "--strict"); code != 0 || strings.Contains(out, "finding") {
		t.Fatalf("an accepted finding: exit %d\n%s", code, out)
	}
}
