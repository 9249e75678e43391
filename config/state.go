package config

import (
	"cmp"
	"net/url"
	"regexp"
	"time"
)

// State configures where the abuse guards' state and the break-glass
// codes' consumption live: in this process (memory, the default) or in a
// Redis shared by a fleet of instances (README "Running a fleet").
type State struct {
	// Backend is "memory" or "redis".
	Backend string `mapstructure:"backend"`
	// URL is redis://[user@]host:port[/db], or rediss:// for TLS. It
	// carries no password: see Password.
	URL string `mapstructure:"url"`
	// Password authenticates to Redis (AUTH); also password_file or
	// LDAPGATE_STATE_PASSWORD.
	Password     Secret   `mapstructure:"password"`
	PasswordFile string   `mapstructure:"password_file"`
	TLS          StateTLS `mapstructure:"tls"`
	// Timeout bounds every call to Redis; a call that takes longer is
	// handled as Redis being unreachable.
	Timeout time.Duration `mapstructure:"timeout"`
	// Prefix namespaces every key ldapgate writes.
	Prefix string `mapstructure:"prefix"`
}

// StateTLS is the TLS of a rediss:// URL: the roots Redis's certificate
// must chain to (empty: the system roots) and a client certificate.
type StateTLS struct {
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// The state store's values.
const (
	StateMemory = "memory"
	StateRedis  = "redis"

	DefaultStateBackend = StateMemory
	DefaultStateTimeout = 500 * time.Millisecond
	DefaultStatePrefix  = "ldapgate:"
	MinStateTimeout     = 10 * time.Millisecond
	MaxStateTimeout     = 10 * time.Second
	// StateProbeInterval is how often an unreachable Redis is tried again.
	StateProbeInterval = time.Second
	// StateSyncInterval is how often each instance reads the primary-only
	// switch its fleet shares.
	StateSyncInterval = time.Second
	// StateClockSkew is how far the instances' clocks may disagree when
	// one applies a primary-only expiry another set: an expiry further
	// than primaryonly.MaxDuration plus this from now is refused.
	StateClockSkew = time.Minute
)

var statePrefix = regexp.MustCompile(`^[A-Za-z0-9:_.-]{1,64}$`)

// Shared reports whether the state lives in a store shared by a fleet.
func (s State) Shared() bool { return s.Backend == StateRedis }

func (s *State) applyDefaults() {
	s.Backend = cmp.Or(s.Backend, DefaultStateBackend)
	s.Timeout = cmp.Or(s.Timeout, DefaultStateTimeout)
	s.Prefix = cmp.Or(s.Prefix, DefaultStatePrefix)
}

func (s *State) validate(p *Problems) {
	checkRange(p, "state.timeout", s.Timeout, MinStateTimeout, MaxStateTimeout)
	if !statePrefix.MatchString(s.Prefix) {
		p.add("state.prefix", ErrInvalid, "must be 1-64 letters, digits or : _ . -")
	}
	switch s.Backend {
	case StateMemory:
		for _, k := range []struct{ key, value string }{{"url", s.URL}, {"password", string(s.Password)},
			{"tls.ca_file", s.TLS.CAFile}, {"tls.cert_file", s.TLS.CertFile}} {
			if k.value != "" {
				p.add("state."+k.key, ErrInvalid, "is set but state.backend is memory; set backend: redis")
			}
		}
		return
	case StateRedis:
	default:
		p.add("state.backend", ErrInvalid, "must be memory or redis")
		return
	}
	if s.URL == "" {
		p.add("state.url", ErrRequired, "is required with backend redis (redis://host:6379 or rediss://host:6380)")
		return
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		p.add("state.url", ErrInvalid, "must be redis://[user@]host:port[/db] or rediss://...")
		return
	}
	if _, has := u.User.Password(); has {
		// It would reach logs and error messages; the password has keys
		// of its own.
		p.add("state.url", ErrInvalid, "must not carry a password; use state.password_file or %s", EnvName("state", "password"))
	}
	if u.RawQuery != "" {
		p.add("state.url", ErrInvalid, "must not carry options (?...); ldapgate sets the timeouts from state.timeout")
	}
	checkCAFile(p, "state.tls.ca_file", s.TLS.CAFile)
	checkKeyPair(p, "state.tls", s.TLS.CertFile, s.TLS.KeyFile)
	if u.Scheme != "rediss" {
		for _, k := range []struct{ key, value string }{{"ca_file", s.TLS.CAFile}, {"cert_file", s.TLS.CertFile}, {"key_file", s.TLS.KeyFile}} {
			if k.value != "" {
				p.add("state.tls."+k.key, ErrInvalid, "is set but state.url is not rediss://")
			}
		}
	}
}
