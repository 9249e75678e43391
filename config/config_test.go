package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

const minimal = `
directories:
  corp:
    urls: ["ldap://127.0.0.1:389"]
    base_dn: "dc=example,dc=com"
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo:
      api_host: api-test.duosecurity.com
      integration_key: DIXXXXXXXXXXXXXXXXXX
      secret_key: "s3cr3t-value-never-printed"
`

func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestMinimalDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Servers[0]
	if s.Failmode != string(failmode.Secure) {
		t.Errorf("failmode default %q, want secure", s.Failmode)
	}
	if s.ExemptPrimaryBind {
		t.Error("exempt_primary_bind must default to false")
	}
	if s.Delimiter() != "," || s.Factor != "auto" || s.AllowAnonymous {
		t.Errorf("bad defaults: delimiter %q factor %q anonymous %v", s.Delimiter(), s.Factor, s.AllowAnonymous)
	}
	if s.Duo.Timeout != 10*time.Second || s.Duo.PushTimeout != 60*time.Second || s.Duo.UnreachableAfter != 3 {
		t.Errorf("bad duo defaults: %+v", s.Duo)
	}
	d := c.Directories["corp"]
	if d.Name != "corp" || d.Timeout != 10*time.Second || d.UsernameAttribute != "sAMAccountName" || d.GroupFilter != "(member={dn})" {
		t.Errorf("bad directory defaults: %+v", d)
	}
	if c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("bad log defaults: %+v", c.Log)
	}
}

func TestEmptyDelimiterDisablesPasscodes(t *testing.T) {
	c, err := Parse([]byte(minimal+"    passcode_delimiter: \"\"\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Servers[0].Delimiter(); got != "" {
		t.Fatalf("delimiter %q, want disabled", got)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example points secrets at files that exist only on a real host;
	// the environment supplies them here, as it may in production.
	c, err := Parse(data, envMap(map[string]string{
		"LDAPGATE_DIRECTORIES_CORP_BIND_PASSWORD": "pw",
		"LDAPGATE_SERVERS_VPN_DUO_SECRET_KEY":     "sk",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Servers[0].Duo.SecretKey.Reveal() != "sk" || c.Directories["corp"].BindPassword.Reveal() != "pw" {
		t.Fatal("environment secrets not applied")
	}
}

func TestEveryProblemNamedByPath(t *testing.T) {
	bad := `
log: {level: loud, format: xml}
directories:
  corp:
    urls: ["http://x", "ldaps://dc:636"]
    start_tls: true
    base_dn: "not a dn"
    bind_dn: "cn=svc,dc=example,dc=com"
    group_filter: "(member=x)"
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo: {api_host: "https://api.example.com", integration_key: DI1, secret_key: k}
  - name: VPN2
    listen: "nope"
    directory: missing
    failmode: open
    factor: sms
    secure_groups: ["garbage"]
    passcode_delimiter: "1"
    duo: {timeout: -1s}
`
	_, err := Parse([]byte(bad), noEnv)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{
		"log.level: must be",
		"log.format: must be",
		"directories.corp.urls[0]: must be ldap://",
		"directories.corp.urls[1]: start_tls cannot be used with ldaps://",
		"directories.corp.base_dn: not a valid DN",
		"directories.corp.bind_password: bind_dn needs bind_password",
		"directories.corp.group_filter: must contain {dn}",
		"servers[0].duo.api_host: must be a host name",
		"servers[1].name: must be",
		"servers[1].listen: must be host:port",
		"servers[1].directory: no directory named \"missing\"",
		"servers[1].failmode: must be safe or secure",
		"servers[1].factor: must be auto, push or phone",
		"servers[1].secure_groups[0]: not a valid DN",
		"servers[1].passcode_delimiter: must be",
		"servers[1].duo.api_host: is required",
		"servers[1].duo.integration_key: is required",
		"servers[1].duo.secret_key: is required",
		"servers[1].duo.timeout: -1s is out of range; allowed 1s to 2m",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ve.Problems), len(want), msg)
	}
	if !errors.Is(err, ErrRequired) || !errors.Is(err, ErrInvalid) {
		t.Error("problems must wrap their sentinels")
	}
}

func TestUnknownKeysAreErrors(t *testing.T) {
	bad := strings.Replace(minimal, "    directory: corp\n", "    directory: corp\n    failmod: safe\n    failmode: open\n", 1)
	bad = strings.Replace(bad, "    base_dn:", "    hots: x\n    base_dn:", 1)
	bad += "bogus: 1\n"
	_, err := Parse([]byte(bad), noEnv)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want unknown key errors, got %v", err)
	}
	for _, w := range []string{"servers[0].failmod: unknown key", "directories.corp.hots: unknown key", "bogus: unknown key",
		// What did decode is validated in the same run.
		"servers[0].failmode: must be safe or secure"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

func TestBadDurationNamed(t *testing.T) {
	bad := strings.Replace(minimal, "      secret_key:", "      timeout: soon\n      secret_key:", 1)
	_, err := Parse([]byte(bad), noEnv)
	if err == nil || !strings.Contains(err.Error(), "servers[0].duo.timeout") {
		t.Fatalf("want the duration problem named by path, got %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, *c.Servers[0]); strings.Contains(out, "s3cr3t") {
			t.Errorf("%s printed the secret: %s", format, out)
		}
	}
	// A problem elsewhere must not drag the secret into the error either.
	_, err = Parse([]byte(strings.Replace(minimal, "failmode", "x", 1)+"    failmode: nope\n"), noEnv)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v", err)
	}
}

func TestSecretSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "skey")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := strings.Replace(minimal, `secret_key: "s3cr3t-value-never-printed"`, "secret_key_file: "+file, 1)

	c, err := Parse([]byte(fromFile), noEnv)
	if err != nil || c.Servers[0].Duo.SecretKey.Reveal() != "from-file" {
		t.Fatalf("file secret: %v %q", err, c.Servers[0].Duo.SecretKey.Reveal())
	}
	c, err = Parse([]byte(fromFile), envMap(map[string]string{"LDAPGATE_SERVERS_VPN_DUO_SECRET_KEY": "from-env"}))
	if err != nil || c.Servers[0].Duo.SecretKey.Reveal() != "from-env" {
		t.Fatalf("environment must win: %v", err)
	}
	both := strings.Replace(minimal, `secret_key: "s3cr3t-value-never-printed"`, "secret_key: x\n      secret_key_file: "+file, 1)
	if _, err := Parse([]byte(both), noEnv); err == nil || !strings.Contains(err.Error(), "servers[0].duo.secret_key: set both") {
		t.Fatalf("inline and file together must be refused, got %v", err)
	}
	missing := strings.Replace(minimal, `secret_key: "s3cr3t-value-never-printed"`, "secret_key_file: "+filepath.Join(dir, "nope"), 1)
	if _, err := Parse([]byte(missing), noEnv); err == nil || !strings.Contains(err.Error(), "servers[0].duo.secret_key_file") {
		t.Fatalf("missing file must be named, got %v", err)
	}
}

func TestEnvOverridesTopLevel(t *testing.T) {
	c, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "info" {
		t.Fatal("baseline")
	}
	t.Setenv("LDAPGATE_LOG_LEVEL", "debug")
	c, err = Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" {
		t.Fatalf("LDAPGATE_LOG_LEVEL not applied: %q", c.Log.Level)
	}
}

func TestFilters(t *testing.T) {
	d := &Directory{UsernameAttribute: "uid", UserFilter: DefaultUserFilter, GroupFilter: DefaultGroupFilter}
	if got := d.ExpandUserFilter("a*)(uid=*", "x"); got != `(uid=a\2a\29\28uid=\2a)` {
		t.Errorf("user filter not escaped: %s", got)
	}
	if got := d.ExpandGroupFilter("cn=a(b),dc=x"); got != `(member=cn=a\28b\29,dc=x)` {
		t.Errorf("group filter not escaped: %s", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestAdminSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("admin: {socket: /run/x.sock}\nservers: [{name: a, duo: {secret_key_file: /nope}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := AdminSocket(path); err != nil || got != "/run/x.sock" {
		t.Fatalf("got %q %v", got, err)
	}
	if err := os.WriteFile(path, []byte("log: {level: info}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := AdminSocket(path); err == nil || !strings.Contains(err.Error(), "no admin.socket") {
		t.Fatalf("want a clear error, got %v", err)
	}
}

func TestSharedIntegrationMustAgree(t *testing.T) {
	second := `
  - name: wiki
    listen: "127.0.0.1:1390"
    directory: corp
    duo:
      api_host: API-TEST.duosecurity.com
      integration_key: DIXXXXXXXXXXXXXXXXXX
      secret_key: "s3cr3t-value-never-printed"
`
	if _, err := Parse([]byte(minimal+second), noEnv); err != nil {
		t.Fatalf("identical shared integration refused: %v", err)
	}
	differs := strings.Replace(second, `secret_key: "s3cr3t-value-never-printed"`, "secret_key: other\n      timeout: 3s", 1)
	_, err := Parse([]byte(minimal+differs), noEnv)
	if err == nil || !strings.Contains(err.Error(), "servers[1].duo: shares integration api-test.duosecurity.com/DIXXXXXXXXXXXXXXXXXX with servers[0]") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "other") {
		t.Fatalf("the error shows a secret: %v", err)
	}
}
