package config

import (
	"cmp"
	"net"
	"strconv"
	"strings"
	"time"
)

// AuthSyslog ships the auth events (what auth_log writes) to a syslog
// server as well: RFC 5424 messages over TCP with octet-counting framing
// (RFC 6587), optionally over TLS (RFC 5425). An empty Address disables it.
// A running process keeps it until restarted.
type AuthSyslog struct {
	// Address is the server's host:port.
	Address string `mapstructure:"address"`
	// TLS speaks TLS to the server (RFC 5425, usually port 6514);
	// verification is always on.
	TLS bool `mapstructure:"tls"`
	// CAFile holds PEM roots for the server's certificate; empty uses the
	// system roots.
	CAFile string `mapstructure:"ca_file"`
	// TLSServerName is the name the server's certificate must carry, for
	// an address that names it by IP address; empty: the address's host.
	TLSServerName string `mapstructure:"tls_server_name"`
	// CertFile and KeyFile are a client certificate for servers that
	// demand one; both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// AppName is RFC 5424's APP-NAME of every message.
	AppName string `mapstructure:"app_name"`
	// Facility is the syslog facility by name (authpriv, auth, local0...).
	Facility string `mapstructure:"facility"`
	// Queue bounds the records waiting to be sent; beyond it new records
	// are dropped (and counted), never waited for.
	Queue int `mapstructure:"queue"`
	// Timeout bounds one connection attempt (with the TLS handshake) and
	// one write.
	Timeout time.Duration `mapstructure:"timeout"`

	// facility is Facility's code, set by validation.
	facility int
}

// syslogFacilities are the facility names auth_syslog.facility takes and
// their codes (RFC 5424 §6.2.1).
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Enabled reports whether auth events are shipped to syslog.
func (s *AuthSyslog) Enabled() bool { return s.Address != "" }

// FacilityCode is Facility's code as parsed by validation.
func (s *AuthSyslog) FacilityCode() int { return s.facility }

// ServerName is the name the server's certificate is checked against.
func (s *AuthSyslog) ServerName() string {
	if s.TLSServerName != "" {
		return s.TLSServerName
	}
	host, _, _ := net.SplitHostPort(s.Address)
	return host
}

func (s *AuthSyslog) applyDefaults() {
	s.AppName = cmp.Or(s.AppName, DefaultAuthSyslogAppName)
	s.Facility = cmp.Or(s.Facility, DefaultAuthSyslogFacility)
	s.Queue = cmp.Or(s.Queue, DefaultAuthSyslogQueue)
	s.Timeout = cmp.Or(s.Timeout, DefaultAuthSyslogTimeout)
}

func (s *AuthSyslog) validate(p *Problems, path string) {
	if code, ok := syslogFacilities[strings.ToLower(s.Facility)]; ok {
		s.facility = code
	} else {
		p.add(path+".facility", ErrInvalid, "%q is not a syslog facility; allowed auth, authpriv, daemon, user, local0 to local7 (or another RFC 5424 name)", s.Facility)
	}
	if n := len(s.AppName); n == 0 || n > MaxAuthSyslogAppName || strings.IndexFunc(s.AppName, notPrintASCII) >= 0 {
		p.add(path+".app_name", ErrInvalid, "must be 1 to %d printable ASCII characters without spaces (RFC 5424 APP-NAME)", MaxAuthSyslogAppName)
	}
	checkCount(p, path+".queue", s.Queue, MinAuthSyslogQueue, MaxAuthSyslogQueue, "")
	checkRange(p, path+".timeout", s.Timeout, MinAuthSyslogTimeout, MaxAuthSyslogTimeout)
	if !s.Enabled() {
		for _, key := range []struct {
			name string
			set  bool
		}{{"tls", s.TLS}, {"ca_file", s.CAFile != ""}, {"tls_server_name", s.TLSServerName != ""}, {"cert_file", s.CertFile != ""}, {"key_file", s.KeyFile != ""}} {
			if key.set {
				p.add(path+"."+key.name, ErrInvalid, "is set but %s.address is not: set the syslog server's host:port", path)
			}
		}
		return
	}
	host, port, err := net.SplitHostPort(s.Address)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || strings.ContainsAny(host, " /") || perr != nil || n < 1 || n > 65535 {
		p.add(path+".address", ErrInvalid, "must be host:port with a port from 1 to 65535 (e.g. logs.example.com:6514)")
	}
	if !s.TLS {
		for _, key := range []struct{ name, value string }{{"ca_file", s.CAFile}, {"tls_server_name", s.TLSServerName}, {"cert_file", s.CertFile}, {"key_file", s.KeyFile}} {
			if key.value != "" {
				p.add(path+"."+key.name, ErrInvalid, "is set but tls is false: set tls: true")
			}
		}
		return
	}
	checkCAFile(p, path+".ca_file", s.CAFile)
	checkKeyPair(p, path, s.CertFile, s.KeyFile)
	checkTLSServerName(p, path+".tls_server_name", s.TLSServerName)
}

// notPrintASCII is true for a rune outside RFC 5424's PRINTUSASCII (33-126).
func notPrintASCII(r rune) bool { return r < 33 || r > 126 }
