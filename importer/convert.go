package importer

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ldapgate/ldapgate/config"
)

// noteKind classes a line of the report.
type noteKind string

const (
	notMapped noteKind = "not mapped" // a key ldapgate has no counterpart for
	differs   noteKind = "differs"    // ldapgate behaves otherwise; the import kept the Duo proxy's behaviour where it could
	weaker    noteKind = "weaker"     // the imported file lets in what the Duo proxy refused: act before switching
	notice    noteKind = "note"       // something to do or know
	secretSet noteKind = "secret"     // where a secret went
	skipped   noteKind = "not imported"
)

type note struct {
	kind  noteKind
	where string
	msg   string
}

type converter struct {
	opts     Options
	notes    []note
	problems []Problem
	prov     map[string]string // ldapgate key path -> "[section] key"
	secrets  map[string]string // LDAPGATE_* name -> value, for the check
	files    []SecretFile
	out      output
	dirNames map[string]string // ad_client section -> directory name
}

func newConverter(opts Options) *converter {
	return &converter{opts: opts, prov: map[string]string{}, secrets: map[string]string{}, dirNames: map[string]string{}}
}

func (c *converter) note(kind noteKind, where, format string, args ...any) {
	c.notes = append(c.notes, note{kind, where, fmt.Sprintf(format, args...)})
}

func (c *converter) writeNotes(w io.Writer) {
	fmt.Fprintf(w, "ldapgate import of %s\n", c.opts.Source)
	for _, n := range c.notes {
		if n.where == "" {
			fmt.Fprintf(w, "%s: %s\n", n.kind, n.msg)
		} else {
			fmt.Fprintf(w, "%s: %s: %s\n", n.kind, n.where, n.msg)
		}
	}
}

// Section kinds, by the prefix the Duo proxy recognises them by.
const (
	kindMain       = "main"
	kindADClient   = "ad_client"
	kindLDAPServer = "ldap_server_auto"
)

func sectionKind(name string) string {
	switch {
	case name == kindMain:
		return kindMain
	case strings.HasPrefix(name, kindADClient):
		return kindADClient
	case strings.HasPrefix(name, kindLDAPServer):
		return kindLDAPServer
	}
	return ""
}

// otherSections are the Duo proxy's sections ldapgate has nothing for.
var otherSections = []struct{ prefix, why string }{
	{"radius_", "ldapgate serves LDAP only"},
	{"duo_only_client", "ldapgate always checks the password with the directory"},
	{"cloud", "directory sync is Duo's, not a proxy's"},
	{"http_proxy", "ldapgate is not an HTTP proxy for other Duo clients"},
	{"sso", "Duo SSO is not an LDAP proxy"},
	{"ldap_client", "ldapgate's directories come from [ad_client] sections"},
}

func (c *converter) convert(ini *INI) {
	if ini.Section(kindMain) == nil && len(ini.Sections) == 0 {
		c.problems = append(c.problems, Problem{Where: "file", Msg: "no sections: this is not an authproxy.cfg"})
		return
	}
	servers := 0
	for _, s := range ini.Sections {
		if sectionKind(s.Name) == kindLDAPServer {
			servers++
		}
	}
	if servers == 0 {
		c.problems = append(c.problems, Problem{Where: "file", Msg: "no [ldap_server_auto] section: nothing for ldapgate to serve"})
	}
	taken := map[string]bool{}
	for _, s := range ini.Sections {
		if sectionKind(s.Name) == kindADClient {
			c.dirNames[s.Name] = uniqueName(s.Name, taken)
		}
	}
	used := map[string]bool{}
	for _, s := range ini.Sections {
		if sectionKind(s.Name) == kindLDAPServer {
			if e := s.Get("client"); e != nil {
				used[e.Value] = true
			}
		}
	}
	serverNames := map[string]bool{}
	for _, s := range ini.Sections {
		x := &sec{c: c, s: s, used: map[string]bool{}}
		switch sectionKind(s.Name) {
		case kindMain:
			c.main(x)
		case kindADClient:
			if !used[s.Name] {
				c.note(skipped, "["+s.Name+"]", "no [ldap_server_auto] section uses it (client=%s)", s.Name)
				continue
			}
			c.directory(x, c.dirNames[s.Name])
		case kindLDAPServer:
			c.server(x, uniqueName(s.Name, serverNames), ini)
		default:
			c.other(s)
			continue
		}
		x.unmapped()
	}
}

func (c *converter) other(s *Section) {
	lower := strings.ToLower(s.Name)
	for _, known := range []string{kindMain, kindADClient, kindLDAPServer} {
		if strings.HasPrefix(lower, known) {
			c.problems = append(c.problems, Problem{Where: "[" + s.Name + "]",
				Msg: fmt.Sprintf("section names are case-sensitive: the Duo proxy does not read this as a [%s...] section; rename it, or remove it", known)})
			return
		}
	}
	for _, o := range otherSections {
		if strings.HasPrefix(s.Name, o.prefix) {
			c.note(skipped, "["+s.Name+"]", "%s", o.why)
			return
		}
	}
	c.note(skipped, "["+s.Name+"]", "a section ldapgate import does not know")
}

// sectionNameRE is config's rule for directory and server names.
var sectionNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// uniqueName turns a section name into a directory or server name config
// accepts, distinct from those taken.
func uniqueName(section string, taken map[string]bool) string {
	var b strings.Builder
	for _, r := range strings.ToLower(section) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), "_-")
	if name == "" {
		name = "section"
	}
	name = name[:min(len(name), 56)]
	base := name
	for i := 2; taken[name] || !sectionNameRE.MatchString(name); i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	taken[name] = true
	return name
}

// sec reads one section's keys and remembers which it consumed.
type sec struct {
	c    *converter
	s    *Section
	used map[string]bool
}

func (x *sec) where(key string) string { return fmt.Sprintf("[%s] %s", x.s.Name, key) }

// get returns a key's value and whether it is set, and consumes it.
func (x *sec) get(key string) (string, bool) {
	x.used[key] = true
	if e := x.s.Get(key); e != nil {
		return e.Value, true
	}
	return "", false
}

func (x *sec) has(key string) bool { return x.s.Get(key) != nil }

func (x *sec) problem(key, format string, args ...any) {
	x.c.problems = append(x.c.problems, Problem{Where: x.where(key), Msg: fmt.Sprintf(format, args...)})
}

func (x *sec) note(kind noteKind, key, format string, args ...any) {
	x.c.note(kind, x.where(key), format, args...)
}

// from records that an ldapgate key comes from a key of this section.
func (x *sec) from(path, key string) {
	if key == "" {
		x.c.prov[path] = "[" + x.s.Name + "]"
		return
	}
	// Keys of the same section that make one value are all named.
	if prev, ok := x.c.prov[path]; ok && strings.HasPrefix(prev, "["+x.s.Name+"] ") && prev != x.where(key) {
		x.c.prov[path] = prev + ", " + key
		return
	}
	x.c.prov[path] = x.where(key)
}

// notMapped consumes a key, if set, and reports it with why.
func (x *sec) notMapped(key, format string, args ...any) {
	if _, ok := x.get(key); ok {
		x.note(notMapped, key, format, args...)
	}
}

// unmapped reports every key of the section nothing consumed.
func (x *sec) unmapped() {
	for _, e := range x.s.Entries {
		if !x.used[e.Key] {
			x.note(notMapped, e.Key, "a key ldapgate import does not know; its value was not read")
		}
	}
}

// boolean reads a key as the Duo proxy does (Python's getboolean).
func (x *sec) boolean(key string, def bool) (value, set bool) {
	v, ok := x.get(key)
	if !ok {
		return def, false
	}
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	x.problem(key, "%q is not a boolean (true/false, yes/no, on/off, 1/0)%s", v, commentHint(v))
	return def, true
}

// seconds reads a whole number of seconds; ok is false when it is not one
// (a problem is recorded).
func (x *sec) seconds(key string) (n int, set, ok bool) {
	v, set := x.get(key)
	if !set {
		return 0, false, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		x.problem(key, "%q is not a whole number of seconds%s", v, commentHint(v))
		return 0, true, false
	}
	return n, true, true
}

// port reads a TCP port.
func (x *sec) port(key string, def int) int {
	v, ok := x.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		x.problem(key, "%q is not a port (1-65535)%s", v, commentHint(v))
		return def
	}
	return n
}

// path reads a file path, relative ones resolved against authproxy.cfg's
// directory as the Duo proxy resolves them against its conf directory.
func (x *sec) path(key string) (string, bool) {
	v, ok := x.get(key)
	if !ok || v == "" {
		return "", false
	}
	if windowsPath(v) {
		x.note(notice, key, "%s is a Windows path: copy the file to this machine and correct the path in the output", v)
		return v, true
	}
	if !filepath.IsAbs(v) {
		return filepath.Join(filepath.Dir(x.c.opts.Source), v), true
	}
	return v, true
}

func windowsPath(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') ||
		strings.HasPrefix(p, `\\`) || strings.Contains(p, `\`)
}

// commentHint explains a value that carries what looks like an inline
// comment: the Duo proxy reads it as part of the value too.
func commentHint(v string) string {
	if strings.Contains(v, " ;") || strings.Contains(v, " #") || strings.Contains(v, "\t;") || strings.Contains(v, "\t#") {
		return "; authproxy.cfg has whole-line comments only (the Duo proxy reads an inline ; or # as part of the value): put the comment on a line of its own"
	}
	return ""
}

// secret places one imported secret where Options say, and returns the
// YAML values (inline value or file path).
func (x *sec) secret(key, env, fileName string) (inline, file string) {
	v, ok := x.get(key)
	_, isProtected := x.get(key + "_protected")
	switch {
	case ok && v != "":
	case isProtected:
		x.note(secretSet, key+"_protected", "the Duo proxy keeps this secret encrypted for its own machine (Windows DPAPI); ldapgate cannot read it: set %s to the secret in the service's environment", env)
		x.c.secrets[env] = "imported-protected-secret"
		return "", ""
	default:
		return "", "" // config says what is missing
	}
	from := x.where(key)
	switch x.c.opts.Secrets {
	case SecretsInline:
		x.note(secretSet, key, "written inline (--with-secrets): chmod 600 the output, or move it to a file")
		x.c.secrets[env] = v
		return v, ""
	case SecretsFiles:
		path := filepath.Join(x.c.opts.SecretsDir, fileName)
		x.c.files = append(x.c.files, SecretFile{Path: path, Value: config.Secret(v), From: from})
		x.note(secretSet, key, "written to %s (mode 0600)", path)
		x.c.secrets[env] = v
		return "", path
	}
	x.note(secretSet, key, "not in the output: set %s to it in the service's environment", env)
	x.c.secrets[env] = v
	return "", ""
}

// durationSeconds is n seconds as a config duration.
func durationSeconds(n int) string { return strconv.Itoa(n) + "s" }
