package config

import (
	"cmp"
	"crypto/tls"
	"time"
)

// Defaults. Every one of them is the choice a security product should make
// when the administrator said nothing.
const (
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "text"
	DefaultDirectoryTimeout    = 10 * time.Second
	DefaultUsernameAttribute   = "sAMAccountName"
	DefaultUserFilter          = "({username_attribute}={username})"
	DefaultGroupFilter         = "(member={dn})"
	DefaultFailmode            = "secure"
	DefaultFactor              = "auto"
	DefaultPasscodeDelimiter   = ","
	DefaultIdleTimeout         = time.Hour
	DefaultDuoTimeout          = 10 * time.Second
	DefaultDuoPushTimeout      = 60 * time.Second
	DefaultDuoProbeInterval    = 10 * time.Second
	DefaultDuoUnreachableAfter = 3
	DefaultDuoDegradedLatency  = 3 * time.Second
	DefaultAlertTimeout        = 5 * time.Second
	DefaultLameDuck            = time.Duration(0)
	DefaultTLSMinVersion       = "1.2"

	// Values of the Duo state machine and the directory probe that have no
	// key of their own.
	//
	// DuoWindow is the sliding window for preauth latency and degraded
	// outcomes, and how long a good login answer vetoes probe evidence.
	DuoWindow = time.Minute
	// DuoFastProbeInterval is how often Duo is probed while down, and the
	// least time between two trial binds.
	DuoFastProbeInterval = time.Second
	// DefaultDirectoryProbeInterval is directories.NAME.probe_interval's
	// default: how often each URL is pinged and the sections' secure
	// groups read, for /readyz and the metrics.
	DefaultDirectoryProbeInterval = 10 * time.Second
	// CertCheckInterval is how often, at most, the certificate and key
	// files (servers[].tls, directories.NAME.cert_file) are looked at for
	// a change (modification time, size) to reload them.
	CertCheckInterval = 10 * time.Second
	// ReleaseUpstreamAfter is how long a bind waits on its second factor
	// before its directory connection (bound as the user) is closed, to be
	// dialled and bound again if Duo allows: a pending push then holds the
	// client's connection alone (README "Descriptors"). Answers quicker
	// than this (passcodes, bypass, an instant push) keep the connection.
	ReleaseUpstreamAfter = time.Second

	// Abuse bounds: what one client, or many without credentials, can make
	// ldapgate hold.
	DefaultMaxConnectionsPerIP     = 64
	DefaultMaxPendingRequests      = 32
	DefaultMaxRequestSize          = 4 << 20
	DefaultWriteTimeout            = 30 * time.Second
	DefaultRequestTimeout          = 30 * time.Second
	DefaultDirectoryMaxConnections = 32
	// DirectoryIdleConnections bounds the password-check connections kept
	// open for the next check (those of clients that bound and left, and
	// of refused binds), so that a burst does not leave the directory
	// holding hundreds of idle connections of ours.
	DirectoryIdleConnections = 16
	// The lookup account's connections and the searches in flight on each:
	// well below OpenLDAP's conn_max_pending_auth (1,000), past which it
	// closes a connection.
	DefaultLookupConnections = 4
	DefaultLookupInFlight    = 64

	// The abuse guards (README "Abuse resistance"). The throttles are
	// meant to bite before the directory's own lockout: keep
	// per_user_address below Active Directory's lockout threshold.
	DefaultMaxPushes                    = 3
	DefaultMaxPasscodeAttempts          = 5
	DefaultPushWindow                   = 10 * time.Minute
	DefaultThrottlePerUserAddress       = 5
	DefaultThrottlePerUserAddressWindow = 15 * time.Minute
	DefaultThrottlePerAddress           = 20
	DefaultThrottlePerAddressWindow     = time.Minute
	DefaultBindCacheTTL                 = time.Duration(0) // off
	// GuardMaxKeys bounds the keys the guards hold in memory, every
	// section and kind together (budgets, blocks, cached binds); beyond
	// it the least recently used is forgotten.
	GuardMaxKeys = 100_000
)

// Bounds of the guards.
const (
	MinMaxPushes      = 1
	MaxMaxPushes      = 100
	MinPushWindow     = time.Minute
	MaxPushWindow     = 24 * time.Hour
	MinThrottleCount  = 1
	MaxThrottleCount  = 10_000
	MinThrottleWindow = time.Second
	MaxThrottleWindow = 24 * time.Hour
	MinBindCacheTTL   = time.Duration(0)
	MaxBindCacheTTL   = 10 * time.Minute
)

// MinTLSVersion is the oldest TLS version ldapgate speaks, to clients
// (tls.min_version cannot go lower) and to directories.
const MinTLSVersion = tls.VersionTLS12

// Bounds of the counts and sizes.
const (
	MinMaxConnections          = 1
	MaxMaxPendingRequests      = 1024
	MinMaxRequestSize          = 1 << 10
	MaxMaxRequestSize          = 64 << 20
	MaxDirectoryMaxConnections = 10000
	MaxLookupConnections       = 64
	MaxLookupInFlight          = 1000
	// BufferedRequestsFactor: the bytes buffered for requests still
	// arriving, across all connections of a section, are bounded by this
	// many max_request_size.
	BufferedRequestsFactor = 16
	// DescriptorsPerClient is what one client connection costs: itself,
	// and its directory connection once let in. A push pending past
	// ReleaseUpstreamAfter holds no directory connection, and its Duo call
	// shares an HTTP/2 connection (over HTTP/1.1 it holds one of its own:
	// two again).
	DescriptorsPerClient = 2
	// ReservedDescriptors are kept for listeners, logs, the lookup and
	// password-check connections and Duo's HTTP/2 connections (one per
	// server stream limit, often 100-250 calls) when max_connections is
	// derived.
	ReservedDescriptors = 128
)

// DefaultMaxConnections is servers[].max_connections when unset: what the
// process's descriptor limit (nofile, the soft limit once raised to the
// hard one) allows, shared between the sections, never below
// MinMaxConnections.
func DefaultMaxConnections(nofile uint64, sections int) int {
	if sections < 1 {
		sections = 1
	}
	var usable uint64
	switch {
	case nofile > 1<<40: // RLIM_INFINITY or close: still a bound
		usable = 1 << 20
	case nofile > ReservedDescriptors:
		usable = nofile - ReservedDescriptors
	}
	return max(MinMaxConnections, int(usable/DescriptorsPerClient)/sections)
}

// EffectiveMaxConnections is the section's max_connections in force: the
// configured value, or when it is 0 what the descriptor limit allows
// (DefaultMaxConnections).
func (s *Server) EffectiveMaxConnections(nofile uint64, sections int) int {
	if s.MaxConnections > 0 {
		return s.MaxConnections
	}
	return DefaultMaxConnections(nofile, sections)
}

// MaxBufferedBytes bounds the bytes of requests still arriving across all
// connections of a section.
func (s *Server) MaxBufferedBytes() int { return BufferedRequestsFactor * s.MaxRequestSize }

// Bounds of every duration. A value outside them is a mistake, not a
// policy: a duo.timeout of 3ns (authproxy.cfg's `timeout=3` read without a
// unit) makes every preauth "unreachable" and lets a safe section in on the
// password alone. Validation names the key and the range.
const (
	// MinDuoTimeout: Duo is across the internet; a healthy preauth can take
	// hundreds of milliseconds, and a timeout it beats opens safe sections.
	MinDuoTimeout = time.Second
	MaxDuoTimeout = 2 * time.Minute
	// push_timeout is at least duo.timeout: the auth step waits for a person.
	MaxDuoPushTimeout = 5 * time.Minute
	// MinDirectoryTimeout allows a directory on the same network; below it
	// every bind fails.
	MinDirectoryTimeout = 100 * time.Millisecond
	MaxDirectoryTimeout = 2 * time.Minute
	// directories.NAME.probe_interval: below 500ms only loads the
	// directory; above an hour an outage goes unnoticed.
	MinDirectoryProbeInterval = 500 * time.Millisecond
	MaxDirectoryProbeInterval = time.Hour
	// idle_timeout 0 means DefaultIdleTimeout.
	MinIdleTimeout = time.Second
	MaxIdleTimeout = 24 * time.Hour
	// MinDuoProbeInterval is what the integration tests use; shorter only
	// spends Duo's rate limit on probes.
	MinDuoProbeInterval = 500 * time.Millisecond
	MaxDuoProbeInterval = time.Hour
	// degraded_latency is above 0 and below duo.timeout: a preauth slower
	// than duo.timeout is a timeout, never a latency sample, so a
	// threshold at or above it could never fire.
	MinDuoDegradedLatency = time.Nanosecond
	// alerts.timeout 0 means DefaultAlertTimeout.
	MinAlertTimeout = 100 * time.Millisecond
	MaxAlertTimeout = time.Minute
	// shutdown_timeout: long enough for a pending push, bounded so a
	// stop always ends.
	MinShutdownTimeout = time.Second
	MaxShutdownTimeout = 10 * time.Minute
	// health.lame_duck 0 means no drain delay.
	MinLameDuck time.Duration = 0
	MaxLameDuck               = time.Minute
	// write_timeout and request_timeout: long enough for a slow link and a
	// large write, short enough that a client cannot hold a slot forever.
	MinWriteTimeout   = time.Second
	MaxWriteTimeout   = 10 * time.Minute
	MinRequestTimeout = time.Second
	MaxRequestTimeout = 10 * time.Minute
)

// DefaultPushTimeoutFor is duo.push_timeout when unset: DefaultDuoPushTimeout,
// or duo.timeout when that is longer, so that the default obeys its bounds.
func DefaultPushTimeoutFor(timeout time.Duration) time.Duration {
	return min(max(DefaultDuoPushTimeout, timeout), MaxDuoPushTimeout)
}

// ShutdownGrace is what the default shutdown_timeout adds to the longest
// duo.push_timeout: time for the directory and the answer once Duo decided.
const ShutdownGrace = 5 * time.Second

// DefaultShutdownTimeoutFor is shutdown_timeout when unset: the longest
// duo.push_timeout of the sections plus ShutdownGrace, so that a stop lets
// a pending push end with its real answer; within the bounds.
func DefaultShutdownTimeoutFor(servers []*Server) time.Duration {
	longest := DefaultDuoPushTimeout
	if len(servers) > 0 {
		longest = 0
	}
	for _, s := range servers {
		if s != nil {
			longest = max(longest, s.Duo.PushTimeout)
		}
	}
	return min(max(longest+ShutdownGrace, MinShutdownTimeout), MaxShutdownTimeout)
}

// DefaultDegradedLatencyFor is duo.degraded_latency when unset:
// DefaultDuoDegradedLatency, or half of duo.timeout when that is shorter, so
// that a slow Duo is still seen as slow before its calls time out.
func DefaultDegradedLatencyFor(timeout time.Duration) time.Duration {
	if half := timeout / 2; half > 0 && half < DefaultDuoDegradedLatency {
		return half
	}
	return DefaultDuoDegradedLatency
}

// applyDefaults fills what viper's SetDefault cannot reach: fields inside
// list elements and map values. cmp.Or keeps a value that is set and
// takes the default for a zero one.
func (c *Config) applyDefaults() {
	c.Log.Level = cmp.Or(c.Log.Level, DefaultLogLevel)
	c.Log.Format = cmp.Or(c.Log.Format, DefaultLogFormat)
	c.Alerts.Timeout = cmp.Or(c.Alerts.Timeout, DefaultAlertTimeout)
	c.AuthSyslog.applyDefaults()
	c.State.applyDefaults()
	for name, d := range c.Directories {
		if d == nil {
			continue
		}
		d.Name = name
		d.Timeout = cmp.Or(d.Timeout, DefaultDirectoryTimeout)
		d.ProbeInterval = cmp.Or(d.ProbeInterval, DefaultDirectoryProbeInterval)
		d.UsernameAttribute = cmp.Or(d.UsernameAttribute, DefaultUsernameAttribute)
		d.UserFilter = cmp.Or(d.UserFilter, DefaultUserFilter)
		d.GroupFilter = cmp.Or(d.GroupFilter, DefaultGroupFilter)
		d.MaxConnections = cmp.Or(d.MaxConnections, DefaultDirectoryMaxConnections)
		d.LookupConnections = cmp.Or(d.LookupConnections, DefaultLookupConnections)
		d.LookupInFlight = cmp.Or(d.LookupInFlight, DefaultLookupInFlight)
	}
	for _, s := range c.Servers {
		if s == nil {
			continue
		}
		s.Failmode = cmp.Or(s.Failmode, DefaultFailmode)
		s.Factor = cmp.Or(s.Factor, DefaultFactor)
		s.IdleTimeout = cmp.Or(s.IdleTimeout, DefaultIdleTimeout)
		if s.MaxConnectionsPerIP == 0 {
			s.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
			if s.MaxConnections > 0 {
				// The default never exceeds a cap the administrator set.
				s.MaxConnectionsPerIP = min(s.MaxConnectionsPerIP, s.MaxConnections)
			}
		}
		s.MaxPendingRequests = cmp.Or(s.MaxPendingRequests, DefaultMaxPendingRequests)
		s.MaxRequestSize = cmp.Or(s.MaxRequestSize, DefaultMaxRequestSize)
		s.WriteTimeout = cmp.Or(s.WriteTimeout, DefaultWriteTimeout)
		s.RequestTimeout = cmp.Or(s.RequestTimeout, DefaultRequestTimeout)
		s.TLS.MinVersion = cmp.Or(s.TLS.MinVersion, DefaultTLSMinVersion)
		s.ProxyProtocol.applyDefaults()
		th := &s.Throttle
		th.PerUserAddress = cmp.Or(th.PerUserAddress, DefaultThrottlePerUserAddress)
		th.PerUserAddressWindow = cmp.Or(th.PerUserAddressWindow, DefaultThrottlePerUserAddressWindow)
		th.PerAddress = cmp.Or(th.PerAddress, DefaultThrottlePerAddress)
		th.PerAddressWindow = cmp.Or(th.PerAddressWindow, DefaultThrottlePerAddressWindow)
		d := &s.Duo
		d.MaxPushes = cmp.Or(d.MaxPushes, DefaultMaxPushes)
		d.MaxPasscodeAttempts = cmp.Or(d.MaxPasscodeAttempts, DefaultMaxPasscodeAttempts)
		d.PushWindow = cmp.Or(d.PushWindow, DefaultPushWindow)
		d.Timeout = cmp.Or(d.Timeout, DefaultDuoTimeout)
		d.PushTimeout = cmp.Or(d.PushTimeout, DefaultPushTimeoutFor(d.Timeout))
		d.ProbeInterval = cmp.Or(d.ProbeInterval, DefaultDuoProbeInterval)
		d.UnreachableAfter = cmp.Or(d.UnreachableAfter, DefaultDuoUnreachableAfter)
		d.DegradedLatency = cmp.Or(d.DegradedLatency, DefaultDegradedLatencyFor(d.Timeout))
	}
	// after the sections' push_timeout defaults, which it follows
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeoutFor(c.Servers))
}

// MaxDuoClockSkew is how far this machine's clock may be from Duo's before
// `ldapgate check --online` fails: Duo refuses signed requests whose Date
// is minutes off (300s), so a minute is the warning before logins break.
const MaxDuoClockSkew = time.Minute

// Break-glass codes (servers[].break_glass, `ldapgate break-glass`).
const (
	// DefaultBreakGlassCount is how many codes `break-glass issue` prints
	// without --count; MaxBreakGlassCount the most it prints at once.
	DefaultBreakGlassCount = 10
	MaxBreakGlassCount     = 100
	// MaxBreakGlassUsers bounds servers[].break_glass.users: break-glass
	// is for a few named administrators, not a population.
	MaxBreakGlassUsers = 100
	// The argon2id costs of new codes: about 50 ms and 32 MiB per typed
	// code on a 2-core machine. A code is 120 random bits, so the hash
	// only has to make a stolen codes file useless, not resist guessing.
	BreakGlassKDFTime      = 2
	BreakGlassKDFMemoryKiB = 32 * 1024
	BreakGlassKDFThreads   = 2
	// The most a stored code may ask for: a codes file cannot make one
	// bind cost more.
	BreakGlassMaxKDFTime      = 10
	BreakGlassMaxKDFMemoryKiB = 256 * 1024
	BreakGlassMaxKDFThreads   = 8
	// BreakGlassChecks bounds the codes being hashed at once, per section
	// (each costs BreakGlassKDFMemoryKiB).
	BreakGlassChecks = 2
	// BreakGlassStoreMaxKeys bounds the in-memory part of the store that
	// records a section's code uses (the uses themselves are in the file).
	BreakGlassStoreMaxKeys = 1024
)

// auth_syslog: auth events shipped to a syslog server (README "Logs").
const (
	DefaultAuthSyslogAppName  = "ldapgate"
	DefaultAuthSyslogFacility = "authpriv"
	// DefaultAuthSyslogQueue is how many records wait for the sender at
	// most; beyond it new ones are dropped and counted. Each is at most
	// AuthSyslogMaxMessage bytes, so the queue holds at most queue times
	// that in memory.
	DefaultAuthSyslogQueue = 10_000
	MinAuthSyslogQueue     = 1
	MaxAuthSyslogQueue     = 100_000
	// DefaultAuthSyslogTimeout bounds one connection attempt (TCP and the
	// TLS handshake) and one write.
	DefaultAuthSyslogTimeout = 5 * time.Second
	MinAuthSyslogTimeout     = 100 * time.Millisecond
	MaxAuthSyslogTimeout     = time.Minute
	// AuthSyslogMinBackoff and AuthSyslogMaxBackoff bound the wait between
	// connection attempts (doubling from the first to the second).
	AuthSyslogMinBackoff = 500 * time.Millisecond
	AuthSyslogMaxBackoff = 30 * time.Second
	// AuthSyslogFlushTimeout is how long, at stop, queued records may
	// still be sent once the listeners have stopped.
	AuthSyslogFlushTimeout = 2 * time.Second
	// AuthSyslogMaxMessage bounds one syslog message (header and JSON
	// record), in bytes: below rsyslog's default maxMessageSize (8k), and
	// it bounds the queue's memory. Longer records have their longest
	// text fields shortened.
	AuthSyslogMaxMessage = 8000
	// MaxAuthSyslogAppName is RFC 5424's bound on APP-NAME.
	MaxAuthSyslogAppName = 48
)

// The PROXY protocol (servers[].proxy_protocol).
const (
	// DefaultProxyHeaderTimeout is proxy_protocol.header_timeout's
	// default: a balancer sends its header at once; a trusted source that
	// has not within it is closed, so it cannot hold a slot.
	DefaultProxyHeaderTimeout = 5 * time.Second
	MinProxyHeaderTimeout     = 100 * time.Millisecond
	MaxProxyHeaderTimeout     = time.Minute
	// MaxProxyTrusted bounds proxy_protocol.trusted: a few balancers.
	MaxProxyTrusted = 256
)
