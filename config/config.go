// Package config loads ldapgate's YAML configuration into typed structs and
// validates all of it at once, so an administrator sees every mistake, each
// named by its key path, in one run of `ldapgate check`.
//
// Unknown keys are errors: a misspelt `failmod: safe` must not silently leave
// a section on a default the administrator did not choose.
package config

import (
	"fmt"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// Config is the whole file.
type Config struct {
	Log         Log                   `mapstructure:"log"`
	AuthLog     string                `mapstructure:"auth_log"`
	AuthSyslog  AuthSyslog            `mapstructure:"auth_syslog"`
	Health      Health                `mapstructure:"health"`
	Admin       Admin                 `mapstructure:"admin"`
	Alerts      Alerts                `mapstructure:"alerts"`
	Directories map[string]*Directory `mapstructure:"directories"`
	Servers     []*Server             `mapstructure:"servers"`
	Check       Check                 `mapstructure:"check"`
	// State is where the guards' state lives (state.go).
	State State `mapstructure:"state"`

	// ShutdownTimeout is how long, after SIGTERM (and the lame duck), and
	// after a reload removed or moved a listener, binds in flight may run
	// before they are cut. 0 (unset): the longest duo.push_timeout plus
	// ShutdownGrace (DefaultShutdownTimeoutFor).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`

	// file is the path Load read (for the audit of its permissions), and
	// inline the key paths of secrets written in it rather than in a
	// *_file or the environment.
	file   string
	inline []string
}

// Check configures `ldapgate check`'s security audit.
type Check struct {
	// Accept lists finding IDs the operator has reviewed and accepts: the
	// audit no longer reports them (see Audit).
	Accept []string `mapstructure:"accept"`
}

// Log configures the operational log (stderr).
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // text | json
}

// Health configures the HTTP listener for /healthz, /readyz, /status, /metrics.
type Health struct {
	Listen string `mapstructure:"listen"` // "" disables it
	// LameDuck is how long, after SIGTERM, /readyz answers 503 while the
	// LDAP listeners keep serving, so load balancers drain before they stop.
	LameDuck time.Duration `mapstructure:"lame_duck"`
}

// Admin configures the unix socket for run-time commands (primary-only mode).
type Admin struct {
	Socket string `mapstructure:"socket"` // "" disables it
}

// Alerts configures where state changes are pushed.
type Alerts struct {
	WebhookURL string        `mapstructure:"webhook_url"`
	Timeout    time.Duration `mapstructure:"timeout"`
}

// Directory is an upstream LDAP directory (Active Directory, OpenLDAP...).
type Directory struct {
	// Name is the key under `directories:` (lowercased, as viper reads keys).
	Name string `mapstructure:"-"`

	URLs    []string      `mapstructure:"urls"`
	Timeout time.Duration `mapstructure:"timeout"`
	// ProbeInterval is how often every URL is pinged (and the sections'
	// secure groups read) for readiness, /status and the metrics.
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
	// StartTLS upgrades ldap:// connections before any bind.
	StartTLS bool `mapstructure:"start_tls"`
	// CAFile holds PEM roots for ldaps:// and StartTLS; empty uses the system roots.
	CAFile string `mapstructure:"ca_file"`
	// TLSServerName is the name the directory's certificate must carry,
	// for URLs that name it by IP address; empty: each URL's host.
	// Verification is always on.
	TLSServerName string `mapstructure:"tls_server_name"`
	// CertFile and KeyFile are a client certificate for directories that
	// demand mutual TLS; both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`

	// BindDN and BindPassword are the lookup account: it resolves non-DN bind
	// names and reads usernames and group membership.
	BindDN           string `mapstructure:"bind_dn"`
	BindPassword     Secret `mapstructure:"bind_password"`
	BindPasswordFile string `mapstructure:"bind_password_file"`

	BaseDN            string `mapstructure:"base_dn"`
	UsernameAttribute string `mapstructure:"username_attribute"`
	// UserFilter finds the entry for a bind name that is not a DN. {username}
	// is the name without a DOMAIN\ prefix or @domain suffix, {name} the name
	// as typed; both are escaped.
	UserFilter string `mapstructure:"user_filter"`
	// GroupFilter finds the groups of an entry; {dn} is the escaped entry DN.
	GroupFilter string `mapstructure:"group_filter"`
	// NestedGroups resolves membership through groups of groups (to
	// MaxGroupNesting levels), for directories without
	// LDAP_MATCHING_RULE_IN_CHAIN such as OpenLDAP. Active Directory does
	// it in one search with group_filter
	// (member:1.2.840.113556.1.4.1941:={dn}) instead.
	NestedGroups bool `mapstructure:"nested_groups"`
	// MaxConnections bounds the directory connections that check the
	// passwords of clients not yet let in; beyond it a bind is told "busy"
	// (51). Only a session ldapgate let in keeps a connection of its own.
	MaxConnections int `mapstructure:"max_connections"`
	// LookupConnections bounds the lookup account's connections, and
	// LookupInFlight the searches in flight on each: past both, a lookup
	// waits for a place within timeout.
	LookupConnections int `mapstructure:"lookup_connections"`
	LookupInFlight    int `mapstructure:"lookup_in_flight"`
}

// MaxGroupNesting bounds nested_groups: membership that goes deeper counts
// as privileged, never as "not a member".
const MaxGroupNesting = 8

// Server is one listening section: a port, a directory, a Duo integration
// and a failmode policy.
type Server struct {
	Name   string `mapstructure:"name"`
	Listen string `mapstructure:"listen"`
	// LDAPSListen serves the section with implicit TLS (LDAPS) as well as,
	// or instead of, Listen; it needs tls.cert_file and tls.key_file.
	LDAPSListen string `mapstructure:"ldaps_listen"`
	Directory   string `mapstructure:"directory"`
	TLS         TLS    `mapstructure:"tls"`
	Duo         Duo    `mapstructure:"duo"`

	Failmode          string   `mapstructure:"failmode"`
	SecureGroups      []string `mapstructure:"secure_groups"`
	ExemptPrimaryBind bool     `mapstructure:"exempt_primary_bind"`
	ExemptDNs         []string `mapstructure:"exempt_dns"`
	Factor            string   `mapstructure:"factor"`
	// PasscodeDelimiter is nil when unset (default ","), and "" when the
	// administrator disabled passcodes in the password.
	PasscodeDelimiter *string       `mapstructure:"passcode_delimiter"`
	AllowAnonymous    bool          `mapstructure:"allow_anonymous"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	// MaxConnections caps concurrent client connections on the section;
	// beyond it a client is told "busy" (51) and disconnected. 0 (unset):
	// derived at start from the descriptor limit (DefaultMaxConnections).
	MaxConnections int `mapstructure:"max_connections"`
	// MaxConnectionsPerIP caps the connections of one client address, so
	// that one host cannot take them all.
	MaxConnectionsPerIP int `mapstructure:"max_connections_per_ip"`
	// MaxPendingRequests bounds the requests of one connection in flight at
	// once; beyond it ldapgate stops reading from that connection.
	MaxPendingRequests int `mapstructure:"max_pending_requests"`
	// MaxRequestSize bounds one client request, in bytes.
	MaxRequestSize int `mapstructure:"max_request_size"`
	// WriteTimeout bounds writing one response: a client that does not read
	// its answers is disconnected.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// RequestTimeout bounds how long a request may take to arrive once its
	// first byte has (slowloris).
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// BreakGlass: one-time codes for named users while Duo is unreachable.
	BreakGlass BreakGlass `mapstructure:"break_glass"`
	// Throttle bounds failed binds per client address (README "Abuse
	// resistance").
	Throttle Throttle `mapstructure:"throttle"`
	// BindCacheTTL is how long a bind that passed the directory and Duo is
	// remembered so an identical one skips Duo (the directory still checks
	// the password); 0 disables the cache.
	BindCacheTTL time.Duration `mapstructure:"bind_cache_ttl"`
	// ProxyProtocol, when present, takes the client address from the PROXY
	// protocol header of trusted load balancers (proxyprotocol.go).
	ProxyProtocol *ProxyProtocol `mapstructure:"proxy_protocol"`

	// mode and factor are Failmode and Factor parsed, once, by validation.
	mode   failmode.Mode
	factor failmode.Factor
}

// Mode is the section's failmode as parsed by validation. Before a
// successful Validate it is the zero Mode, which failmode treats as secure.
func (s *Server) Mode() failmode.Mode { return s.mode }

// DefaultFactor is the section's factor as parsed by validation.
func (s *Server) DefaultFactor() failmode.Factor { return s.factor }

// Throttle bounds the binds the directory refuses: per (bind name, client
// address) and per client address, each N per window (a token bucket: N
// at once, then one more every window/N).
type Throttle struct {
	PerUserAddress       int           `mapstructure:"per_user_address"`
	PerUserAddressWindow time.Duration `mapstructure:"per_user_address_window"`
	PerAddress           int           `mapstructure:"per_address"`
	PerAddressWindow     time.Duration `mapstructure:"per_address_window"`
}

// TLS is a server section's certificate: clients upgrade with StartTLS on
// listen, and ldaps_listen speaks TLS from the first byte.
type TLS struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// Require refuses binds (and everything else but StartTLS) on a
	// connection that is not TLS (LDAPS, or upgraded with StartTLS).
	Require bool `mapstructure:"require"`
	// MinVersion is the oldest TLS version clients may use: "1.2" or "1.3".
	MinVersion string `mapstructure:"min_version"`

	// minVersion is MinVersion parsed by validation.
	minVersion uint16
}

// MinTLSVersion is tls.min_version as a crypto/tls version, as parsed by
// validation; before a successful Validate it is TLS 1.2's, never lower.
func (t *TLS) MinTLSVersion() uint16 { return max(t.minVersion, MinTLSVersion) }

// Duo is one Duo Auth API integration.
type Duo struct {
	APIHost        string `mapstructure:"api_host"`
	IntegrationKey string `mapstructure:"integration_key"`
	SecretKey      Secret `mapstructure:"secret_key"`
	SecretKeyFile  string `mapstructure:"secret_key_file"`
	// CAFile holds PEM roots that replace the built-in Duo roots.
	CAFile      string        `mapstructure:"ca_file"`
	Timeout     time.Duration `mapstructure:"timeout"`
	PushTimeout time.Duration `mapstructure:"push_timeout"`

	ProbeInterval    time.Duration `mapstructure:"probe_interval"`
	UnreachableAfter int           `mapstructure:"unreachable_after"`
	DegradedLatency  time.Duration `mapstructure:"degraded_latency"`

	// MaxPushes bounds the pushes and phone calls sent for one user per
	// PushWindow, and MaxPasscodeAttempts the passcodes tried (push
	// fatigue; README "Abuse resistance").
	MaxPushes           int           `mapstructure:"max_pushes"`
	MaxPasscodeAttempts int           `mapstructure:"max_passcode_attempts"`
	PushWindow          time.Duration `mapstructure:"push_window"`
}

// Delimiter returns the passcode delimiter in force ("" when disabled).
func (s *Server) Delimiter() string {
	if s.PasscodeDelimiter == nil {
		return DefaultPasscodeDelimiter
	}
	return *s.PasscodeDelimiter
}

// Secret is a string that never prints: fmt, logs and JSON see a placeholder.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// MarshalText keeps encoders (JSON, YAML) from writing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }
