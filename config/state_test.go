package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStateDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := State{Backend: "memory", Timeout: DefaultStateTimeout, Prefix: "ldapgate:"}
	if cfg.State != want {
		t.Fatalf("state %+v, want %+v", cfg.State, want)
	}
}

// TestStateValidation: every problem of state names its key; a password
// in the URL is refused, and one from a file or the environment is never
// printed.
func TestStateValidation(t *testing.T) {
	type set map[string]any
	cases := []keyCase{
		{"redis", set{"state.backend": "redis", "state.url": "redis://127.0.0.1:6379/2"}, "", ""},
		{"rediss with a user", set{"state.backend": "redis", "state.url": "rediss://ldapgate@redis.example:6380"}, "", ""},
		{"backend unknown", set{"state.backend": "etcd"}, "state.backend", "must be memory or redis"},
		{"redis without url", set{"state.backend": "redis"}, "state.url", ""},
		{"url not redis", set{"state.backend": "redis", "state.url": "http://127.0.0.1:6379"}, "state.url", ""},
		{"password in url", set{"state.backend": "redis", "state.url": "redis://u:hunter2@127.0.0.1:6379"}, "state.url", "must not carry a password; use state.password_file or LDAPGATE_STATE_PASSWORD"},
		{"options in url", set{"state.backend": "redis", "state.url": "redis://127.0.0.1:6379?dial_timeout=1h"}, "state.url", ""},
		{"url with memory", set{"state.url": "redis://127.0.0.1:6379"}, "state.url", "is set but state.backend is memory; set backend: redis"},
		{"timeout too short", set{"state.backend": "redis", "state.url": "redis://127.0.0.1:6379", "state.timeout": "1ms"}, "state.timeout", "1ms is out of range; allowed 10ms to 10s"},
		{"timeout without unit", set{"state.timeout": 500}, "state.timeout", ""},
		{"prefix with a space", set{"state.prefix": "a b"}, "state.prefix", ""},
		{"tls without rediss", set{"state.backend": "redis", "state.url": "redis://127.0.0.1:6379", "state.tls.ca_file": "testdata/none.pem"}, "state.tls.ca_file", ""},
		{"unknown key", set{"state.hosts": "x"}, "state.hosts", ""},
	}
	checkKeyCases(t, cases, []error{ErrInvalid, ErrRequired, ErrUnknownKey}, "hunter2")
}

func TestStatePassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "redis_password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := withKey(t, minimal, "state.backend", "redis")
	doc = withKey(t, string(doc), "state.url", "redis://127.0.0.1:6379")
	withFile := withKey(t, string(doc), "state.password_file", file)
	cfg, err := Parse(withFile, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Password.Reveal() != "from-file" || cfg.State.Password.String() == "from-file" {
		t.Fatalf("password %q (prints %q)", cfg.State.Password.Reveal(), cfg.State.Password)
	}
	cfg, err = Parse(withFile, envMap(map[string]string{"LDAPGATE_STATE_PASSWORD": "from-env"}))
	if err != nil || cfg.State.Password.Reveal() != "from-env" {
		t.Fatalf("env: %v, %v", cfg, err)
	}
	both := withKey(t, string(withFile), "state.password", "inline")
	if _, err := Parse(both, noEnv); err == nil {
		t.Fatal("inline and file both accepted")
	} else if _, ok := problemAt(t, err, "state.password"); !ok {
		t.Fatalf("no problem at state.password: %v", err)
	}
}
