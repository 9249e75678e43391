package slapdtest

import (
	"crypto/tls"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/testca"
)

// TestTLS: WithTLS serves LDAPS and StartTLS with the given certificate;
// WithClientCertificates refuses a TLS client without a certificate of
// the CA and serves one with it.
func TestTLS(t *testing.T) {
	ca := testca.New(t, "slapdtest CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, dir, "slapd")
	verify := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	s := Start(t, WithTLS(certFile, keyFile))
	if s.LDAPSURL == "" || s.LDAPSPort == 0 {
		t.Fatal("WithTLS gave no LDAPS URL")
	}
	conn, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(verify))
	if err != nil {
		t.Fatalf("LDAPS: %v", err)
	}
	defer conn.Close()
	if err := conn.Bind(s.RootDN, s.RootPassword); err != nil {
		t.Fatalf("bind over LDAPS: %v", err)
	}
	plain := s.Conn(t, "", "")
	if err := plain.StartTLS(verify); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}

	mtls := Start(t, WithTLS(certFile, keyFile), WithClientCertificates(ca.WriteFile(t, dir)))
	if c, err := ldap.DialURL(mtls.LDAPSURL, ldap.DialWithTLSConfig(verify)); err == nil {
		// TLS 1.3 reports the refusal on the first read.
		err = c.Bind(mtls.RootDN, mtls.RootPassword)
		c.Close()
		if err == nil {
			t.Fatal("a client without a certificate was served with TLSVerifyClient demand")
		}
	}
	withCert := verify.Clone()
	withCert.Certificates = []tls.Certificate{ca.Client(t, "ldapgate").TLS(t)}
	c, err := ldap.DialURL(mtls.LDAPSURL, ldap.DialWithTLSConfig(withCert))
	if err != nil {
		t.Fatalf("LDAPS with a client certificate: %v", err)
	}
	defer c.Close()
	if err := c.Bind(mtls.RootDN, mtls.RootPassword); err != nil {
		t.Fatalf("bind with a client certificate: %v", err)
	}
}
