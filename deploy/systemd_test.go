package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/config"
)

const unitPath = "deploy/systemd/ldapgate.service"

// installedBinary is where the unit expects ldapgate.
const installedBinary = "/usr/local/bin/ldapgate"

// systemdAnalyze finds systemd-analyze; make deps installs it (package
// systemd) when it is missing.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (make deps installs the systemd package): %v", err)
	}
	return path
}

// hermeticUnit writes a copy of the unit whose commands run an ldapgate
// built for this test, so that systemd-analyze checks a binary that exists
// instead of whatever is (or is not) in /usr/local/bin on this machine.
func hermeticUnit(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ldapgate")
	run(t, root, []string{"GOARCH=" + runtime.GOARCH, "VERSION=systemd-test"}, "./scripts/build-static.sh", bin)
	unit := readFile(t, root, unitPath)
	if !strings.Contains(unit, "ExecStart="+installedBinary+" serve --config /etc/ldapgate/config.yaml\n") {
		t.Fatalf("%s: no ExecStart=%s serve --config /etc/ldapgate/config.yaml", unitPath, installedBinary)
	}
	path := filepath.Join(dir, "ldapgate.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, installedBinary, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit; it
// exits 0 on mere warnings (an unknown or misspelt key is ignored with a
// warning), so any output at all fails the test.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit := hermeticUnit(t, repoRoot(t))
	cmd := exec.Command(analyze, "verify", unit)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitPath, err, out.String())
	}
}

// TestSystemdUnitHardening scores the unit's sandboxing with systemd's own
// measure: an exposure above 2.0 (of 10; the unit scores 1.4) means
// hardening was taken out.
func TestSystemdUnitHardening(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit := hermeticUnit(t, repoRoot(t))
	// --threshold is on systemd's internal 0-100 scale: 20 is 2.0.
	cmd := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", unit)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out.String())
	}
}

// TestSystemdUnitSettings checks the settings whose values follow from
// ldapgate itself, which systemd cannot judge.
func TestSystemdUnitSettings(t *testing.T) {
	root := repoRoot(t)
	settings := unitSettings(t, readFile(t, root, unitPath))
	want := map[string]string{
		"AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
		"ProtectHome":            "yes",
		"PrivateTmp":             "yes",
		"User":                   "ldapgate",
		"StateDirectory":         "ldapgate",
		"LogsDirectory":          "ldapgate",
		"RuntimeDirectory":       "ldapgate",
		"ConfigurationDirectory": "ldapgate",
		"ExecReload":             "/bin/kill -HUP $MAINPID",
		"Restart":                "on-failure",
		"LimitNOFILE":            "65536",
	}
	for key, value := range want {
		got := settings[key]
		if len(got) != 1 || got[0] != value {
			t.Errorf("%s: %s=%q, want exactly %q", unitPath, key, got, value)
		}
	}

	// A stop must outlast ldapgate's own: lame_duck, then binds in flight
	// for shutdown_timeout, whose default is the default push_timeout plus
	// the grace. The largest lame_duck is allowed for.
	stops := settings["TimeoutStopSec"]
	if len(stops) != 1 {
		t.Fatalf("%s: TimeoutStopSec=%q, want one", unitPath, stops)
	}
	stop, err := time.ParseDuration(stops[0])
	if err != nil {
		t.Fatalf("%s: TimeoutStopSec=%s: write it as a Go-style duration (150s): %v", unitPath, stops[0], err)
	}
	if need := config.DefaultDuoPushTimeout + config.ShutdownGrace + config.MaxLameDuck; stop <= need {
		t.Errorf("%s: TimeoutStopSec=%s, want more than the default shutdown_timeout + the largest health.lame_duck (%s): systemd would kill binds ldapgate still drains", unitPath, stop, need)
	}

	// The paths the example configuration uses are the ones the unit makes
	// writable.
	example := readFile(t, root, "config.example.yaml")
	for _, path := range []string{"/var/log/ldapgate/", "/run/ldapgate/", "/var/lib/ldapgate/"} {
		if !strings.Contains(example, path) {
			t.Errorf("config.example.yaml does not use %s, a directory the unit provides", path)
		}
	}
}

// unitSettings reads a unit file's assignments (comments and section
// headers skipped), each key's values in order.
func unitSettings(t *testing.T, unit string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", unitPath, line)
		}
		settings[key] = append(settings[key], value)
	}
	return settings
}

// TestSysusers creates the unit's user from ldapgate.sysusers.conf in an
// empty root directory: a system user and group ldapgate, no login shell,
// its home the state directory.
func TestSysusers(t *testing.T) {
	root := repoRoot(t)
	sysusers, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Fatalf("systemd-sysusers not found (make deps installs the systemd package): %v", err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.Open(filepath.Join(root, "deploy/systemd/ldapgate.sysusers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	cmd := exec.Command(sysusers, "--root="+dir, "-")
	cmd.Stdin = conf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd := readFile(t, dir, "etc/passwd")
	fields := strings.Split(strings.TrimSpace(passwd), ":")
	if len(fields) != 7 || fields[0] != "ldapgate" || fields[5] != "/var/lib/ldapgate" || !strings.HasSuffix(fields[6], "nologin") {
		t.Errorf("etc/passwd %q, want one ldapgate user, home /var/lib/ldapgate, no login shell", passwd)
	}
	if group := readFile(t, dir, "etc/group"); !strings.HasPrefix(group, "ldapgate:") {
		t.Errorf("etc/group %q, want group ldapgate", group)
	}
	if user := unitSettings(t, readFile(t, root, unitPath))["User"]; len(user) != 1 || user[0] != fields[0] {
		t.Errorf("%s: User=%q, not the sysusers user %q", unitPath, user, fields[0])
	}
}
