package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// Finding is one result of the security audit: something a valid
// configuration should not do. Findings never refuse a file unless the
// operator asks (`check --strict`); check.accept silences reviewed ones.
type Finding struct {
	// ID is stable across releases: scripts, check.accept and CI key on it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Path     string   `json:"path"` // the key, as in Problems
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s %s: %s", f.Severity, f.ID, f.Path, f.Message)
}

// Severity ranks a finding: high is a way past the second factor or a
// secret exposed; medium weakens a layer; low is worth knowing.
type Severity string

const (
	High   Severity = "high"
	Medium Severity = "medium"
	Low    Severity = "low"
)

// The audit's findings, by stable ID: one table of what each means.
var findings = map[string]struct {
	severity Severity
	what     string
}{
	"failmode-safe-without-secure-groups": {High, "failmode safe lets every user in on the password alone while Duo is unreachable, administrators included; list privileged groups in secure_groups (they stay fail-secure)"},
	"exempt-primary-bind":                 {High, "exempt_primary_bind lets every client's first bind on a new connection skip the second factor, whoever it is; use exempt_dns for the service accounts that need it"},
	"exempt-dn-too-wide":                  {High, "exempts more than one account from the second factor: name each service account's own DN"},
	"allow-anonymous":                     {Medium, "anonymous clients may search the directory through this section"},
	"cleartext-client-listener":           {Medium, "clients may send passwords in cleartext: give the section a certificate and set tls.require (clients use StartTLS), serve only ldaps_listen, or listen on loopback only"},
	"cleartext-directory":                 {Medium, "passwords cross the network to the directory in cleartext: use ldaps:// or start_tls"},
	"secret-file-readable":                {High, "a secret file other users can read; chmod 600 it, owned by the user ldapgate runs as"},
	"inline-secret-readable":              {High, "a secret written inline in a configuration file other users can read; move it to a *_file or the environment, or chmod 600 the file"},
	"bind-dn-not-a-dn":                    {Low, "the lookup account is named by a UPN or DOMAIN\\user, which Active Directory accepts in a simple bind and other directories (OpenLDAP) refuse; use its DN for those"},
	"health-non-loopback":                 {Low, "the health listener serves /status and /metrics (section names, Duo and directory state) beyond this host; keep it on loopback or firewall it"},
}

// FindingIDs lists every finding the audit knows, sorted.
func FindingIDs() []string { return slices.Sorted(maps.Keys(findings)) }

// Audit reviews a valid configuration for what weakens it, in a stable
// order, leaving out the IDs check.accept lists.
func (c *Config) Audit() []Finding {
	out := []Finding{}
	add := func(id, path, detail string) {
		if slices.Contains(c.Check.Accept, id) {
			return
		}
		f := findings[id]
		msg := f.what
		if detail != "" {
			msg = detail + ": " + msg
		}
		out = append(out, Finding{ID: id, Severity: f.severity, Path: path, Message: msg})
	}
	if c.Health.Listen != "" && !loopbackListen(c.Health.Listen) {
		add("health-non-loopback", "health.listen", c.Health.Listen)
	}
	if c.file != "" && len(c.inline) > 0 {
		if st, err := os.Stat(c.file); err == nil && st.Mode().Perm()&0o077 != 0 {
			for _, path := range c.inline {
				add("inline-secret-readable", path, fmt.Sprintf("%s is readable by %s (mode %04o)", c.file, readers(st.Mode().Perm()), st.Mode().Perm()))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Directories)) {
		d := c.Directories[name]
		path := "directories." + name
		secretFile(add, path+".bind_password_file", d.BindPasswordFile)
		if form := BindNameFormOf(d.BindDN); form == BindNameUPN || form == BindNameDownLevel {
			add("bind-dn-not-a-dn", path+".bind_dn", fmt.Sprintf("%s is a %s", d.BindDN, form))
		}
		for i, raw := range d.URLs {
			if u, err := url.Parse(raw); err == nil && u.Scheme == "ldap" && !d.StartTLS && !isLoopback(u.Hostname()) {
				add("cleartext-directory", fmt.Sprintf("%s.urls[%d]", path, i), raw)
			}
		}
	}
	for i, s := range c.Servers {
		if s == nil {
			continue
		}
		path := fmt.Sprintf("servers[%d]", i)
		if s.Mode() == failmode.Safe && len(s.SecureGroups) == 0 {
			add("failmode-safe-without-secure-groups", path+".failmode", "")
		}
		if s.ExemptPrimaryBind {
			add("exempt-primary-bind", path+".exempt_primary_bind", "")
		}
		for j, dn := range s.ExemptDNs {
			if d := c.Directories[strings.ToLower(s.Directory)]; d != nil && wideDN(dn, d.BaseDN) {
				add("exempt-dn-too-wide", fmt.Sprintf("%s.exempt_dns[%d]", path, j), dn)
			}
		}
		if s.AllowAnonymous {
			add("allow-anonymous", path+".allow_anonymous", "")
		}
		if s.Listen != "" && !s.TLS.Require && !loopbackListen(s.Listen) {
			add("cleartext-client-listener", path+".listen", s.Listen)
		}
		secretFile(add, path+".duo.secret_key_file", s.Duo.SecretKeyFile)
		secretFile(add, path+".tls.key_file", s.TLS.KeyFile)
	}
	return out
}

func secretFile(add func(id, path, detail string), path, file string) {
	if file == "" {
		return
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return // a missing file is a Problem, not a finding
	}
	add("secret-file-readable", path, fmt.Sprintf("%s is readable by %s (mode %04o)", file, readers(st.Mode().Perm()), st.Mode().Perm()))
}

func readers(perm os.FileMode) string {
	var who []string
	if perm&0o070 != 0 {
		who = append(who, "its group")
	}
	if perm&0o007 != 0 {
		who = append(who, "every user")
	}
	return strings.Join(who, " and ")
}

// wideDN reports whether an exempt DN names more than one account: the
// base DN or one of its ancestors, or an entry whose RDN is a container
// (ou, o, dc, c, l, st, or AD's CN=Users/CN=Computers containers). A DN
// that does not parse is validation's problem.
func wideDN(exempt, base string) bool {
	parsed, err := ldap.ParseDN(exempt)
	if err != nil || len(parsed.RDNs) == 0 {
		return false
	}
	e, err := dn.Parse(exempt)
	if err != nil {
		return false
	}
	if b, err := dn.Parse(base); err == nil && b.Under(e) {
		return true // the base DN or above
	}
	first := parsed.RDNs[0].Attributes[0]
	switch strings.ToLower(first.Type) {
	case "ou", "o", "dc", "c", "l", "st":
		return true
	case "cn":
		v := strings.ToLower(first.Value)
		return v == "users" || v == "computers" || v == "builtin"
	}
	return false
}

func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

// validateAccept refuses a check.accept entry that names no finding: a typo
// there would silently keep a finding the operator meant to review.
func (c *Config) validateAccept(p *Problems) {
	for i, id := range c.Check.Accept {
		if _, ok := findings[id]; !ok {
			p.add(fmt.Sprintf("check.accept[%d]", i), ErrInvalid, "unknown finding ID %q (known: %s)", id, strings.Join(FindingIDs(), ", "))
		}
	}
}
