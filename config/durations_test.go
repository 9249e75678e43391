package config

import (
	"errors"
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
		"alerts.timeout",
		"directories.corp.timeout",
		"servers[0].duo.timeout",
		"servers[0].duo.push_timeout",
		"servers[0].duo.probe_interval",
		"servers[0].duo.degraded_latency",
		"servers[0].idle_timeout",
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
			data = withKey(t, string(data), "servers[0].failmod", "safe")
			_, err := Parse(data, noEnv)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, path := range []string{"servers[0].duo.timeout", "servers[0].failmode", "directories.corp.timeout",
				"servers[0].failmod"} {
				if _, ok := problemAt(t, err, path); !ok {
					t.Errorf("no problem at %s in:\n%v", path, err)
				}
			}
			var ve *ValidationError
			errors.As(err, &ve)
			if len(ve.Problems) != 4 {
				t.Errorf("got %d problems, want 4:\n%v", len(ve.Problems), err)
			}
		})
	}
}
