package config

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the audit's golden files")

// TestAuditGolden: the audit of each file under testdata/audit is its
// .json golden file (go test ./config -run TestAuditGolden -update rewrites
// them; review the diff). weak.yaml is written readable by everyone, the
// others 0600, so that inline secrets count only there.
func TestAuditGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/audit/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("golden inputs: %v %v", files, err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o600)
			if name == "weak" {
				mode = 0o644
			}
			file := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(file, data, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, mode); err != nil { // past the umask
				t.Fatal(err)
			}
			c, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			findings := c.Audit()
			for i := range findings { // the temporary path is not part of the answer
				findings[i].Message = strings.ReplaceAll(findings[i].Message, file, "CONFIG")
			}
			got, err := json.MarshalIndent(findings, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".yaml") + ".json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("audit of %s:\n%s\nwant (%s):\n%s", in, got, golden, want)
			}
		})
	}
}

// TestAuditAcceptMustNameAFinding: a typo in check.accept is a problem, not
// a silently kept finding.
func TestAuditAcceptMustNameAFinding(t *testing.T) {
	data, err := os.ReadFile("testdata/audit/clean.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(append(data, []byte("check: {accept: [exempt-primary-bnid]}\n")...), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), `check.accept[0]: unknown finding ID "exempt-primary-bnid"`) {
		t.Fatalf("got %v", err)
	}
}

// TestEveryFindingIsReachable: each ID of the table is produced by some
// golden input, so none is dead and each is pinned.
func TestEveryFindingIsReachable(t *testing.T) {
	var all string
	files, _ := filepath.Glob("testdata/audit/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(data)
	}
	for _, id := range FindingIDs() {
		if id == "secret-file-readable" {
			continue // needs a secret file: TestSecretFilesReadableByOthersWarn (internal/app)
		}
		if !strings.Contains(all, `"id": "`+id+`"`) {
			t.Errorf("no golden file shows finding %s", id)
		}
	}
}
