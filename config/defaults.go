package config

import "time"

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
)

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
	// health.lame_duck 0 means no drain delay.
	MinLameDuck time.Duration = 0
	MaxLameDuck               = time.Minute
)

// DefaultPushTimeoutFor is duo.push_timeout when unset: DefaultDuoPushTimeout,
// or duo.timeout when that is longer, so that the default obeys its bounds.
func DefaultPushTimeoutFor(timeout time.Duration) time.Duration {
	return min(max(DefaultDuoPushTimeout, timeout), MaxDuoPushTimeout)
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
// list elements and map values.
func (c *Config) applyDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Alerts.Timeout == 0 {
		c.Alerts.Timeout = DefaultAlertTimeout
	}
	for name, d := range c.Directories {
		if d == nil {
			continue
		}
		d.Name = name
		if d.Timeout == 0 {
			d.Timeout = DefaultDirectoryTimeout
		}
		if d.UsernameAttribute == "" {
			d.UsernameAttribute = DefaultUsernameAttribute
		}
		if d.UserFilter == "" {
			d.UserFilter = DefaultUserFilter
		}
		if d.GroupFilter == "" {
			d.GroupFilter = DefaultGroupFilter
		}
	}
	for _, s := range c.Servers {
		if s == nil {
			continue
		}
		if s.Failmode == "" {
			s.Failmode = DefaultFailmode
		}
		if s.Factor == "" {
			s.Factor = DefaultFactor
		}
		if s.IdleTimeout == 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		d := &s.Duo
		if d.Timeout == 0 {
			d.Timeout = DefaultDuoTimeout
		}
		if d.PushTimeout == 0 {
			d.PushTimeout = DefaultPushTimeoutFor(d.Timeout)
		}
		if d.ProbeInterval == 0 {
			d.ProbeInterval = DefaultDuoProbeInterval
		}
		if d.UnreachableAfter == 0 {
			d.UnreachableAfter = DefaultDuoUnreachableAfter
		}
		if d.DegradedLatency == 0 {
			d.DegradedLatency = DefaultDegradedLatencyFor(d.Timeout)
		}
	}
}
