package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrNoCertificate means a file named by a ca_file key holds no certificate.
var ErrNoCertificate = errors.New("no certificate found (neither PEM nor DER)")

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
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		certs, err := x509.ParseCertificates(data)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("%s: %w; %s", file, ErrNoCertificate, caHint(file))
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}
