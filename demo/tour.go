package demo

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// Client is the LDAP client the tour's lines use.
type Client string

const (
	// ClientLDAPUtils: OpenLDAP's ldapwhoami and ldapsearch.
	ClientLDAPUtils Client = "ldap-utils"
	// ClientTry: `ldapgate try`, for machines without ldap-utils.
	ClientTry Client = "try"
)

// DefaultClient is ClientLDAPUtils when ldapwhoami and ldapsearch are on
// PATH, else ClientTry.
func DefaultClient() Client {
	for _, tool := range []string{"ldapwhoami", "ldapsearch"} {
		if _, err := exec.LookPath(tool); err != nil {
			return ClientTry
		}
	}
	return ClientLDAPUtils
}

// Every step of the tour is one line: a shell command, then
// "# -> ok: note" or "# -> 49 invalid credentials: note", where ok means exit
// status 0 and a number is the exit status, which for ldapwhoami, ldapsearch
// and `ldapgate try` is the LDAP result code. The integration test walks the
// printed lines, so this is what it parses.
const expectMarker = "# -> "

// step is one line of the tour.
type step struct {
	argv []string
	exit int // 0 or an LDAP result code
	note string
}

type part struct {
	title string
	steps []step
}

type tour struct {
	opts                             Options
	ports                            Ports
	authLog, configFile, adminSocket string
}

func newTour(opts Options, authLog, configFile, adminSocket string) *tour {
	opts = opts.withDefaults()
	return &tour{opts: opts, ports: opts.Ports(), authLog: authLog, configFile: configFile, adminSocket: adminSocket}
}

func (t *tour) ldapURL(port int) string { return "ldap://" + t.opts.addr(port) }
func (t *tour) httpURL(path string) string {
	return "http://" + t.opts.addr(t.ports.Health) + path
}

// bind is a bind as a sample person or service (by uid or service cn),
// followed by WhoAmI.
func (t *tour) bind(port int, who, password string) []string {
	dn := sampledata.PersonDN(who)
	if _, ok := sampledata.LookupService(who); ok {
		dn = sampledata.ServiceDN(who)
	}
	if t.opts.Client == ClientTry {
		return []string{t.opts.Self, "try", "--url", t.ldapURL(port), "--dn", dn, "--password", password}
	}
	return []string{"ldapwhoami", "-x", "-H", t.ldapURL(port), "-D", dn, "-w", password}
}

// search binds as who and searches the whole tree.
func (t *tour) search(port int, who, password, filter string, attrs ...string) []string {
	dn := sampledata.PersonDN(who)
	if t.opts.Client == ClientTry {
		argv := []string{t.opts.Self, "try", "--url", t.ldapURL(port), "--dn", dn, "--password", password,
			"--base", sampledata.BaseDN, "--filter", filter}
		return append(argv, attrs...)
	}
	argv := []string{"ldapsearch", "-x", "-LLL", "-H", t.ldapURL(port), "-D", dn, "-w", password, "-b", sampledata.BaseDN, filter}
	return append(argv, attrs...)
}

// outage is `ldapgate demo outage NAME` with the flags this demo needs.
func (t *tour) outage(name string) []string {
	argv := []string{t.opts.Self, "demo", "outage", name}
	if t.opts.BasePort != DefaultBasePort {
		argv = append(argv, "--base-port", strconv.Itoa(t.opts.BasePort))
	}
	if t.opts.Listen != DefaultListen {
		argv = append(argv, "--listen", t.opts.Listen)
	}
	return argv
}

func pw(uid string) string {
	if p, ok := sampledata.Lookup(uid); ok {
		return p.Password
	}
	s, _ := sampledata.LookupService(uid)
	return s.Password
}

func (t *tour) parts() []part {
	vpn, wiki := t.ports.Secure, t.ports.Safe
	const denied = 49
	return []part{
		{
			title: "1. Duo is up: a password alone is not enough",
			steps: []step{
				{[]string{"curl", "-sf", t.httpURL("/readyz")}, 0, "ldapgate is ready: the directory and Duo answer"},
				{t.bind(vpn, "alice", pw("alice")), 0, "alice approves the push; prints dn:" + sampledata.PersonDN("alice")},
				{t.bind(vpn, "alice", "wrong-pass"), denied, "wrong password: the directory says no, no push is sent"},
				{t.bind(vpn, "bob", pw("bob")), denied, "bob denies the push: second factor denied"},
				{t.bind(vpn, "carol", pw("carol")+",123456"), 0, "carol has no phone; her passcode 123456 rides on the password"},
				{t.bind(vpn, "carol", pw("carol")), denied, "no passcode, and carol cannot approve a push"},
				{t.bind(vpn, "dave", pw("dave")), denied, "dave is not enrolled in Duo"},
				{t.bind(vpn, "erin", pw("erin")), 0, "erin has a Duo bypass: no prompt"},
				{t.bind(wiki, "adam", pw("adam")), 0, "adam (admins) approves the push"},
				{t.search(vpn, "alice", pw("alice"), "(uid=erin)", "cn", "mail"), 0, "after alice's push the search is relayed to the directory"},
				{t.bind(wiki, "app", pw("app")), 0, "the app service account is exempt on the wiki section: no second factor"},
			},
		},
		{
			title: "2. Duo is unreachable: each section's failmode decides",
			steps: []step{
				{t.outage("on"), 0, "the simulator refuses connections, like a firewall cutting Duo off"},
				{t.bind(wiki, "alice", pw("alice")), 0, "failmode safe: alice gets in on her password alone (written to the auth log)"},
				{t.bind(wiki, "adam", pw("adam")), denied, "adam is in admins, a secure group: denied even in a safe section"},
				{t.bind(vpn, "alice", pw("alice")), denied, "failmode secure: nobody gets in without Duo"},
				{[]string{"curl", "-s", t.httpURL("/status")}, 0, "per section, in words: duo_state, duo_last_error, binds"},
				{t.outage("off"), 0, "Duo is back; returns once ldapgate has seen it"},
				{t.bind(vpn, "alice", pw("alice")), 0, "a push again"},
			},
		},
		{
			title: "3. Duo answers but is not fine: failmode is not consulted, binds are denied",
			steps: []step{
				{t.outage("degrade"), 0, "preauth works, then the push request fails (HTTP 503)"},
				{t.bind(wiki, "alice", pw("alice")), denied, "degraded after preauth: denied, even in the safe section"},
				{t.outage("misconfigure"), 0, "Duo rejects the keys (HTTP 401), as with a wrong secret key"},
				{t.bind(wiki, "alice", pw("alice")), denied, "misconfigured: always denied, never fails open"},
				{t.outage("off"), 0, "back to normal"},
			},
		},
	}
}

func (t *tour) write(w io.Writer) error {
	b := &strings.Builder{}
	p := t.ports
	line := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	line("")
	line("ldapgate demo is running. Everything below is on %s and made up: the", t.opts.Listen)
	line("directory is a small sample and the Duo server is a SIMULATOR, not Duo.")
	line("")
	line("  directory      %-28s  sample people; password: <uid>-pass", t.ldapURL(p.Directory))
	line("  vpn section    %-28s  failmode: secure", t.ldapURL(p.Secure))
	line("  wiki section   %-28s  failmode: safe; secure_groups: admins (adam); exempt: cn=app", t.ldapURL(p.Safe))
	line("  health         %-28s  /healthz /readyz /status /metrics", "http://"+t.opts.addr(p.Health))
	line("  Duo simulator  %-28s  control: http://%s/fault", "https://"+t.opts.addr(p.DuoAPI), t.opts.addr(p.DuoControl))
	line("  auth log       %s", t.authLog)
	line("  configuration  %s", t.configFile)
	line("")
	if t.opts.Client == ClientTry {
		line("ldapwhoami is not installed, so these lines use `ldapgate try`, which binds")
		line("and prints the identity the same way (apt-get install ldap-utils for the real thing).")
	}
	line("Paste any line into another terminal. Its comment gives the exit status")
	line("to expect (ok = 0; 49 = invalidCredentials, as ldapwhoami reports it) and why.")
	for _, pt := range t.parts() {
		line("")
		line("%s", pt.title)
		for _, s := range pt.steps {
			line("%s   %s%s: %s", shellJoin(s.argv), expectMarker, outcome(s.exit), s.note)
		}
	}
	line("")
	line("More:")
	line("  %s   # Duo accepts and never answers: each bind waits duo.timeout (3s), then as with on", shellJoin(t.outage("hang")))
	line("  curl -s %s | grep '^ldapgate_'", t.httpURL("/metrics"))
	line("  tail -f %s   # one JSON line per bind decision", shellQuote(t.authLog))
	line("  %s   # the emergency switch for safe sections", shellJoin([]string{t.opts.Self, "primary-only", "status", "--socket", t.adminSocket}))
	line("")
	line("Stop the demo with Ctrl-C.")
	_, err := io.WriteString(w, b.String())
	return err
}

func outcome(exit int) string {
	switch exit {
	case 0:
		return "ok"
	case 49:
		return "49 invalid credentials"
	}
	return strconv.Itoa(exit)
}

// shellJoin quotes argv for a POSIX shell.
func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(",._-+=:/@%^", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
