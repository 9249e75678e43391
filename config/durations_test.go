package config

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// durationPaths walks Config and returns the key path of every
// time.Duration in it, with servers[0] for list elements and
// directories.corp for map values, as in the minimal configuration.
func durationPaths() []string {
	var paths []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				tag := f.Tag.Get("mapstructure")
				if tag == "" || tag == "-" {
					continue
				}
				walk(f.Type, joinPath(path, tag))
			}
		case reflect.Slice:
			walk(t.Elem(), path+"[0]")
		case reflect.Map:
			walk(t.Elem(), path+".corp")
		case reflect.Int64:
			if t == reflect.TypeFor[time.Duration]() {
				paths = append(paths, path)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return paths
}

// withKey returns base (YAML) with the key at path set to value; path
// segments are map keys or name[i] for list elements.
func withKey(t *testing.T, base string, path string, value any) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(base), &doc); err != nil {
		t.Fatal(err)
	}
	node := doc
	parts := strings.Split(path, ".")
	for _, part := range parts[:len(parts)-1] {
		name, index, list := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		if list {
			i, _ := strconv.Atoi(index)
			node = node[name].([]any)[i].(map[string]any)
			continue
		}
		child, ok := node[name].(map[string]any)
		if !ok {
			child = map[string]any{}
			node[name] = child
		}
		node = child
	}
	node[parts[len(parts)-1]] = value
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// problemAt returns the problem of err at path.
func problemAt(t *testing.T, err error, path string) (Problem, bool) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	for _, p := range ve.Problems {
		if p.Path == path {
			return p, true
		}
	}
	return Problem{}, false
}

// TestDurationFields keeps the lists below honest: a new duration in
// Config must be added to them (and get a bound in defaults.go).
func TestDurationFields(t *testing.T) {
	want := []string{
		"health.lame_duck",
		"shutdown_timeout",
		"alerts.timeout",
		"auth_syslog.timeout",
		"directories.corp.probe_interval",
		"directories.corp.timeout",
		"servers[0].duo.timeout",
		"servers[0].duo.push_timeout",
		"servers[0].duo.probe_interval",
		"servers[0].duo.degraded_latency",
		"servers[0].idle_timeout",
		"servers[0].write_timeout",
		"servers[0].request_timeout",
		"servers[0].duo.push_window",
		"servers[0].throttle.per_user_address_window",
		"servers[0].throttle.per_address_window",
		"servers[0].bind_cache_ttl",
		"state.timeout",
		"servers[0].proxy_protocol.header_timeout",
	}
	got := durationPaths()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("durations in Config:\n got %v\nwant %v", got, want)
	}
}

// TestDurationWithoutUnit: authproxy.cfg writes seconds as bare numbers;
// here a number without a unit is an error that says what to write, for
// every duration, whether YAML reads it as a number or a string.
func TestDurationWithoutUnit(t *testing.T) {
	values := []struct {
		name  string
		value any
		msg   string
	}{
		{"int", 3, "3 has no unit; write 3s"},
		{"zero", 0, "0 has no unit; write 0s"},
		{"negative", -2, "-2 has no unit; write -2s"},
		{"float", 1.5, "1.5 has no unit; write 1.5s"},
		{"quoted int", "3", "3 has no unit; write 3s"},
		{"quoted float", "1.5", "1.5 has no unit; write 1.5s"},
	}
	for _, path := range durationPaths() {
		for _, v := range values {
			t.Run(path+"/"+v.name, func(t *testing.T) {
				_, err := Parse(withKey(t, minimal, path, v.value), noEnv)
				if err == nil {
					t.Fatalf("%s: %v accepted", path, v.value)
				}
				p, ok := problemAt(t, err, path)
				if !ok {
					t.Fatalf("no problem at %s in:\n%v", path, err)
				}
				if p.Msg != v.msg || !errors.Is(p, ErrInvalid) {
					t.Errorf("got %q (%v), want %q wrapping ErrInvalid", p.Msg, p.Err, v.msg)
				}
				if want := path + ": " + v.msg; !strings.Contains(err.Error(), want) {
					t.Errorf("error text lacks %q:\n%v", want, err)
				}
			})
		}
	}
}

func TestDurationNotADuration(t *testing.T) {
	cases := []struct {
		name  string
		value any
		want  string
	}{
		{"word", "soon", `"soon" is not a duration; write it with a unit, like 10s or 1m30s`},
		{"empty", "", `"" is not a duration; write it with a unit, like 10s or 1m30s`},
		{"bool", true, "true is not a duration; write it with a unit, like 10s or 1m30s"},
		{"list", []any{"1s"}, "[1s] is not a duration; write it with a unit, like 10s or 1m30s"},
		{"spaces", "3 s", `"3 s" is not a duration; write it with a unit, like 10s or 1m30s`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(withKey(t, minimal, "servers[0].duo.timeout", c.value), noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			p, ok := problemAt(t, err, "servers[0].duo.timeout")
			if !ok || p.Msg != c.want || !errors.Is(p, ErrInvalid) {
				t.Fatalf("got %+v, want %q wrapping ErrInvalid; all:\n%v", p, c.want, err)
			}
		})
	}
}

// TestDurationFromEnvironment: overrides are strings and follow the same rule.
func TestDurationFromEnvironment(t *testing.T) {
	cases := []struct {
		name, env, value, path, want string
	}{
		{"lame duck without unit", "LDAPGATE_HEALTH_LAME_DUCK", "5", "health.lame_duck", "5 has no unit; write 5s"},
		{"alert timeout without unit", "LDAPGATE_ALERTS_TIMEOUT", "2.5", "alerts.timeout", "2.5 has no unit; write 2.5s"},
		{"alert timeout out of range", "LDAPGATE_ALERTS_TIMEOUT", "2m", "alerts.timeout", "2m is out of range; allowed 100ms to 1m"},
		{"lame duck with unit", "LDAPGATE_HEALTH_LAME_DUCK", "7s", "health.lame_duck", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			cfg, err := Parse([]byte(minimal), noEnv)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Health.LameDuck != 7*time.Second {
					t.Fatalf("override not applied: %s", cfg.Health.LameDuck)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if p, ok := problemAt(t, err, c.path); !ok || p.Msg != c.want {
				t.Fatalf("got %+v, want %q; all:\n%v", p, c.want, err)
			}
		})
	}
}

// TestDurationProblemsReportedWithOthers: a bad duration does not hide
// the other problems of the file.
func TestDurationProblemsReportedWithOthers(t *testing.T) {
	cases := []struct {
		name  string
		value any
	}{
		{"int", 3},
		{"string", "3"},
		{"word", "soon"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := withKey(t, minimal, "servers[0].duo.timeout", c.value)
			data = withKey(t, string(data), "servers[0].failmode", "open")
			data = withKey(t, string(data), "directories.corp.timeout", "2")
			data = withKey(t, string(data), "servers[0].duo.push_timeout", "10m")
			data = withKey(t, string(data), "servers[0].failmod", "safe")
			_, err := Parse(data, noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, path := range []string{"servers[0].duo.timeout", "servers[0].failmode", "directories.corp.timeout",
				"servers[0].duo.push_timeout", "servers[0].failmod"} {
				if _, ok := problemAt(t, err, path); !ok {
					t.Errorf("no problem at %s in:\n%v", path, err)
				}
			}
			var ve *ValidationError
			errors.As(err, &ve)
			if len(ve.Problems) != 5 {
				t.Errorf("got %d problems, want 5:\n%v", len(ve.Problems), err)
			}
		})
	}
}

// TestDurationBounds: every duration has a range, and a value outside it
// is named with the range.
func TestDurationBounds(t *testing.T) {
	type set = map[string]any
	cases := []struct {
		name string
		keys set
		path string // where the problem is; "" for none
		want string
	}{
		{"defaults", set{}, "", ""},
		{"test harness values", set{"servers[0].duo.timeout": "1s", "servers[0].duo.push_timeout": "2s",
			"directories.corp.timeout": "2s", "servers[0].duo.probe_interval": "500ms", "health.lame_duck": "0s"}, "", ""},
		{"demo values", set{"servers[0].duo.timeout": "3s", "servers[0].duo.push_timeout": "10s",
			"directories.corp.timeout": "5s", "servers[0].duo.probe_interval": "1s"}, "", ""},

		{"duo timeout 3ns", set{"servers[0].duo.timeout": "3ns"}, "servers[0].duo.timeout", "3ns is out of range; allowed 1s to 2m"},
		{"duo timeout 999ms", set{"servers[0].duo.timeout": "999ms"}, "servers[0].duo.timeout", "999ms is out of range; allowed 1s to 2m"},
		{"duo timeout 2m", set{"servers[0].duo.timeout": "2m", "servers[0].duo.push_timeout": "2m"}, "", ""},
		{"duo timeout 121s", set{"servers[0].duo.timeout": "121s"}, "servers[0].duo.timeout", "2m1s is out of range; allowed 1s to 2m"},
		{"duo timeout negative", set{"servers[0].duo.timeout": "-1s"}, "servers[0].duo.timeout", "-1s is out of range; allowed 1s to 2m"},

		{"push below timeout", set{"servers[0].duo.timeout": "20s", "servers[0].duo.push_timeout": "15s"},
			"servers[0].duo.push_timeout", "15s is out of range; allowed duo.timeout (20s) to 5m"},
		{"push equals timeout", set{"servers[0].duo.timeout": "20s", "servers[0].duo.push_timeout": "20s"}, "", ""},
		{"push 5m", set{"servers[0].duo.push_timeout": "5m"}, "", ""},
		{"push 10m", set{"servers[0].duo.push_timeout": "10m"}, "servers[0].duo.push_timeout", "10m is out of range; allowed duo.timeout (10s) to 5m"},

		{"directory 99ms", set{"directories.corp.timeout": "99ms"}, "directories.corp.timeout", "99ms is out of range; allowed 100ms to 2m"},
		{"directory 100ms", set{"directories.corp.timeout": "100ms"}, "", ""},
		{"directory 3m", set{"directories.corp.timeout": "3m"}, "directories.corp.timeout", "3m is out of range; allowed 100ms to 2m"},
		{"directory probe 100ms", set{"directories.corp.probe_interval": "100ms"}, "directories.corp.probe_interval", "100ms is out of range; allowed 500ms to 1h"},

		{"idle 0s is the default", set{"servers[0].idle_timeout": "0s"}, "", ""},
		{"idle 500ms", set{"servers[0].idle_timeout": "500ms"}, "servers[0].idle_timeout", "500ms is out of range; allowed 1s to 24h"},
		{"idle 24h", set{"servers[0].idle_timeout": "24h"}, "", ""},
		{"idle 25h", set{"servers[0].idle_timeout": "25h"}, "servers[0].idle_timeout", "25h is out of range; allowed 1s to 24h"},

		{"probe 100ms", set{"servers[0].duo.probe_interval": "100ms"}, "servers[0].duo.probe_interval", "100ms is out of range; allowed 500ms to 1h"},
		{"probe 1h", set{"servers[0].duo.probe_interval": "1h"}, "", ""},
		{"probe 2h", set{"servers[0].duo.probe_interval": "2h"}, "servers[0].duo.probe_interval", "2h is out of range; allowed 500ms to 1h"},

		{"degraded equals timeout", set{"servers[0].duo.degraded_latency": "10s"},
			"servers[0].duo.degraded_latency", "10s is out of range; allowed above 0 and below duo.timeout (10s)"},
		{"degraded negative", set{"servers[0].duo.degraded_latency": "-1s"},
			"servers[0].duo.degraded_latency", "-1s is out of range; allowed above 0 and below duo.timeout (10s)"},
		{"degraded 9s", set{"servers[0].duo.degraded_latency": "9s"}, "", ""},

		{"alerts 50ms", set{"alerts.timeout": "50ms"}, "alerts.timeout", "50ms is out of range; allowed 100ms to 1m"},
		{"alerts 1m", set{"alerts.timeout": "1m"}, "", ""},

		{"lame duck 0s", set{"health.lame_duck": "0s"}, "", ""},
		{"lame duck 1m", set{"health.lame_duck": "1m"}, "", ""},
		{"lame duck 61s", set{"health.lame_duck": "61s"}, "health.lame_duck", "1m1s is out of range; allowed 0s to 1m"},
		{"lame duck negative", set{"health.lame_duck": "-1s"}, "health.lame_duck", "-1s is out of range; allowed 0s to 1m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(minimal)
			for _, k := range slices.Sorted(maps.Keys(c.keys)) {
				data = withKey(t, string(data), k, c.keys[k])
			}
			_, err := Parse(data, noEnv)
			if c.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			p, ok := problemAt(t, err, c.path)
			if !ok || p.Msg != c.want || !errors.Is(p, ErrInvalid) {
				t.Fatalf("got %+v, want %q wrapping ErrInvalid; all:\n%v", p, c.want, err)
			}
			var ve *ValidationError
			if errors.As(err, &ve); len(ve.Problems) != 1 {
				t.Errorf("want only that problem, got:\n%v", err)
			}
		})
	}
}

// TestDegradedLatencyDefaultFollowsTimeout: with a short duo.timeout the
// default degraded_latency shrinks with it, so that it can still fire.
func TestDegradedLatencyDefaultFollowsTimeout(t *testing.T) {
	cases := []struct {
		name    string
		timeout string
		want    time.Duration
	}{
		{"default timeout", "10s", 3 * time.Second},
		{"long timeout", "1m", 3 * time.Second},
		{"3s timeout", "3s", 1500 * time.Millisecond},
		{"1s timeout", "1s", 500 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(withKey(t, minimal, "servers[0].duo.timeout", c.timeout), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Servers[0].Duo.DegradedLatency; got != c.want {
				t.Fatalf("degraded_latency %s, want %s", got, c.want)
			}
		})
	}
}

// TestDefaultsWithinBounds: a file that says nothing must pass its own
// validation, for every duration.
func TestDefaultsWithinBounds(t *testing.T) {
	cases := []struct {
		name          string
		value, lo, hi time.Duration
	}{
		{"duo.timeout", DefaultDuoTimeout, MinDuoTimeout, MaxDuoTimeout},
		{"duo.push_timeout", DefaultDuoPushTimeout, DefaultDuoTimeout, MaxDuoPushTimeout},
		{"duo.push_timeout with the longest duo.timeout", DefaultPushTimeoutFor(MaxDuoTimeout), MaxDuoTimeout, MaxDuoPushTimeout},
		{"duo.probe_interval", DefaultDuoProbeInterval, MinDuoProbeInterval, MaxDuoProbeInterval},
		{"duo.degraded_latency", DefaultDuoDegradedLatency, MinDuoDegradedLatency, DefaultDuoTimeout - 1},
		{"duo.degraded_latency with the shortest duo.timeout", DefaultDegradedLatencyFor(MinDuoTimeout), MinDuoDegradedLatency, MinDuoTimeout - 1},
		{"directories.*.timeout", DefaultDirectoryTimeout, MinDirectoryTimeout, MaxDirectoryTimeout},
		{"directories.*.probe_interval", DefaultDirectoryProbeInterval, MinDirectoryProbeInterval, MaxDirectoryProbeInterval},
		{"servers[].idle_timeout", DefaultIdleTimeout, MinIdleTimeout, MaxIdleTimeout},
		{"servers[].write_timeout", DefaultWriteTimeout, MinWriteTimeout, MaxWriteTimeout},
		{"servers[].request_timeout", DefaultRequestTimeout, MinRequestTimeout, MaxRequestTimeout},
		{"alerts.timeout", DefaultAlertTimeout, MinAlertTimeout, MaxAlertTimeout},
		{"health.lame_duck", DefaultLameDuck, MinLameDuck, MaxLameDuck},
		{"duo.push_window", DefaultPushWindow, MinPushWindow, MaxPushWindow},
		{"servers[].throttle.per_user_address_window", DefaultThrottlePerUserAddressWindow, MinThrottleWindow, MaxThrottleWindow},
		{"servers[].throttle.per_address_window", DefaultThrottlePerAddressWindow, MinThrottleWindow, MaxThrottleWindow},
		{"servers[].bind_cache_ttl", DefaultBindCacheTTL, MinBindCacheTTL, MaxBindCacheTTL},
		{"state.timeout", DefaultStateTimeout, MinStateTimeout, MaxStateTimeout},
		{"servers[].proxy_protocol.header_timeout", DefaultProxyHeaderTimeout, MinProxyHeaderTimeout, MaxProxyHeaderTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.value < c.lo || c.value > c.hi {
				t.Errorf("default %s outside %s to %s", c.value, c.lo, c.hi)
			}
		})
	}
}

// TestPushTimeoutDefaultFollowsTimeout: an unset push_timeout is never
// shorter than duo.timeout.
func TestPushTimeoutDefaultFollowsTimeout(t *testing.T) {
	cases := []struct {
		name    string
		timeout string
		want    time.Duration
	}{
		{"default timeout", "10s", DefaultDuoPushTimeout},
		{"90s timeout", "90s", 90 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(withKey(t, minimal, "servers[0].duo.timeout", c.timeout), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Servers[0].Duo.PushTimeout; got != c.want {
				t.Fatalf("push_timeout %s, want %s", got, c.want)
			}
		})
	}
}

// TestBadTimeoutReportsOnlyItself: the durations judged against
// duo.timeout do not pile up problems the administrator did not make.
func TestBadTimeoutReportsOnlyItself(t *testing.T) {
	cases := []struct {
		name  string
		value any
		push  any // nil: unset
		want  string
	}{
		{"3ns", "3ns", nil, "3ns is out of range; allowed 1s to 2m"},
		{"10m", "10m", nil, "10m is out of range; allowed 1s to 2m"},
		{"no unit, push set", 90, "5s", "90 has no unit; write 90s"},
		{"no unit, push unset", "90", nil, "90 has no unit; write 90s"},
		{"10m, push set", "10m", "5s", "10m is out of range; allowed 1s to 2m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := withKey(t, minimal, "servers[0].duo.timeout", c.value)
			if c.push != nil {
				data = withKey(t, string(data), "servers[0].duo.push_timeout", c.push)
			}
			_, err := Parse(data, noEnv)
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Error() != "servers[0].duo.timeout: "+c.want {
				t.Fatalf("want only %q, got %v", c.want, err)
			}
		})
	}
}
