package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ldapgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestStartTLS: a section with a certificate upgrades clients; with
// tls.require it refuses binds and operations on a plaintext connection.
func TestStartTLS(t *testing.T) {
	e := start(t, []section{
		{Name: "tls", Failmode: "secure", TLS: true},
		{Name: "required", Failmode: "secure", TLS: true, RequireTLS: true},
		secureSection,
	})
	alice := person(t, "alice")
	clientTLS := &tls.Config{InsecureSkipVerify: true} // the test certificate is self-signed

	t.Run("optional", func(t *testing.T) {
		conn := e.dial("tls")
		if err := conn.StartTLS(clientTLS); err != nil {
			t.Fatalf("StartTLS: %v", err)
		}
		if _, ok := conn.TLSConnectionState(); !ok {
			t.Fatal("not TLS after StartTLS")
		}
		if err := conn.Bind(alice.DN(), alice.Password); err != nil {
			t.Fatalf("bind over TLS: %v", err)
		}
		if err := conn.StartTLS(clientTLS); err == nil {
			t.Fatal("a second StartTLS must be refused")
		}
		if err := e.bind("tls", alice.DN(), alice.Password); err != nil {
			t.Fatalf("plaintext bind on an optional-TLS section: %v", err)
		}
	})
	t.Run("required", func(t *testing.T) {
		e.duo.ResetCalls()
		if err := e.bind("required", alice.DN(), alice.Password); code(err) != ldap.LDAPResultConfidentialityRequired {
			t.Fatalf("plaintext bind: %v, want confidentialityRequired", err)
		}
		if c := e.duo.Calls(); c.Preauth != 0 {
			t.Fatalf("a refused plaintext bind reached Duo: %+v", c)
		}
		conn := e.dial("required")
		if err := conn.StartTLS(clientTLS); err != nil {
			t.Fatalf("StartTLS: %v", err)
		}
		if err := conn.Bind(alice.DN(), alice.Password); err != nil {
			t.Fatalf("bind after StartTLS: %v", err)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		conn := e.dial("secure")
		if err := conn.StartTLS(clientTLS); code(err) != ldap.LDAPResultProtocolError {
			t.Fatalf("StartTLS without a certificate: %v, want protocolError", err)
		}
	})
}
