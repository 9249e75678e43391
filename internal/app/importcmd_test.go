package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const importCfg = `[ad_client]
host=127.0.0.1
port=389
service_account_username=cn=duo,ou=services,dc=example,dc=com
service_account_password=ad-password-do-not-print
search_dn=dc=example,dc=com
username_attribute=uid
auth_type=plain

[ldap_server_auto]
client=ad_client
ikey=DIXXXXXXXXXXXXXXXXXX
skey=duo-secret-do-not-print
api_host=api-xxxxxxxx.duosecurity.com
interface=127.0.0.1
port=1389
`

func runSplit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, &out, &errb)
	if err != nil {
		code = ExitCode(err)
		if !Silent(err) {
			errb.WriteString(err.Error())
		}
	}
	return out.String(), errb.String(), code
}

// TestImportThenCheck: `ldapgate import --secrets-dir` writes the YAML to
// stdout, the report to stderr and each secret to a 0600 file; `check`
// accepts the result as it is.
func TestImportThenCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "authproxy.cfg")
	if err := os.WriteFile(cfg, []byte(importCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, "secrets")
	stdout, stderr, code := runSplit(t, "import", "--secrets-dir", secrets, cfg)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, "do-not-print") {
		t.Fatal("a secret was printed")
	}
	if !strings.Contains(stdout, "secret_key_file: "+filepath.Join(secrets, "ldap_server_auto.duo_secret_key")) ||
		!strings.Contains(stderr, "differs: [ldap_server_auto] failmode: unset") || !strings.Contains(stderr, "ok: the imported configuration is valid") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	for name, want := range map[string]string{"ad_client.bind_password": "ad-password-do-not-print\n", "ldap_server_auto.duo_secret_key": "duo-secret-do-not-print\n"} {
		p := filepath.Join(secrets, name)
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, st, err)
		}
		if data, _ := os.ReadFile(p); string(data) != want {
			t.Errorf("%s holds %q", p, data)
		}
	}
	out := filepath.Join(dir, "ldapgate.yaml")
	if err := os.WriteFile(out, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	checked, code := runCLI(t, "check", "--config", out)
	if code != 0 || !strings.Contains(checked, "ok (1 directories, 1 server sections)") || !strings.Contains(checked, "finding: high exempt-primary-bind") {
		t.Fatalf("check of the import: exit %d\n%s", code, checked)
	}
}

// TestImportFailures: an authproxy.cfg that cannot be imported exits 1 with
// the section and key on stderr and nothing on stdout; conflicting flags
// are a usage error.
func TestImportFailures(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "authproxy.cfg")
	bad := strings.Replace(importCfg, "port=1389", "port=1389 ; LDAP", 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runSplit(t, "import", cfg)
	if code != 1 || stdout != "" || !strings.Contains(stderr, `error: [ldap_server_auto] port: "1389 ; LDAP" is not a port`) {
		t.Fatalf("exit %d\nstdout %q\nstderr:\n%s", code, stdout, stderr)
	}
	if _, _, code := runSplit(t, "import", "--with-secrets", "--secrets-dir", dir, cfg); code != 2 {
		t.Errorf("both secret flags: exit %d", code)
	}
	if _, stderr, code := runSplit(t, "import", filepath.Join(dir, "missing.cfg")); code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d %q", code, stderr)
	}
}
