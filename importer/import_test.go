package importer

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ldapgate/ldapgate/config"
)

var update = flag.Bool("update", false, "rewrite the importer's golden files")

// secretsDir stands for --secrets-dir in the goldens.
const secretsDir = "SECRETS_DIR"

type golden struct {
	name, cfg string
	opts      Options
}

func goldens(t *testing.T) []golden {
	t.Helper()
	// The test key must not be readable by others, whatever the checkout
	// made of its mode, or the audit would say so (secret-file-readable).
	if err := os.Chmod("testdata/conf/ldapgate.key", 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/*.cfg")
	if err != nil || len(files) < 6 {
		t.Fatalf("golden inputs: %v %v", files, err)
	}
	var out []golden
	for _, cfg := range files {
		g := golden{name: strings.TrimSuffix(filepath.Base(cfg), ".cfg"), cfg: cfg, opts: Options{Source: cfg}}
		args, err := os.ReadFile(strings.TrimSuffix(cfg, ".cfg") + ".args")
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			t.Fatal(err)
		case strings.TrimSpace(string(args)) == "--secrets-dir":
			g.opts.Secrets, g.opts.SecretsDir = SecretsFiles, secretsDir
		case strings.TrimSpace(string(args)) == "--with-secrets":
			g.opts.Secrets = SecretsInline
		default:
			t.Fatalf("%s.args: %q", g.name, args)
		}
		out = append(out, g)
	}
	return out
}

// TestImportGolden: for each testdata/NAME.cfg, the YAML (stdout) is
// NAME.yaml and the report (stderr) NAME.report; a failed import has an
// empty NAME.yaml. `go test ./importer -run TestImportGolden -update`
// rewrites them; review the diff.
func TestImportGolden(t *testing.T) {
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			data, err := os.ReadFile(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Import(data, g.opts)
			if res == nil || len(res.Report) == 0 {
				t.Fatalf("no report (err %v)", err)
			}
			var ie *Error
			if err != nil && !errors.As(err, &ie) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if (err == nil) != (res.YAML != nil) {
				t.Fatalf("err %v with %d bytes of YAML", err, len(res.YAML))
			}
			for _, f := range []struct{ ext, got string }{{".yaml", string(res.YAML)}, {".report", string(res.Report)}} {
				file := strings.TrimSuffix(g.cfg, ".cfg") + f.ext
				if *update {
					if err := os.WriteFile(file, []byte(f.got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if f.got != string(want) {
					t.Errorf("%s:\n%s\nwant (%s):\n%s", f.ext, f.got, file, want)
				}
			}
			// Secrets reach neither stdout nor stderr unless asked for.
			leak := regexp.MustCompile(`[a-z-]+-do-not-print`)
			if g.opts.Secrets != SecretsInline {
				if m := leak.FindString(string(res.YAML)); m != "" {
					t.Errorf("YAML carries a secret: %s", m)
				}
			}
			if m := leak.FindString(string(res.Report)); m != "" {
				t.Errorf("report carries a secret: %s", m)
			}
		})
	}
}

var setVar = regexp.MustCompile(`set (LDAPGATE_[A-Z0-9_]+) to`)

// TestGoldenYAMLParses: every golden YAML is a configuration config.Parse
// accepts once its secrets are where the report says: the LDAPGATE_*
// variables it lists, or the files of --secrets-dir.
func TestGoldenYAMLParses(t *testing.T) {
	parsed := 0
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			base := strings.TrimSuffix(g.cfg, ".cfg")
			yml, err := os.ReadFile(base + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			if len(yml) == 0 {
				return // a failed import: TestImportGolden pins its report
			}
			report, err := os.ReadFile(base + ".report")
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, m := range setVar.FindAllStringSubmatch(string(report), -1) {
				env[m[1]] = "from-the-environment"
			}
			if g.opts.Secrets == SecretsFiles {
				dir := t.TempDir()
				data, _ := os.ReadFile(g.cfg)
				res, err := Import(data, g.opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range res.Files {
					p := strings.Replace(f.Path, secretsDir, dir, 1)
					if err := os.WriteFile(p, []byte(f.Value.Reveal()+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				yml = []byte(strings.ReplaceAll(string(yml), secretsDir, dir))
			}
			cfg, err := config.Parse(yml, func(name string) (string, bool) { v, ok := env[name]; return v, ok })
			if err != nil {
				t.Fatalf("golden YAML refused: %v", err)
			}
			for _, d := range cfg.Directories {
				if d.BindDN != "" && d.BindPassword == "" {
					t.Errorf("directory %s: no bind password", d.Name)
				}
			}
			parsed++
		})
	}
	if parsed < 5 {
		t.Fatalf("only %d golden files parsed", parsed)
	}
}
