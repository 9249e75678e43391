// Package certfile loads a TLS certificate and its key from PEM files and
// keeps them current: a Reloader hands the pair to crypto/tls through
// GetCertificate (servers) or GetClientCertificate (clients), re-reads the
// files when their modification time or size changes (checked at most once
// per interval, on a handshake and by Run), and on Reload (SIGHUP). A pair that fails
// to load keeps the previous one in use and is logged naming its files, so
// a botched deployment never takes TLS down. Established connections are
// never touched: only new handshakes see a new certificate.
package certfile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Part says which half of a pair an Error is about.
type Part int

const (
	// Cert: the certificate file cannot be read or holds no usable certificate.
	Cert Part = iota + 1
	// Key: the key file cannot be read or holds no private key.
	Key
	// Pair: the key does not belong to the certificate (or cannot be used with it).
	Pair
)

// Sentinels an Error wraps when the file was read but its content is wrong.
var (
	ErrNoCertificate = errors.New("no certificate found (neither PEM nor DER)")
	ErrNoKey         = errors.New("no PEM private key found")
)

// Error is a pair that failed to load, with the file it is about.
type Error struct {
	Part Part
	File string // the certificate file for Cert and Pair, the key file for Key
	Err  error
}

func (e *Error) Error() string {
	if e.Part == Pair {
		return fmt.Sprintf("%s: key does not match the certificate: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads the certificate chain in certFile and the private key in
// keyFile and checks that they belong together. Errors are *Error. The
// key's content never appears in an error.
func Load(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &Error{Part: Cert, File: certFile, Err: err}
	}
	if _, err := ParseCertificates(certPEM); err != nil {
		return tls.Certificate{}, &Error{Part: Cert, File: certFile, Err: err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &Error{Part: Key, File: keyFile, Err: err}
	}
	if !hasKey(keyPEM) {
		return tls.Certificate{}, &Error{Part: Key, File: keyFile, Err: ErrNoKey}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &Error{Part: Pair, File: certFile, Err: err}
	}
	return pair, nil
}

// ParseCertificates returns the certificates of the CERTIFICATE blocks in
// PEM data, or of DER data (one certificate or several concatenated, as a
// Windows .cer export) when there is no PEM block. Unlike
// x509.CertPool.AppendCertsFromPEM it refuses a block that does not parse,
// so a truncated bundle is an error rather than fewer certificates; no
// certificate at all is ErrNoCertificate.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		der, err := x509.ParseCertificates(data)
		if err != nil || len(der) == 0 {
			return nil, ErrNoCertificate
		}
		certs = der
	}
	return certs, nil
}

func hasKey(data []byte) bool {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return false
		}
		if block.Type == "PRIVATE KEY" || strings.HasSuffix(block.Type, " PRIVATE KEY") {
			return true
		}
	}
}

// Reloader serves the pair in two files and follows changes to them. Its
// methods are safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	// mu serializes loading; handshakes never wait for it (TryLock).
	mu      sync.Mutex
	stamp   stamp     // of the files at the last load attempt
	checked time.Time // when the files were last looked at
}

// stamp is what tells that a file changed: modification time and size.
type stamp struct {
	certMod, keyMod   int64 // UnixNano
	certSize, keySize int64
}

// New loads the pair and returns a Reloader serving it. interval bounds
// how often a handshake looks at the files (config owns its value).
func New(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*Reloader, error) {
	if interval <= 0 {
		return nil, errors.New("certfile: the check interval must be positive")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: interval,
		log: log.With("cert_file", certFile, "key_file", keyFile)}
	st, _ := r.stat()
	pair, err := Load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert.Store(&pair)
	r.stamp, r.checked = st, time.Now()
	return r, nil
}

// Reload reads the pair again now, whether or not the files changed (the
// SIGHUP path). On failure the previous pair stays in use; the error (an
// *Error) is logged and returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, _ := r.stat()
	return r.loadLocked(st)
}

// GetCertificate is tls.Config.GetCertificate: the current pair, after
// looking for a change if the interval has passed.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.poll()
	return r.cert.Load(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate, for a client
// that presents the pair (mutual TLS towards a directory).
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	r.poll()
	return r.cert.Load(), nil
}

// Run looks at the files every interval until ctx ends, so that a change
// is loaded (or a bad pair logged) even while no handshake happens.
// Handshakes look on their own too; Run is not needed for a reload.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.poll()
		}
	}
}

// Current is the pair in use now.
func (r *Reloader) Current() *tls.Certificate { return r.cert.Load() }

// poll reloads the pair when the interval has passed and the files'
// stamp changed. A handshake that finds another one checking goes on with
// the current pair.
func (r *Reloader) poll() {
	if !r.mu.TryLock() {
		return
	}
	defer r.mu.Unlock()
	if time.Since(r.checked) < r.interval {
		return
	}
	r.checked = time.Now()
	st, err := r.stat()
	if err != nil || st == r.stamp {
		// A file that cannot be stat'ed now (mid-rename) is looked at
		// again next interval; the current pair stays.
		return
	}
	_ = r.loadLocked(st)
}

// loadLocked loads the pair and records st as seen, whether it loaded or
// not: a bad pair is logged once, and tried again when the files change.
func (r *Reloader) loadLocked(st stamp) error {
	r.stamp, r.checked = st, time.Now()
	pair, err := Load(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("TLS certificate not reloaded; the previous one stays in use", "err", err)
		return err
	}
	r.cert.Store(&pair)
	attrs := []any{}
	if leaf := pair.Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	r.log.Info("TLS certificate loaded", attrs...)
	return nil
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: c.ModTime().UnixNano(), keyMod: k.ModTime().UnixNano(), certSize: c.Size(), keySize: k.Size()}, nil
}
