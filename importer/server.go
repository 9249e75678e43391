package importer

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/human"
)

var exemptOUKey = regexp.MustCompile(`^exempt_ou_([0-9]+)$`)

// server converts an [ldap_server_auto*] section into a servers[] entry.
func (c *converter) server(x *sec, name string, ini *INI) {
	i := len(c.out.Servers)
	s := &outServer{Name: name}
	c.out.Servers = append(c.out.Servers, s)
	path := fmt.Sprintf("servers[%d]", i)
	x.from(path, "")
	x.from(path+".name", "")

	// client: the directory.
	x.from(path+".directory", "client")
	switch client, ok := x.get("client"); {
	case !ok:
		x.problem("client", "is required: the [ad_client] section that checks passwords")
	case ini.Section(client) == nil:
		x.problem("client", "names no section [%s]", client)
	case sectionKind(client) != kindADClient:
		x.problem("client", "[%s] is not an [ad_client] section: ldapgate checks every password with a directory", client)
	default:
		s.Directory = c.dirNames[client]
	}

	// The listeners.
	iface := "0.0.0.0"
	if v, ok := x.get("interface"); ok && v != "" {
		if net.ParseIP(v) == nil && !validHost(v) {
			x.problem("interface", "%q is not an address%s", v, commentHint(v))
		}
		iface = v
	}
	s.Listen = net.JoinHostPort(iface, strconv.Itoa(x.port("port", 389)))
	x.from(path+".listen", "port")
	if x.has("ssl_port") {
		s.LDAPSListen = net.JoinHostPort(iface, strconv.Itoa(x.port("ssl_port", 636)))
		x.from(path+".ldaps_listen", "ssl_port")
	}
	t := &outTLS{}
	if v, ok := x.path("ssl_cert_path"); ok {
		t.CertFile = v
		x.from(path+".tls.cert_file", "ssl_cert_path")
	}
	if v, ok := x.path("ssl_key_path"); ok {
		t.KeyFile = v
		x.from(path+".tls.key_file", "ssl_key_path")
	}
	if v, ok := x.get("minimum_tls_version"); ok {
		x.from(path+".tls.min_version", "minimum_tls_version")
		switch ver := tlsVersion(v); ver {
		case "1.2", "1.3":
			t.MinVersion = ver
		case "1.0", "1.1":
			x.note(differs, "minimum_tls_version", "%s is below ldapgate's floor: clients must speak TLS 1.2 or later", v)
		default:
			x.problem("minimum_tls_version", "%q is not a TLS version (tlsv1.2, tlsv1.3)%s", v, commentHint(v))
		}
	}
	if *t != (outTLS{}) {
		s.TLS = t
	}
	x.notMapped("cipher_list", "ldapgate uses Go's TLS cipher suites (TLS 1.2 and 1.3, no weak ones); there is no key to change them")

	c.duo(x, s, path)
	c.policy(x, s, path)
}

// tlsVersion reads the Duo proxy's spellings (tlsv1.2, TLSv1.2, 1.2).
func tlsVersion(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.TrimPrefix(v, "tls")
	v = strings.TrimPrefix(v, "v")
	switch v {
	case "1", "1.0":
		return "1.0"
	case "1.1", "1.2", "1.3":
		return v
	}
	return ""
}

// duo converts the integration.
func (c *converter) duo(x *sec, s *outServer, path string) {
	d := &s.Duo
	x.from(path+".duo.api_host", "api_host")
	x.from(path+".duo.integration_key", "ikey")
	x.from(path+".duo.secret_key", "skey")
	x.from(path+".duo.secret_key_file", "skey")
	d.APIHost, _ = x.get("api_host")
	d.IntegrationKey, _ = x.get("ikey")
	d.SecretKey, d.SecretKeyFile = x.secret("skey", config.EnvName("servers", s.Name, "duo_secret_key"), s.Name+".duo_secret_key")
	switch n, set, ok := x.seconds("api_timeout"); {
	case !ok:
	case set && n > 0:
		d.Timeout = durationSeconds(n)
		x.from(path+".duo.timeout", "api_timeout")
	default:
		x.note(differs, "api_timeout", "%s: the Duo proxy waits for Duo without a limit (api_timeout 0, its default), so a slow Duo hangs every bind; ldapgate gives up after duo.timeout (%s) for preauth and duo.push_timeout (%s) for the push, then applies failmode",
			unsetOr(set), human.Duration(config.DefaultDuoTimeout), human.Duration(config.DefaultDuoPushTimeout))
	}
}

// policy converts failmode, the exemptions and the passcode settings.
func (c *converter) policy(x *sec, s *outServer, path string) {
	x.from(path+".failmode", "failmode")
	if v, ok := x.get("failmode"); ok {
		s.Failmode = strings.ToLower(v)
		if s.Failmode != "safe" && s.Failmode != "secure" {
			x.problem("failmode", "%q is not safe or secure%s", v, commentHint(v))
		}
	} else {
		s.Failmode = "safe"
		x.note(differs, "failmode", "unset: the Duo proxy's default is safe (users get in on the password alone while Duo is unreachable), ldapgate's is secure; written as failmode: safe to keep the Duo proxy's behaviour. Consider secure, or list privileged groups in secure_groups")
	}
	if s.Failmode == "safe" {
		x.note(differs, "failmode", "with failmode safe the Duo proxy also let users in when Duo's certificate did not verify (or api_host was an IP address); ldapgate denies then: an untrusted certificate never fails open")
	}

	x.from(path+".exempt_primary_bind", "exempt_primary_bind")
	epb, set := x.boolean("exempt_primary_bind", true)
	s.ExemptPrimaryBind = epb
	if !set {
		x.note(differs, "exempt_primary_bind", "unset: the Duo proxy's default is true (the first bind on every connection skips Duo, whoever binds), ldapgate's is false; written as exempt_primary_bind: true to keep the Duo proxy's behaviour. Set it to false and list the service accounts in exempt_dns")
	}

	type ou struct {
		n   int
		key string
	}
	var ous []ou
	for _, e := range x.s.Entries {
		if m := exemptOUKey.FindStringSubmatch(e.Key); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				ous = append(ous, ou{n, e.Key})
			}
		}
	}
	slices.SortFunc(ous, func(a, b ou) int { return a.n - b.n })
	for _, o := range ous {
		v, _ := x.get(o.key)
		x.from(fmt.Sprintf("%s.exempt_dns[%d]", path, len(s.ExemptDNs)), o.key)
		s.ExemptDNs = append(s.ExemptDNs, v)
	}

	concat, _ := x.boolean("allow_concat", true)
	delim, delimSet := x.get("delimiter")
	switch {
	case !concat:
		empty := ""
		s.PasscodeDelimiter = &empty
		x.from(path+".passcode_delimiter", "allow_concat")
		if delimSet {
			x.note(notMapped, "delimiter", "allow_concat is false: passcodes in the password are off")
		}
	case delimSet:
		s.PasscodeDelimiter = &delim
		x.from(path+".passcode_delimiter", "delimiter")
	}
	if concat {
		x.note(differs, "allow_concat", "ldapgate splits a password only where the last delimiter is followed by a 6-8 digit passcode, push or phone, and never retries the whole string after a failed split (one directory bind per attempt, so lockout counters move once)")
	}
	x.notMapped("delimited_password_length", "ldapgate splits at the last delimiter, whatever the password's length")

	if v, ok := x.get("factors"); ok {
		x.from(path+".factor", "factors")
		switch f := strings.ToLower(strings.TrimSpace(v)); f {
		case "auto", "push", "phone":
			s.Factor = f
		default:
			x.problem("factors", "%q: ldapgate takes one of auto, push or phone (a passcode after the delimiter is always accepted)%s", v, commentHint(v))
		}
	}

	x.from(path+".idle_timeout", "idle_timeout")
	switch n, set, ok := x.seconds("idle_timeout"); {
	case !ok || !set:
	case n == 0:
		x.note(differs, "idle_timeout", "0 (never) is not possible: ldapgate closes idle connections after idle_timeout, at most 24h (default %s)", human.Duration(config.DefaultIdleTimeout))
	default:
		s.IdleTimeout = durationSeconds(n)
	}

	if _, set := x.boolean("allow_unlimited_binds", false); set {
		x.note(notMapped, "allow_unlimited_binds", "ldapgate lets a connection bind again and decides every bind on its own (a second bind is never exempt)")
	}
	if v, set := x.boolean("allow_searches_after_bind", true); set {
		if v {
			x.note(notMapped, "allow_searches_after_bind", "ldapgate always relays operations after a bind")
		} else {
			x.note(weaker, "allow_searches_after_bind", "the Duo proxy refused searches after a bind; ldapgate relays every operation of a connection it let in")
		}
	}
	x.notMapped("network_timeout", "ldapgate bounds directory operations with directories.NAME.timeout and client writes with write_timeout")
}

func unsetOr(set bool) string {
	if set {
		return "0"
	}
	return "unset"
}
