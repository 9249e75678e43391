package config

import (
	"testing"

	"github.com/ldapgate/ldapgate/failmode"
)

func TestLimitDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, d := cfg.Servers[0], cfg.Directories["corp"]
	if s.MaxConnections != 0 || s.MaxConnectionsPerIP != DefaultMaxConnectionsPerIP || s.MaxPendingRequests != DefaultMaxPendingRequests ||
		s.MaxRequestSize != DefaultMaxRequestSize || s.WriteTimeout != DefaultWriteTimeout || s.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("server limits %+v", s)
	}
	if d.MaxConnections != DefaultDirectoryMaxConnections {
		t.Errorf("directory max_connections %d", d.MaxConnections)
	}
	if got := s.MaxBufferedBytes(); got != BufferedRequestsFactor*DefaultMaxRequestSize {
		t.Errorf("MaxBufferedBytes %d", got)
	}
}

func TestLimitBounds(t *testing.T) {
	type set map[string]any
	cases := []keyCase{
		{"max_connections 0 is derived", set{"servers[0].max_connections": 0}, "", ""},
		{"max_connections negative", set{"servers[0].max_connections": -1}, "servers[0].max_connections", "-1 is out of range; allowed 1 to 1048576, or 0 (derived from the descriptor limit)"},
		{"per ip 0 is the default", set{"servers[0].max_connections_per_ip": 0}, "", ""},
		{"per ip negative", set{"servers[0].max_connections_per_ip": -5}, "servers[0].max_connections_per_ip", "-5 is out of range; allowed 1 to 1048576"},
		{"per ip default follows a small max_connections", set{"servers[0].max_connections": 2}, "", ""},
		{"per ip above max_connections", set{"servers[0].max_connections": 10, "servers[0].max_connections_per_ip": 11}, "servers[0].max_connections_per_ip", "11 is more than max_connections (10)"},
		{"pending 1024", set{"servers[0].max_pending_requests": 1024}, "", ""},
		{"pending 1025", set{"servers[0].max_pending_requests": 1025}, "servers[0].max_pending_requests", "1025 is out of range; allowed 1 to 1024"},
		{"request size 512", set{"servers[0].max_request_size": 512}, "servers[0].max_request_size", "512 is out of range; allowed 1024 to 67108864"},
		{"write timeout 0.5s", set{"servers[0].write_timeout": "500ms"}, "servers[0].write_timeout", "500ms is out of range; allowed 1s to 10m"},
		{"write timeout unit-less", set{"servers[0].write_timeout": 30}, "servers[0].write_timeout", "30 has no unit; write 30s"},
		{"request timeout 11m", set{"servers[0].request_timeout": "11m"}, "servers[0].request_timeout", "11m is out of range; allowed 1s to 10m"},
		{"directory pool 0 is the default", set{"directories.corp.max_connections": 0}, "", ""},
		{"directory pool too large", set{"directories.corp.max_connections": 10001}, "directories.corp.max_connections", "10001 is out of range; allowed 1 to 10000"},
	}
	checkKeyCases(t, cases, []error{ErrInvalid})
}

func TestDefaultMaxConnections(t *testing.T) {
	for _, c := range []struct {
		nofile   uint64
		sections int
		want     int
	}{
		{1024, 1, (1024 - ReservedDescriptors) / DescriptorsPerClient},
		{1024, 2, (1024 - ReservedDescriptors) / DescriptorsPerClient / 2},
		{20000, 1, (20000 - ReservedDescriptors) / DescriptorsPerClient},
		{64, 1, MinMaxConnections},
		{10, 3, MinMaxConnections},
		{1 << 62, 1, (1 << 20) / DescriptorsPerClient},
		{1024, 0, (1024 - ReservedDescriptors) / DescriptorsPerClient},
	} {
		if got := DefaultMaxConnections(c.nofile, c.sections); got != c.want {
			t.Errorf("DefaultMaxConnections(%d, %d) = %d, want %d", c.nofile, c.sections, got, c.want)
		}
	}
}

// TestValidateExported: a Config changed after loading is checked by the
// same rules, every problem by key path.
func TestValidateExported(t *testing.T) {
	cfg, err := Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a loaded config fails Validate: %v", err)
	}
	cfg.Servers[0].MaxPendingRequests = 0
	cfg.Servers[0].Failmode = "open"
	err = cfg.Validate()
	for _, path := range []string{"servers[0].max_pending_requests", "servers[0].failmode"} {
		if _, ok := problemAt(t, err, path); !ok {
			t.Errorf("no problem at %s in %v", path, err)
		}
	}
}

// TestModeAndFactorParsedOnce: the wiring reads typed values parsed by
// validation, never the strings again.
func TestModeAndFactorParsedOnce(t *testing.T) {
	doc := withKey(t, string(withKey(t, minimal, "servers[0].failmode", "safe")), "servers[0].factor", "push")
	cfg, err := Parse(doc, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Servers[0]; s.Mode() != failmode.Safe || s.DefaultFactor() != failmode.FactorPush {
		t.Fatalf("mode %q factor %q", s.Mode(), s.DefaultFactor())
	}
	cfg, err = Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Servers[0]; s.Mode() != failmode.Secure || s.DefaultFactor() != failmode.FactorAuto {
		t.Fatalf("defaults: mode %q factor %q", s.Mode(), s.DefaultFactor())
	}
	if (&Server{}).Mode() != "" {
		t.Fatal("an unvalidated section has the zero mode")
	}
}

func TestEffectiveMaxConnections(t *testing.T) {
	if got := (&Server{MaxConnections: 7}).EffectiveMaxConnections(1<<20, 3); got != 7 {
		t.Errorf("configured 7: got %d", got)
	}
	if got, want := (&Server{}).EffectiveMaxConnections(20000, 2), DefaultMaxConnections(20000, 2); got != want {
		t.Errorf("derived: got %d, want %d", got, want)
	}
}
