package duoclient

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// LoadRootCAs reads a PEM file of CA certificates into a pool for
// Config.RootCAs. It fails when the file holds no certificate or a
// CERTIFICATE block that does not parse; other blocks are ignored.
func LoadRootCAs(pemFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, fmt.Errorf("duo root CAs: %w", err)
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
			return nil, fmt.Errorf("duo root CAs %s: certificate %d: %w", pemFile, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("duo root CAs %s: %w", pemFile, errNoCertificate)
	}
	return pool, nil
}

var errNoCertificate = errors.New("no PEM certificate found")
