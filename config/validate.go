package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
	"github.com/ldapgate/ldapgate/internal/human"
)

var sectionName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate reports every problem of c, each named by its key path, as a
// *ValidationError (nil when there is none). Load and Parse run it on what
// they decoded; a caller that builds or changes a Config runs it before
// using one.
func (c *Config) Validate() error {
	var p Problems
	c.validate(&p)
	return p.Err()
}

// validate records every problem; it never stops at the first.
func (c *Config) validate(p *Problems) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", ErrInvalid, "must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		p.add("log.format", ErrInvalid, "must be text or json")
	}
	if c.Health.Listen != "" {
		checkListen(p, "health.listen", c.Health.Listen)
	}
	checkRange(p, "health.lame_duck", c.Health.LameDuck, MinLameDuck, MaxLameDuck)
	checkRange(p, "shutdown_timeout", c.ShutdownTimeout, MinShutdownTimeout, MaxShutdownTimeout)
	if c.Alerts.WebhookURL != "" {
		u, err := url.Parse(c.Alerts.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("alerts.webhook_url", ErrInvalid, "must be an http:// or https:// URL")
		}
	}
	checkRange(p, "alerts.timeout", c.Alerts.Timeout, MinAlertTimeout, MaxAlertTimeout)
	c.State.validate(p)

	if len(c.Directories) == 0 {
		p.add("directories", ErrRequired, "at least one directory is required")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Directories)) {
		c.Directories[name].validate(p, "directories."+name)
	}

	if len(c.Servers) == 0 {
		p.add("servers", ErrRequired, "at least one server section is required")
	}
	names := map[string]int{}
	var listens []listener
	if c.Health.Listen != "" {
		listens = append(listens, listener{"health.listen", c.Health.Listen})
	}
	integrations := map[string]int{}
	for i, s := range c.Servers {
		path := fmt.Sprintf("servers[%d]", i)
		if s == nil {
			p.add(path, ErrInvalid, "empty server section")
			continue
		}
		s.validate(p, path)
		if j, dup := names[s.Name]; dup && s.Name != "" {
			p.add(path+".name", ErrInvalid, "duplicates servers[%d].name %q", j, s.Name)
		}
		names[s.Name] = i
		for _, l := range []struct{ key, addr string }{{"listen", s.Listen}, {"ldaps_listen", s.LDAPSListen}} {
			if l.addr != "" {
				listens = append(listens, listener{path + "." + l.key, l.addr})
			}
		}
		// Sections that share a Duo integration share its client and its
		// health state, so they must agree on every setting of it.
		key := failmode.Integration(s.Duo.APIHost, s.Duo.IntegrationKey)
		if j, shared := integrations[key]; shared && s.Duo.APIHost != "" {
			if a, b := c.Servers[j].Duo, s.Duo; !sameIntegration(a, b) {
				p.add(path+".duo", ErrInvalid, "shares integration %s with servers[%d] but its settings differ; make them identical", key, j)
			}
		} else {
			integrations[key] = i
		}
		if s.Directory == "" {
			p.add(path+".directory", ErrRequired, "must name a directory")
		} else if _, ok := c.Directories[strings.ToLower(s.Directory)]; !ok {
			p.add(path+".directory", ErrInvalid, "no directory named %q", s.Directory)
		}
	}
	checkListenCollisions(p, listens)
	c.checkBreakGlassFiles(p)
	checkLogFile(p, "auth_log", c.AuthLog)
	c.AuthSyslog.validate(p, "auth_syslog")
	c.validateAccept(p)
}

func (d *Directory) validate(p *Problems, path string) {
	if d == nil {
		p.add(path, ErrInvalid, "empty directory section")
		return
	}
	if !sectionName.MatchString(d.Name) {
		p.add(path, ErrInvalid, "directory names are lowercase letters, digits, '-' and '_'")
	}
	if len(d.URLs) == 0 {
		p.add(path+".urls", ErrRequired, "at least one ldap:// or ldaps:// URL is required")
	}
	for i, raw := range d.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p.add(fmt.Sprintf("%s.urls[%d]", path, i), ErrInvalid, "must be ldap://host[:port] or ldaps://host[:port]")
			continue
		}
		if u.User != nil {
			// It would reach logs, metric labels and /status; the lookup
			// account has keys of its own.
			p.add(fmt.Sprintf("%s.urls[%d]", path, i), ErrInvalid, "must not carry a user or password; use bind_dn and bind_password")
		}
		if d.StartTLS && u.Scheme == "ldaps" {
			p.add(fmt.Sprintf("%s.urls[%d]", path, i), ErrInvalid, "start_tls cannot be used with ldaps://")
		}
	}
	checkRange(p, path+".timeout", d.Timeout, MinDirectoryTimeout, MaxDirectoryTimeout)
	checkRange(p, path+".probe_interval", d.ProbeInterval, MinDirectoryProbeInterval, MaxDirectoryProbeInterval)
	checkCAFile(p, path+".ca_file", d.CAFile)
	d.validateTLS(p, path)
	if d.BindDN != "" {
		checkBindName(p, path+".bind_dn", d.BindDN)
		if d.BindPassword == "" {
			p.add(path+".bind_password", ErrRequired, "bind_dn needs bind_password, bind_password_file or %s", EnvName("directories", d.Name, "bind_password"))
		}
	} else if d.BindPassword != "" {
		p.add(path+".bind_dn", ErrRequired, "bind_password is set but bind_dn is not")
	}
	if d.BaseDN == "" {
		p.add(path+".base_dn", ErrRequired, "is required")
	} else {
		checkDN(p, path+".base_dn", d.BaseDN)
	}
	checkCount(p, path+".max_connections", d.MaxConnections, 1, MaxDirectoryMaxConnections, "")
	checkCount(p, path+".lookup_connections", d.LookupConnections, 1, MaxLookupConnections, "")
	checkCount(p, path+".lookup_in_flight", d.LookupInFlight, 1, MaxLookupInFlight, "")
	if strings.ContainsAny(d.UsernameAttribute, " =()*\\,") || d.UsernameAttribute == "" {
		p.add(path+".username_attribute", ErrInvalid, "must be an attribute name")
	}
	if !strings.Contains(d.UserFilter, "{username}") && !strings.Contains(d.UserFilter, "{name}") {
		p.add(path+".user_filter", ErrInvalid, "must contain {username} or {name}")
	} else if _, err := ldap.CompileFilter(d.ExpandUserFilter("x", "x")); err != nil {
		p.add(path+".user_filter", ErrInvalid, "not a valid LDAP filter: %v", err)
	}
	if !strings.Contains(d.GroupFilter, "{dn}") {
		p.add(path+".group_filter", ErrInvalid, "must contain {dn}")
	} else if _, err := ldap.CompileFilter(d.ExpandGroupFilter("cn=x")); err != nil {
		p.add(path+".group_filter", ErrInvalid, "not a valid LDAP filter: %v", err)
	}
}

// ExpandUserFilter fills user_filter for a bind name; values are escaped.
func (d *Directory) ExpandUserFilter(username, name string) string {
	return strings.NewReplacer(
		"{username_attribute}", d.UsernameAttribute,
		"{username}", ldap.EscapeFilter(username),
		"{name}", ldap.EscapeFilter(name),
	).Replace(d.UserFilter)
}

// ExpandGroupFilter fills group_filter for an entry DN; the DN is escaped.
func (d *Directory) ExpandGroupFilter(dn string) string {
	return strings.ReplaceAll(d.GroupFilter, "{dn}", ldap.EscapeFilter(dn))
}

func (s *Server) validate(p *Problems, path string) {
	if !sectionName.MatchString(s.Name) {
		p.add(path+".name", ErrInvalid, "must be 1-63 lowercase letters, digits, '-' or '_'")
	}
	switch {
	case s.Listen != "":
		checkListen(p, path+".listen", s.Listen)
	case s.LDAPSListen == "":
		p.add(path+".listen", ErrRequired, "is required (host:port), or ldaps_listen")
	}
	if s.LDAPSListen != "" {
		checkListen(p, path+".ldaps_listen", s.LDAPSListen)
	}
	var err error
	if s.mode, err = failmode.ParseMode(s.Failmode); err != nil {
		p.add(path+".failmode", ErrInvalid, "must be safe or secure")
	}
	if s.factor, err = failmode.ParseFactor(s.Factor); err != nil {
		p.add(path+".factor", ErrInvalid, "must be auto, push or phone")
	}
	for i, dn := range s.SecureGroups {
		checkDN(p, fmt.Sprintf("%s.secure_groups[%d]", path, i), dn)
	}
	for i, dn := range s.ExemptDNs {
		checkDN(p, fmt.Sprintf("%s.exempt_dns[%d]", path, i), dn)
	}
	if d := s.Delimiter(); d != "" {
		if len(d) > 3 || strings.ContainsAny(d, "0123456789") || strings.TrimSpace(d) != d {
			p.add(path+".passcode_delimiter", ErrInvalid, "must be 1-3 characters, no digits or spaces, or \"\" to disable passcodes")
		}
	}
	checkRange(p, path+".idle_timeout", s.IdleTimeout, MinIdleTimeout, MaxIdleTimeout)
	checkCount(p, path+".max_connections", s.MaxConnections, 0, 1<<20, "0 (derived from the descriptor limit)")
	checkCount(p, path+".max_connections_per_ip", s.MaxConnectionsPerIP, MinMaxConnections, 1<<20, "")
	if s.MaxConnections > 0 && s.MaxConnectionsPerIP > s.MaxConnections {
		p.add(path+".max_connections_per_ip", ErrInvalid, "%d is more than max_connections (%d)", s.MaxConnectionsPerIP, s.MaxConnections)
	}
	checkCount(p, path+".max_pending_requests", s.MaxPendingRequests, 1, MaxMaxPendingRequests, "")
	checkCount(p, path+".max_request_size", s.MaxRequestSize, MinMaxRequestSize, MaxMaxRequestSize, "")
	checkRange(p, path+".write_timeout", s.WriteTimeout, MinWriteTimeout, MaxWriteTimeout)
	checkRange(p, path+".request_timeout", s.RequestTimeout, MinRequestTimeout, MaxRequestTimeout)
	s.TLS.validate(p, path+".tls")
	checkCount(p, path+".throttle.per_user_address", s.Throttle.PerUserAddress, MinThrottleCount, MaxThrottleCount, "")
	checkRange(p, path+".throttle.per_user_address_window", s.Throttle.PerUserAddressWindow, MinThrottleWindow, MaxThrottleWindow)
	checkCount(p, path+".throttle.per_address", s.Throttle.PerAddress, MinThrottleCount, MaxThrottleCount, "")
	checkRange(p, path+".throttle.per_address_window", s.Throttle.PerAddressWindow, MinThrottleWindow, MaxThrottleWindow)
	checkRange(p, path+".bind_cache_ttl", s.BindCacheTTL, MinBindCacheTTL, MaxBindCacheTTL)
	if s.TLS.Require && s.TLS.CertFile == "" {
		p.add(path+".tls.require", ErrInvalid, "requires cert_file and key_file")
	}
	if s.LDAPSListen != "" && (s.TLS.CertFile == "" || s.TLS.KeyFile == "") {
		p.add(path+".ldaps_listen", ErrInvalid, "needs a certificate: set tls.cert_file and tls.key_file")
	}
	s.Duo.validate(p, path+".duo", s.Name)
	s.BreakGlass.validate(p, path+".break_glass", s)
	s.ProxyProtocol.validate(p, path+".proxy_protocol")
}

func (d *Duo) validate(p *Problems, path, server string) {
	switch {
	case d.APIHost == "":
		p.add(path+".api_host", ErrRequired, "is required")
	case strings.Contains(d.APIHost, "://") || strings.ContainsAny(d.APIHost, "/ ?#@"):
		p.add(path+".api_host", ErrInvalid, "must be a host name (and optional :port), without scheme or path")
	}
	if d.IntegrationKey == "" {
		p.add(path+".integration_key", ErrRequired, "is required")
	} else if strings.ContainsAny(d.IntegrationKey, " \t\r\n") {
		p.add(path+".integration_key", ErrInvalid, "must not contain spaces")
	}
	if d.SecretKey == "" {
		p.add(path+".secret_key", ErrRequired, "is required (secret_key, secret_key_file or %s)", EnvName("servers", server, "duo_secret_key"))
	}
	checkCAFile(p, path+".ca_file", d.CAFile)
	d.validateDurations(p, path)
	checkCount(p, path+".max_pushes", d.MaxPushes, MinMaxPushes, MaxMaxPushes, "")
	checkCount(p, path+".max_passcode_attempts", d.MaxPasscodeAttempts, MinMaxPushes, MaxMaxPushes, "")
	checkRange(p, path+".push_window", d.PushWindow, MinPushWindow, MaxPushWindow)
	if d.UnreachableAfter < 1 {
		p.add(path+".unreachable_after", ErrInvalid, "must be at least 1")
	}
}

// validateDurations checks the Duo durations against their bounds and
// duo.timeout. While duo.timeout itself is bad, the others are held to
// the bounds duo.timeout has rather than to its value.
func (d *Duo) validateDurations(p *Problems, path string) {
	timeoutPath := path + ".timeout"
	checkRange(p, timeoutPath, d.Timeout, MinDuoTimeout, MaxDuoTimeout)
	timeoutOK := !p.has(timeoutPath)

	if timeoutOK {
		if !p.has(path+".push_timeout") && (d.PushTimeout < d.Timeout || d.PushTimeout > MaxDuoPushTimeout) {
			outOfRange(p, path+".push_timeout", d.PushTimeout, fmt.Sprintf("duo.timeout (%s) to %s", human.Duration(d.Timeout), human.Duration(MaxDuoPushTimeout)))
		}
	} else {
		checkRange(p, path+".push_timeout", d.PushTimeout, MinDuoTimeout, MaxDuoPushTimeout)
	}

	checkRange(p, path+".probe_interval", d.ProbeInterval, MinDuoProbeInterval, MaxDuoProbeInterval)

	upper, below := MaxDuoTimeout, "duo.timeout"
	if timeoutOK {
		upper, below = d.Timeout, fmt.Sprintf("duo.timeout (%s)", human.Duration(d.Timeout))
	}
	if !p.has(path+".degraded_latency") && (d.DegradedLatency < MinDuoDegradedLatency || d.DegradedLatency >= upper) {
		outOfRange(p, path+".degraded_latency", d.DegradedLatency, "above 0 and below "+below)
	}
}

// checkCount records a count outside [lo, hi]; zero, when it means
// something, is named in zero.
func checkCount(p *Problems, path string, n, lo, hi int, zero string) {
	if lo <= n && n <= hi {
		return
	}
	allowed := fmt.Sprintf("%d to %d", lo, hi)
	if zero != "" {
		allowed = fmt.Sprintf("%d to %d, or %s", max(lo, 1), hi, zero)
	}
	p.add(path, ErrInvalid, "%d is out of range; allowed %s", n, allowed)
}

func checkDN(p *Problems, path, s string) {
	if _, err := dn.Parse(strings.TrimSpace(s)); err != nil {
		p.add(path, ErrInvalid, "not a valid DN")
	}
}

func checkListen(p *Problems, path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(path, ErrInvalid, "must be host:port")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add(path, ErrInvalid, "port must be 0-65535")
	}
	if host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /") {
		p.add(path, ErrInvalid, "bad host")
	}
}

func checkFile(p *Problems, path, file string) {
	if file == "" {
		return
	}
	if _, err := os.Stat(file); err != nil {
		p.add(path, ErrInvalid, "%v", err)
	}
}

func sameIntegration(a, b Duo) bool {
	a.SecretKeyFile, b.SecretKeyFile = "", ""
	a.APIHost, b.APIHost = strings.ToLower(a.APIHost), strings.ToLower(b.APIHost)
	return a == b
}
