package config

import (
	"errors"
	"testing"
)

func TestGuardDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Servers[0]
	if s.Duo.MaxPushes != 3 || s.Duo.MaxPasscodeAttempts != 5 || s.Duo.PushWindow != DefaultPushWindow {
		t.Errorf("duo budgets %d pushes, %d passcodes per %s", s.Duo.MaxPushes, s.Duo.MaxPasscodeAttempts, s.Duo.PushWindow)
	}
	want := Throttle{PerUserAddress: 5, PerUserAddressWindow: DefaultThrottlePerUserAddressWindow, PerAddress: 20, PerAddressWindow: DefaultThrottlePerAddressWindow}
	if s.Throttle != want {
		t.Errorf("throttle %+v, want %+v", s.Throttle, want)
	}
	if s.BindCacheTTL != 0 {
		t.Errorf("bind_cache_ttl %s, want 0 (off)", s.BindCacheTTL)
	}
}

func TestGuardBounds(t *testing.T) {
	type set map[string]any
	cases := []struct {
		name string
		set  set
		path string // "" when valid
		msg  string
	}{
		{"max_pushes 1", set{"servers[0].duo.max_pushes": 1}, "", ""},
		{"max_pushes negative", set{"servers[0].duo.max_pushes": -1}, "servers[0].duo.max_pushes", "-1 is out of range; allowed 1 to 100"},
		{"max_pushes too many", set{"servers[0].duo.max_pushes": 101}, "servers[0].duo.max_pushes", "101 is out of range; allowed 1 to 100"},
		{"passcodes too many", set{"servers[0].duo.max_passcode_attempts": 1000}, "servers[0].duo.max_passcode_attempts", "1000 is out of range; allowed 1 to 100"},
		{"push_window 30s", set{"servers[0].duo.push_window": "30s"}, "servers[0].duo.push_window", "30s is out of range; allowed 1m to 24h"},
		{"push_window unit-less", set{"servers[0].duo.push_window": 600}, "servers[0].duo.push_window", "600 has no unit; write 600s"},
		{"throttle per user 3 per 30m", set{"servers[0].throttle.per_user_address": 3, "servers[0].throttle.per_user_address_window": "30m"}, "", ""},
		{"throttle per user negative", set{"servers[0].throttle.per_user_address": -2}, "servers[0].throttle.per_user_address", "-2 is out of range; allowed 1 to 10000"},
		{"throttle per address window 25h", set{"servers[0].throttle.per_address_window": "25h"}, "servers[0].throttle.per_address_window", "25h is out of range; allowed 1s to 24h"},
		{"throttle unknown key", set{"servers[0].throttle.per_ip": 5}, "servers[0].throttle.per_ip", ""},
		{"bind cache 10m", set{"servers[0].bind_cache_ttl": "10m"}, "", ""},
		{"bind cache 11m", set{"servers[0].bind_cache_ttl": "11m"}, "servers[0].bind_cache_ttl", "11m is out of range; allowed 0s to 10m"},
		{"bind cache negative", set{"servers[0].bind_cache_ttl": "-1m"}, "servers[0].bind_cache_ttl", "-1m is out of range; allowed 0s to 10m"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := []byte(minimal)
			for k, v := range c.set {
				doc = withKey(t, string(doc), k, v)
			}
			_, err := Parse(doc, noEnv)
			if c.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			p, ok := problemAt(t, err, c.path)
			if !ok {
				t.Fatalf("no problem at %s; got %v", c.path, err)
			}
			if c.msg != "" && p.Msg != c.msg {
				t.Fatalf("%s: %q, want %q", c.path, p.Msg, c.msg)
			}
			if !errors.Is(p, ErrInvalid) && !errors.Is(p, ErrUnknownKey) {
				t.Fatalf("%s: %v wraps neither ErrInvalid nor ErrUnknownKey", c.path, p)
			}
		})
	}
}
