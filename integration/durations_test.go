package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// durationConfig is a configuration that `check` accepts except for the
// durations filled in: nothing in it needs a directory, Duo or a file.
func durationConfig(dirTimeout, duoTimeout, pushTimeout string) string {
	return `
directories:
  sample:
    urls: ["ldap://127.0.0.1:389"]
    base_dn: "dc=example,dc=com"
    timeout: ` + dirTimeout + `
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    failmode: safe
    duo:
      api_host: api-test.duosecurity.com
      integration_key: DIXXXXXXXXXXXXXXXXXX
      secret_key: not-a-real-key
      timeout: ` + duoTimeout + `
      push_timeout: ` + pushTimeout + `
`
}

var durationCases = []struct {
	name     string
	config   string
	env      []string
	problems []string // every one must be in the output
}{
	{
		name:   "seconds without a unit, as authproxy.cfg writes them",
		config: durationConfig("5", "3", "60"),
		problems: []string{
			"directories.sample.timeout: 5 has no unit; write 5s",
			"servers[0].duo.timeout: 3 has no unit; write 3s",
			"servers[0].duo.push_timeout: 60 has no unit; write 60s",
		},
	},
	{
		name:     "a quoted number and a fraction",
		config:   durationConfig(`"2"`, "1.5", "60s"),
		problems: []string{"directories.sample.timeout: 2 has no unit; write 2s", "servers[0].duo.timeout: 1.5 has no unit; write 1.5s"},
	},
	{
		name:   "out of range",
		config: durationConfig("5m", "3ns", "60s"),
		problems: []string{
			"directories.sample.timeout: 5m is out of range; allowed 100ms to 2m",
			"servers[0].duo.timeout: 3ns is out of range; allowed 1s to 2m",
		},
	},
	{
		name:     "push_timeout shorter than timeout",
		config:   durationConfig("5s", "20s", "15s"),
		problems: []string{"servers[0].duo.push_timeout: 15s is out of range; allowed duo.timeout (20s) to 5m"},
	},
	{
		name:     "an environment override without a unit",
		config:   durationConfig("5s", "10s", "60s"),
		env:      []string{"LDAPGATE_HEALTH_LAME_DUCK=5"},
		problems: []string{"health.lame_duck: 5 has no unit; write 5s"},
	},
}

func writeDurationConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runGate runs the binary and returns its exit code and combined output.
// A command that is still running after the deadline is killed and fails
// the test: serve must refuse a bad file at once, not start.
func runGate(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gateBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ldapgate %s still running after 15s; output:\n%s", strings.Join(args, " "), out)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestRefuseDurations: `check` and `serve` apply the same rules: both
// refuse unit-less and out-of-range durations, exiting non-zero and naming
// each key, instead of running with 3ns; `check` accepts the same file with
// sane values.
func TestRefuseDurations(t *testing.T) {
	for _, command := range []string{"check", "serve"} {
		for _, c := range durationCases {
			t.Run(command+"/"+c.name, func(t *testing.T) {
				code, out := runGate(t, c.env, command, "--config", writeDurationConfig(t, c.config))
				if code == 0 {
					t.Fatalf("%s accepted it (exit 0):\n%s", command, out)
				}
				for _, p := range c.problems {
					if !strings.Contains(out, p) {
						t.Errorf("output lacks %q:\n%s", p, out)
					}
				}
			})
		}
	}
	t.Run("check/sane values", func(t *testing.T) {
		if code, out := runGate(t, nil, "check", "--config", writeDurationConfig(t, durationConfig("5s", "10s", "60s"))); code != 0 {
			t.Fatalf("check refused a good file (exit %d):\n%s", code, out)
		}
	})
}
