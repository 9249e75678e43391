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
)

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
			d.PushTimeout = DefaultDuoPushTimeout
		}
		if d.ProbeInterval == 0 {
			d.ProbeInterval = DefaultDuoProbeInterval
		}
		if d.UnreachableAfter == 0 {
			d.UnreachableAfter = DefaultDuoUnreachableAfter
		}
		if d.DegradedLatency == 0 {
			d.DegradedLatency = DefaultDuoDegradedLatency
		}
	}
}
