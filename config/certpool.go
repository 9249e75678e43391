package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/ldapgate/ldapgate/internal/certfile"
)

// ErrNoCertificate means a file named by a ca_file (or cert_file) key holds
// no certificate, neither PEM nor DER.
var ErrNoCertificate = certfile.ErrNoCertificate

// CertPool reads the file a ca_file key names into a pool: PEM (one or more
// CERTIFICATE blocks), or DER (one certificate, or several concatenated, as
// a Windows .cer export). Unlike x509.CertPool.AppendCertsFromPEM it
// refuses a CERTIFICATE block that does not parse, so a truncated bundle is
// an error rather than fewer roots; a file that is neither says how to
// convert it.
func CertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := certfile.ParseCertificates(data)
	if errors.Is(err, ErrNoCertificate) {
		return nil, fmt.Errorf("%s: %w; %s", file, err, caHint(file))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
