package config

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"

	"github.com/ldapgate/ldapgate/internal/certfile"
)

// tlsVersions are the values tls.min_version takes; older ones are named
// so the refusal can say why.
var (
	tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}
	oldVersions = map[string]bool{"1": true, "1.0": true, "1.1": true, "ssl3": true, "3.0": true}
)

func (t *TLS) validate(p *Problems, path string) {
	v, ok := tlsVersions[t.MinVersion]
	switch {
	case ok:
		t.minVersion = v
	case oldVersions[strings.ToLower(t.MinVersion)]:
		p.add(path+".min_version", ErrInvalid, "%s is too old (broken or deprecated protocol versions are refused); allowed 1.2 or 1.3", t.MinVersion)
	default:
		p.add(path+".min_version", ErrInvalid, "%q is not a TLS version; allowed 1.2 or 1.3", t.MinVersion)
	}
	checkKeyPair(p, path, t.CertFile, t.KeyFile)
}

// validateTLS checks what a directory's connections need for TLS: a
// client certificate that loads, a server name, and that neither is set
// where no URL uses TLS (where it would silently do nothing).
func (d *Directory) validateTLS(p *Problems, path string) {
	checkKeyPair(p, path, d.CertFile, d.KeyFile)
	checkTLSServerName(p, path+".tls_server_name", d.TLSServerName)
	if d.usesTLS() {
		return
	}
	for _, key := range []struct{ name, value string }{{"tls_server_name", d.TLSServerName}, {"cert_file", d.CertFile}} {
		if key.value != "" {
			p.add(path+"."+key.name, ErrInvalid, "is set but no URL uses TLS: use ldaps:// URLs or start_tls")
		}
	}
}

// checkTLSServerName checks a tls_server_name key: a host name or IP
// address as a certificate names it; "" is unset.
func checkTLSServerName(p *Problems, path, name string) {
	if name != "" && (strings.ContainsAny(name, " /:@?#") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".")) {
		p.add(path, ErrInvalid, "must be a host name (or IP address) as the certificate names it, without scheme or port")
	}
}

// usesTLS reports whether connections to the directory use TLS: StartTLS,
// or an ldaps:// URL.
func (d *Directory) usesTLS() bool {
	if d.StartTLS {
		return true
	}
	for _, u := range d.URLs {
		if strings.HasPrefix(strings.ToLower(u), "ldaps://") {
			return true
		}
	}
	return false
}

// checkKeyPair checks that cert_file and key_file under path come
// together and load as a matching pair, naming the key at fault.
func checkKeyPair(p *Problems, path, certFile, keyFile string) {
	switch {
	case certFile == "" && keyFile == "":
		return
	case keyFile == "":
		p.add(path+".key_file", ErrRequired, "is required with cert_file")
		return
	case certFile == "":
		p.add(path+".cert_file", ErrRequired, "is required with key_file")
		return
	}
	_, err := certfile.Load(certFile, keyFile)
	var e *certfile.Error
	if err == nil || !errors.As(err, &e) {
		if err != nil {
			p.add(path+".cert_file", ErrInvalid, "%v", err)
		}
		return
	}
	switch e.Part {
	case certfile.Cert:
		p.add(path+".cert_file", ErrInvalid, "%v", e)
	case certfile.Key:
		// The error names the file, never its content.
		p.add(path+".key_file", ErrInvalid, "%v", e)
	default:
		p.add(path+".key_file", ErrInvalid, "is not the key of cert_file %s: %v", certFile, e.Err)
	}
}

// isLoopback reports whether a host name or address stays on this machine.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
