package config

import (
	"errors"
	"testing"
	"time"
)

// TestShutdownTimeout: unset, shutdown_timeout follows the longest
// push_timeout (a pending push must be able to finish on SIGTERM); set, it
// is bounded, and a value out of bounds names the key.
func TestShutdownTimeout(t *testing.T) {
	cases := []struct {
		name    string
		key     string // "" leaves the base alone
		value   any
		want    time.Duration
		problem string
	}{
		{"default follows push_timeout", "", nil, DefaultDuoPushTimeout + ShutdownGrace, ""},
		{"default follows a longer push_timeout", "servers[0].duo.push_timeout", "2m", 2*time.Minute + ShutdownGrace, ""},
		{"set", "shutdown_timeout", "3s", 3 * time.Second, ""},
		{"too short", "shutdown_timeout", "500ms", 0, "shutdown_timeout: 500ms is out of range; allowed 1s to 10m"},
		{"too long", "shutdown_timeout", "11m", 0, "shutdown_timeout: 11m is out of range; allowed 1s to 10m"},
		{"no unit", "shutdown_timeout", 30, 0, "shutdown_timeout: 30 has no unit; write 30s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(minimal)
			if c.key != "" {
				data = withKey(t, minimal, c.key, c.value)
			}
			cfg, err := Parse(data, noEnv)
			if c.problem != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Error() != c.problem {
					t.Fatalf("want only %q, got %v", c.problem, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ShutdownTimeout != c.want {
				t.Fatalf("shutdown_timeout %s, want %s", cfg.ShutdownTimeout, c.want)
			}
		})
	}
}
