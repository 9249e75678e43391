package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/certfile"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testca"
)

// TestContractLDAPS and TestContractStartTLS run the contract over TLS
// to a slapd whose certificate the client verifies.
func TestContractLDAPS(t *testing.T) {
	ca := testca.New(t, "directory test CA")
	certFile, keyFile := ca.Loopback(t).Write(t, t.TempDir(), "slapd")
	dir := slapdtest.Start(t, slapdtest.WithTLS(certFile, keyFile))
	contractOver(t, target{URL: dir.LDAPSURL, TLS: verifying(ca)}, dir.Stop)
}

func TestContractStartTLS(t *testing.T) {
	ca := testca.New(t, "directory test CA")
	certFile, keyFile := ca.Loopback(t).Write(t, t.TempDir(), "slapd")
	dir := slapdtest.Start(t, slapdtest.WithTLS(certFile, keyFile))
	contractOver(t, target{URL: dir.URL, TLS: verifying(ca), StartTLS: true}, dir.Stop)
}

// verifying is the TLS configuration wire.go builds: the CA as roots,
// verification on.
func verifying(ca *testca.CA) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

func (tg target) String() string {
	if tg.StartTLS {
		return tg.URL + " with StartTLS"
	}
	return tg.URL
}

// lookupOver is a lookup-account client reaching dir as tg says.
func lookupOver(t *testing.T, tg target, serverName string) *Client {
	t.Helper()
	c := tg.with(Config{BindDN: lookupDN(), BindPassword: lookupPassword()})
	c.ServerName = serverName
	return newTestClient(t, c)
}

func lookupDN() string {
	svc, _ := sampledata.LookupService("ldapgate")
	return svc.DN()
}

// usable reports whether d can find alice: the whole path, TLS
// handshake, lookup bind and search.
func usable(d *Client) error {
	_, err := d.FindUser(context.Background(), nil, "alice")
	return err
}

// TestDirectoryCertificateVerified: a certificate of another CA, or one
// for another name, is refused on LDAPS and StartTLS, as an outage
// (never as the directory's answer nor a refused lookup account); with
// tls_server_name naming the certificate's name it is accepted.
func TestDirectoryCertificateVerified(t *testing.T) {
	ca := testca.New(t, "directory test CA")
	tmp := t.TempDir()
	certFile, keyFile := ca.Server(t, "ldap.example.com").Write(t, tmp, "wrongname")
	dir := slapdtest.Start(t, slapdtest.WithTLS(certFile, keyFile))
	other := testca.New(t, "someone else's CA")

	for _, tg := range []target{
		{URL: dir.LDAPSURL, TLS: verifying(ca)},
		{URL: dir.URL, TLS: verifying(ca), StartTLS: true},
	} {
		t.Run(tg.String(), func(t *testing.T) {
			// go-ldap's StartTLS keeps only the text of the handshake
			// error, so its cause is checked on LDAPS alone.
			err := usable(lookupOver(t, tg, ""))
			var hostErr x509.HostnameError
			if !IsUnavailable(err) || (!tg.StartTLS && !errors.As(err, &hostErr)) {
				t.Fatalf("a certificate for ldap.example.com at 127.0.0.1: %v, want an outage caused by a hostname mismatch", err)
			}
			if _, answered := Answered(err); answered || errors.Is(err, ErrLookupAccount) {
				t.Fatalf("a TLS failure reads as the directory's answer: %v", err)
			}
			if err := usable(lookupOver(t, tg, "ldap.example.com")); err != nil {
				t.Fatalf("with tls_server_name ldap.example.com: %v", err)
			}
			if err := usable(lookupOver(t, tg, "other.example.com")); err == nil {
				t.Fatal("tls_server_name naming another host was accepted")
			}
			untrusted := tg
			untrusted.TLS = verifying(other)
			err = usable(lookupOver(t, untrusted, "ldap.example.com"))
			var authErr x509.UnknownAuthorityError
			if !IsUnavailable(err) || (!tg.StartTLS && !errors.As(err, &authErr)) {
				t.Fatalf("a certificate of an unknown CA: %v, want an outage caused by the unknown authority", err)
			}
		})
	}
}

// TestNoVerificationSwitch: a TLS configuration that skips verification
// is refused, and so is TLS without a configuration.
func TestNoVerificationSwitch(t *testing.T) {
	base := Config{Name: "x", URLs: []string{"ldaps://127.0.0.1:636"}, Timeout: time.Second, MaxConnections: 1,
		UsernameAttribute: "uid", UserFilter: func(string, string) string { return "" }, GroupFilter: func(string) string { return "" }}
	skip := base
	skip.TLS = &tls.Config{InsecureSkipVerify: true}
	if _, err := New(skip, discard()); err == nil {
		t.Fatal("New accepted InsecureSkipVerify")
	}
	if _, err := New(base, discard()); err == nil {
		t.Fatal("New accepted ldaps:// without a TLS configuration")
	}
}

// TestMutualTLS: a slapd that demands client certificates refuses the
// client without one (an outage, not an answer) and serves it with
// directories.NAME.cert_file/key_file, over LDAPS and StartTLS.
func TestMutualTLS(t *testing.T) {
	ca := testca.New(t, "directory test CA")
	tmp := t.TempDir()
	certFile, keyFile := ca.Loopback(t).Write(t, tmp, "slapd")
	dir := slapdtest.Start(t, slapdtest.WithTLS(certFile, keyFile), slapdtest.WithClientCertificates(ca.WriteFile(t, tmp)))
	clientCert, clientKey := ca.Client(t, "ldapgate").Write(t, tmp, "client")
	reloader, err := certfile.New(clientCert, clientKey, time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range []target{
		{URL: dir.LDAPSURL, TLS: verifying(ca)},
		{URL: dir.URL, TLS: verifying(ca), StartTLS: true},
	} {
		t.Run(tg.String(), func(t *testing.T) {
			err := usable(lookupOver(t, tg, ""))
			if err == nil || !IsUnavailable(err) || errors.Is(err, ErrLookupAccount) {
				t.Fatalf("without a client certificate: %v, want an outage", err)
			}
			with := tg
			with.TLS = verifying(ca)
			with.TLS.GetClientCertificate = reloader.GetClientCertificate
			if err := usable(lookupOver(t, with, "")); err != nil {
				t.Fatalf("with a client certificate: %v", err)
			}
		})
	}
}
