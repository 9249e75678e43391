package slapdtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WithBackLDAP makes the server a relay instead of a directory: its only
// database is back-ldap (slapd-ldap(5)) for the sample suffix, passing
// every operation, binds included, to the directory at uri (another
// Server's URL). No data is loaded and WithExtraLDIF and WithACL do not
// apply; the other options do. It is the reference an LDAP proxy's cost is
// compared with (the benchmarks of internal/benchrun).
func WithBackLDAP(uri string) Option {
	return func(o *options) { o.backLDAP = uri }
}

// setupBackLDAP writes a slapd.conf whose database is ldap, relaying to
// opts.backLDAP. single-conn gives each client connection one upstream
// connection, re-bound when the client binds again, as ldapgate does:
// without it back-ldap caches a connection per identity, and binds of
// thousands of people ran the relay out of them (52 Unavailable).
func (s *Server) setupBackLDAP() error {
	o := s.opts
	schemaDir, err := findDir("core.schema", "/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
	if err != nil {
		return fmt.Errorf("OpenLDAP schema: %v", err)
	}
	var b strings.Builder
	for _, schema := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(schemaDir, schema+".schema"))
	}
	fmt.Fprintf(&b, "pidfile %s\nargsfile %s\n", filepath.Join(s.Dir, "slapd.pid"), filepath.Join(s.Dir, "slapd.args"))
	if o.certFile != "" {
		fmt.Fprintf(&b, "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", o.certFile, o.keyFile)
	}
	if o.clientCA != "" {
		fmt.Fprintf(&b, "TLSCACertificateFile %s\nTLSVerifyClient demand\n", o.clientCA)
	}
	// Debian builds back_ldap as a module; elsewhere it may be built in.
	if modDir, err := findDir("back_ldap.so", "/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"); err == nil {
		fmt.Fprintf(&b, "modulepath %s\nmoduleload back_ldap\n", modDir)
	}
	// The remote directory enforces its own ACLs on the identities binds
	// establish there; this slapd only relays.
	fmt.Fprintf(&b, `
database ldap
suffix %s
uri %q
rebind-as-user yes
single-conn yes
access to * by * read
`, quote(s.BaseDN), o.backLDAP)
	return os.WriteFile(s.ConfigFile, []byte(b.String()), 0o600)
}
