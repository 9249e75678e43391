package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the program in-process and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, &out, &out)
	if err != nil {
		out.WriteString(err.Error())
		return out.String(), ExitCode(err)
	}
	return out.String(), 0
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
