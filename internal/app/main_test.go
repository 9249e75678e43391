package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the program in-process and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLICtx(t, context.Background(), args...)
}

// runCLICtx is runCLI with a context (serve runs until it ends). A panic in
// the program is reported as output starting "panic:" and exit code 99
// rather than ending the test binary.
func runCLICtx(t *testing.T, ctx context.Context, args ...string) (out string, code int) {
	t.Helper()
	var buf bytes.Buffer
	defer func() {
		if r := recover(); r != nil {
			out, code = fmt.Sprintf("%spanic: %v", buf.String(), r), 99
		}
	}()
	err := Run(ctx, args, &buf, &buf)
	if err != nil {
		buf.WriteString(err.Error())
		return buf.String(), ExitCode(err)
	}
	return buf.String(), 0
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = `
directories:
  corp:
    urls: ["ldap://127.0.0.1:389"]
    base_dn: "dc=example,dc=com"
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: "do-not-print-me"}
`

func TestCheck(t *testing.T) {
	out, code := runCLI(t, "check", "--config", writeConfig(t, goodConfig))
	if code != 0 || !strings.Contains(out, "ok (1 directories, 1 server sections)") {
		t.Fatalf("good config: code %d, output %q", code, out)
	}

	bad := strings.Replace(goodConfig, "    directory: corp\n", "    directory: corp\n    failmode: open\n    tiemout: 3s\n", 1)
	out, code = runCLI(t, "check", "--config", writeConfig(t, bad))
	if code == 0 {
		t.Fatalf("bad config accepted: %q", out)
	}
	for _, want := range []string{"servers[0].tiemout: unknown key", "servers[0].failmode: must be safe or secure"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	bad = strings.Replace(goodConfig, "    directory: corp\n", "    directory: corp\n    failmode: open\n", 1)
	out, code = runCLI(t, "check", "--config", writeConfig(t, bad))
	if code == 0 || !strings.Contains(out, "servers[0].failmode: must be safe or secure") {
		t.Fatalf("code %d, output %q", code, out)
	}
	if strings.Contains(out, "do-not-print-me") {
		t.Fatalf("check printed the secret: %q", out)
	}

	if _, code := runCLI(t, "check", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 {
		t.Fatalf("missing file: exit code %d, want 1", code)
	}
	if _, code := runCLI(t, "check", "--bogus"); code != 2 {
		t.Fatalf("unknown flag: exit code %d, want 2", code)
	}
}

func TestVersion(t *testing.T) {
	out, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "ldapgate ") {
		t.Fatalf("version: %d %q", code, out)
	}
}
