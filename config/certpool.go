package config

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/ldapgate/ldapgate/internal/certfile"
)

// ErrNoCertificate means a PEM file named by a ca_file (or cert_file) key
// holds no certificate.
var ErrNoCertificate = certfile.ErrNoCertificate

// CertPool reads the PEM file a ca_file key names into a pool. Unlike
// x509.CertPool.AppendCertsFromPEM it refuses a CERTIFICATE block that does
// not parse, so a truncated bundle is an error rather than fewer roots.
func CertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := certfile.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
