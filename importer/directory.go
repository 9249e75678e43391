package importer

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
)

var hostKey = regexp.MustCompile(`^host_([0-9]+)$`)

// directory converts an [ad_client*] section into directories.NAME.
func (c *converter) directory(x *sec, name string) {
	d := &outDirectory{}
	if c.out.Directories == nil {
		c.out.Directories = map[string]*outDirectory{}
	}
	c.out.Directories[name] = d
	path := "directories." + name
	x.from(path, "")

	transport := "clear"
	if v, ok := x.get("transport"); ok {
		transport = strings.ToLower(v)
	}
	scheme, defPort := "ldap", 389
	switch transport {
	case "clear":
	case "ldaps":
		scheme, defPort = "ldaps", 636
	case "starttls":
		d.StartTLS = true
		x.from(path+".start_tls", "transport")
	default:
		x.problem("transport", "%q is not clear, ldaps or starttls%s", transport, commentHint(transport))
	}
	port := x.port("port", defPort)

	type host struct {
		n   int
		key string
	}
	hosts := []host{{1, "host"}}
	for _, e := range x.s.Entries {
		if m := hostKey.FindStringSubmatch(e.Key); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n < 2 {
				continue // reported as unknown
			}
			hosts = append(hosts, host{n, e.Key})
		}
	}
	slices.SortFunc(hosts, func(a, b host) int { return a.n - b.n })
	x.from(path+".urls", "host")
	for _, h := range hosts {
		v, ok := x.get(h.key)
		if !ok {
			if h.key == "host" {
				x.problem("host", "is required: the directory's host name or address")
			}
			continue
		}
		if !validHost(v) {
			x.problem(h.key, "%q is not a host name or IP address (without scheme or port; the port is in port)%s", v, commentHint(v))
			continue
		}
		x.from(fmt.Sprintf("%s.urls[%d]", path, len(d.URLs)), h.key)
		d.URLs = append(d.URLs, scheme+"://"+net.JoinHostPort(v, strconv.Itoa(port)))
	}

	if ca, ok := x.path("ssl_ca_certs_file"); ok {
		if transport == "clear" {
			x.note(notMapped, "ssl_ca_certs_file", "transport is clear: nothing to verify")
		} else {
			d.CAFile = ca
			x.from(path+".ca_file", "ssl_ca_certs_file")
		}
	}
	if verify, set := x.boolean("ssl_verify_hostname", true); set && !verify {
		x.note(differs, "ssl_verify_hostname", "ldapgate always verifies the directory's certificate and name; if the certificate does not name the host in the URL, set directories.%s.tls_server_name to the name it carries", name)
	}

	if n, set, ok := x.seconds("timeout"); set && ok {
		d.Timeout = durationSeconds(n)
		x.from(path+".timeout", "timeout")
	}
	if v, ok := x.get("search_dn"); ok {
		d.BaseDN = v
	}
	x.from(path+".base_dn", "search_dn")
	if v, ok := x.get("username_attribute"); ok {
		d.UsernameAttribute = v
		x.from(path+".username_attribute", "username_attribute")
	}

	c.lookupAccount(x, d, name, path)
	c.userFilter(x, d, path)

	if v, ok := x.get("security_group_dn"); ok {
		x.note(weaker, "security_group_dn", "only members of %s could authenticate through the Duo proxy; ldapgate has no such key (its secure_groups means members stay fail-secure, not that others are refused): every account the directory accepts can bind through the imported file. Restrict it in the application or the directory before you switch", v)
	}
	x.notMapped("ntlm_domain", "ldapgate binds the lookup account with a simple bind, not NTLM")
	x.notMapped("ntlm_workstation", "ldapgate binds the lookup account with a simple bind, not NTLM")
}

// lookupAccount converts the service account. Active Directory accepts a
// DN, a UPN or DOMAIN\user in a simple bind; the Duo proxy also accepts a
// bare account name, which it binds with NTLM in ntlm_domain.
func (c *converter) lookupAccount(x *sec, d *outDirectory, name, path string) {
	authType := "ntlm2"
	if v, ok := x.get("auth_type"); ok {
		authType = strings.ToLower(v)
	}
	user, key := "", "service_account_username"
	if v, ok := x.get("service_account_username"); ok {
		user = v
		if x.has("bind_dn") {
			x.notMapped("bind_dn", "service_account_username names the lookup account")
		}
	} else if v, ok := x.get("bind_dn"); ok {
		user, key = v, "bind_dn"
	}
	x.from(path+".bind_dn", key)
	x.from(path+".bind_password", "service_account_password")
	x.from(path+".bind_password_file", "service_account_password")
	if user != "" {
		if config.BindNameFormOf(user) == config.BindNameInvalid {
			domain, _ := x.get("ntlm_domain")
			switch fixed, how := accountName(user, domain, d.BaseDN); {
			case fixed != "":
				x.note(differs, key, "%q is an account name, which the Duo proxy bound with NTLM; ldapgate binds with a simple bind, so it is written as %s (%s). `ldapgate check --online` proves it", user, fixed, how)
				user = fixed
			default:
				x.problem(key, "%q is neither a DN, a UPN (svc@corp.example.com) nor DOMAIN\\user, which a simple bind needs; write it in one of those forms%s", user, commentHint(user))
			}
		}
		d.BindDN = user
	}
	if authType != "plain" && user != "" {
		x.note(differs, "auth_type", "the Duo proxy bound the service account with %s; ldapgate uses a simple bind, which sends the password itself: keep the directory on ldaps or starttls", authType)
	}
	d.BindPassword, d.BindPasswordFile = x.secret("service_account_password",
		config.EnvName("directories", name, "bind_password"), name+".bind_password")
}

// accountName writes a bare account name in a form a simple bind takes:
// DOMAIN\user with the Duo proxy's own ntlm_domain, else Active Directory's
// implicit UPN from the DC= parts of search_dn. "" when neither is known.
func accountName(user, ntlmDomain, searchDN string) (name, how string) {
	if strings.ContainsAny(user, `@\=,`) || strings.TrimSpace(user) != user || user == "" {
		return "", ""
	}
	if ntlmDomain != "" {
		if n := ntlmDomain + `\` + user; config.BindNameFormOf(n) == config.BindNameDownLevel {
			return n, "DOMAIN\\user with ntlm_domain"
		}
	}
	parsed, err := ldap.ParseDN(searchDN)
	if err != nil {
		return "", ""
	}
	var labels []string
	for _, rdn := range parsed.RDNs {
		for _, a := range rdn.Attributes {
			if strings.EqualFold(a.Type, "dc") {
				labels = append(labels, a.Value)
			}
		}
	}
	if len(labels) == 0 {
		return "", ""
	}
	if n := user + "@" + strings.Join(labels, "."); config.BindNameFormOf(n) == config.BindNameUPN {
		return n, "Active Directory's implicit UPN, from search_dn's DC= parts"
	}
	return "", ""
}

// userFilter converts at_attribute and ldap_filter into user_filter.
func (c *converter) userFilter(x *sec, d *outDirectory, path string) {
	filter := ""
	if at, ok := x.get("at_attribute"); ok {
		if at == "" || strings.ContainsAny(at, " =()*\\,&|!") {
			x.problem("at_attribute", "%q is not an attribute name%s", at, commentHint(at))
			return
		}
		filter = "(|({username_attribute}={username})(" + at + "={name}))"
		x.from(path+".user_filter", "at_attribute")
	}
	if f, ok := x.get("ldap_filter"); ok && f != "" {
		if !strings.HasPrefix(f, "(") {
			f = "(" + f + ")"
		}
		if filter == "" {
			filter = config.DefaultUserFilter
		}
		filter = "(&" + f + filter + ")"
		x.from(path+".user_filter", "ldap_filter")
		x.note(weaker, "ldap_filter", "carried into user_filter, which ldapgate applies to bind names that are not DNs: a client that binds with a DN is not checked against it, as it was by the Duo proxy")
	}
	d.UserFilter = filter
}

func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, " \t/\\@?#;,[]") || strings.Contains(h, "://") {
		return false
	}
	if strings.Contains(h, ":") {
		return net.ParseIP(h) != nil // an IPv6 address; host:port is not a host
	}
	return true
}
