package config

import (
	"testing"

	"github.com/ldapgate/ldapgate/internal/testca"
)

func TestAuthSyslogDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.AuthSyslog
	if s.Enabled() {
		t.Fatal("auth_syslog is on without an address")
	}
	if s.AppName != "ldapgate" || s.Facility != "authpriv" || s.FacilityCode() != 10 || s.Queue != DefaultAuthSyslogQueue || s.Timeout != DefaultAuthSyslogTimeout {
		t.Errorf("defaults %+v", s)
	}
	cfg, err = Parse(withKey(t, minimal, "auth_syslog.address", "logs.corp.example:6514"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AuthSyslog.Enabled() || cfg.AuthSyslog.ServerName() != "logs.corp.example" {
		t.Errorf("address set: enabled %v, server name %q", cfg.AuthSyslog.Enabled(), cfg.AuthSyslog.ServerName())
	}
}

func TestAuthSyslogValidation(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "syslog")
	caFile := ca.WriteFile(t, dir)
	certFile, keyFile := ca.Client(t, "ldapgate").Write(t, dir, "client")
	type set map[string]any
	const addr = "auth_syslog.address"
	cases := []keyCase{
		{"plain tcp", set{addr: "127.0.0.1:514"}, "", ""},
		{"tls with everything", set{addr: "logs.corp.example:6514", "auth_syslog.tls": true, "auth_syslog.ca_file": caFile,
			"auth_syslog.cert_file": certFile, "auth_syslog.key_file": keyFile, "auth_syslog.tls_server_name": "logs.corp.example",
			"auth_syslog.facility": "local3", "auth_syslog.app_name": "gate-1", "auth_syslog.queue": 100000, "auth_syslog.timeout": "1m"}, "", ""},
		{"no port", set{addr: "logs.corp.example"}, addr, ""},
		{"port 0", set{addr: "logs.corp.example:0"}, addr, ""},
		{"no host", set{addr: ":6514"}, addr, ""},
		{"tls without address", set{"auth_syslog.tls": true}, "auth_syslog.tls", "is set but auth_syslog.address is not: set the syslog server's host:port"},
		{"ca_file without tls", set{addr: "127.0.0.1:514", "auth_syslog.ca_file": caFile}, "auth_syslog.ca_file", "is set but tls is false: set tls: true"},
		{"missing ca_file", set{addr: "127.0.0.1:6514", "auth_syslog.tls": true, "auth_syslog.ca_file": dir + "/nope.pem"}, "auth_syslog.ca_file", ""},
		{"cert without key", set{addr: "127.0.0.1:6514", "auth_syslog.tls": true, "auth_syslog.cert_file": certFile}, "auth_syslog.key_file", "is required with cert_file"},
		{"bad server name", set{addr: "127.0.0.1:6514", "auth_syslog.tls": true, "auth_syslog.tls_server_name": "logs:6514"}, "auth_syslog.tls_server_name", ""},
		{"unknown facility", set{addr: "127.0.0.1:514", "auth_syslog.facility": "security"}, "auth_syslog.facility", ""},
		{"app_name with a space", set{addr: "127.0.0.1:514", "auth_syslog.app_name": "ldap gate"}, "auth_syslog.app_name", ""},
		{"app_name too long", set{addr: "127.0.0.1:514", "auth_syslog.app_name": "a123456789012345678901234567890123456789012345678"}, "auth_syslog.app_name", ""},
		{"queue too big", set{addr: "127.0.0.1:514", "auth_syslog.queue": 100001}, "auth_syslog.queue", "100001 is out of range; allowed 1 to 100000"},
		{"queue negative", set{addr: "127.0.0.1:514", "auth_syslog.queue": -1}, "auth_syslog.queue", "-1 is out of range; allowed 1 to 100000"},
		{"timeout too short", set{addr: "127.0.0.1:514", "auth_syslog.timeout": "10ms"}, "auth_syslog.timeout", "10ms is out of range; allowed 100ms to 1m"},
		{"timeout without unit", set{addr: "127.0.0.1:514", "auth_syslog.timeout": 5}, "auth_syslog.timeout", "5 has no unit; write 5s"},
		{"unknown key", set{addr: "127.0.0.1:514", "auth_syslog.port": 514}, "auth_syslog.port", ""},
	}
	checkKeyCases(t, cases, []error{ErrInvalid, ErrUnknownKey, ErrRequired})
}
