package config

import (
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
	cases := []keyCase{
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
	checkKeyCases(t, cases, []error{ErrInvalid, ErrUnknownKey})
}
