package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func breakGlassConfig(extra string) []byte {
	return []byte(minimal + "    secure_groups: [\"cn=admins,ou=groups,dc=example,dc=com\"]\n" + extra)
}

func TestBreakGlassValid(t *testing.T) {
	codes := filepath.Join(t.TempDir(), "codes.json")
	c, err := Parse(breakGlassConfig(fmt.Sprintf(`    break_glass:
      users: ["uid=alice,ou=people,dc=example,dc=com"]
      codes_file: %s
`, codes)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	bg := c.Servers[0].BreakGlass
	if !bg.Enabled() || bg.CodesFile != codes || bg.UsedFile() != codes+".used" {
		t.Fatalf("%+v", bg)
	}
	c, err = Parse([]byte(minimal), noEnv)
	if err != nil || c.Servers[0].BreakGlass.Enabled() {
		t.Fatalf("break_glass must be off by default: %v %+v", err, c.Servers[0].BreakGlass)
	}
}

func TestBreakGlassProblems(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.json")
	if err := os.WriteFile(open, []byte("{}"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o666)
	damaged := filepath.Join(dir, "damaged.json")
	if err := os.WriteFile(damaged, []byte(`{"version": 1, "codes": [{"id": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	safe := strings.Replace(minimal, "    directory: corp\n", "    directory: corp\n    failmode: safe\n", 1)
	second := `  - name: wiki
    listen: "127.0.0.1:1390"
    directory: corp
    duo: {api_host: api-test.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: "s3cr3t-value-never-printed"}
    break_glass: {users: ["uid=a,dc=example,dc=com"], codes_file: %s}
`
	for _, tt := range []struct {
		name, yaml, path, want string
	}{
		{"user not a DN", string(breakGlassConfig("    break_glass: {users: [\"alice\"], codes_file: " + filepath.Join(dir, "c") + "}\n")),
			"servers[0].break_glass.users[0]", "not a valid DN"},
		{"codes_file missing", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"]}\n")),
			"servers[0].break_glass.codes_file", "is required"},
		{"no such directory", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: /nonexistent/dir/codes}\n")),
			"servers[0].break_glass.codes_file", "does not exist"},
		{"writable by others", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: " + open + "}\n")),
			"servers[0].break_glass.codes_file", "writable by group or others"},
		{"safe section without secure groups", safe + "    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: " + filepath.Join(dir, "c") + "}\n",
			"servers[0].break_glass", "has no effect"},
		{"shared codes file", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: "+filepath.Join(dir, "c")+"}\n")) + fmt.Sprintf(second, filepath.Join(dir, "c")),
			"servers[1].break_glass.codes_file", "also servers[0]"},
		{"damaged codes file", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: " + damaged + "}\n")),
			"servers[0].break_glass.codes_file", "damaged.json"},
		{"unknown key", string(breakGlassConfig("    break_glass: {users: [\"uid=a,dc=example,dc=com\"], codes_file: " + filepath.Join(dir, "c") + ", code: x}\n")),
			"servers[0].break_glass.code", "unknown key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), noEnv)
			p, ok := problemAt(t, err, tt.path)
			if !ok {
				t.Fatalf("no problem at %s: %v", tt.path, err)
			}
			if !strings.Contains(p.Msg, tt.want) {
				t.Fatalf("%s: %q, want %q", tt.path, p.Msg, tt.want)
			}
		})
	}
}
