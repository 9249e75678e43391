// Package slapdtest starts a throwaway OpenLDAP slapd on loopback for
// integration tests, loaded with the sample directory of package sampledata.
//
// Each Server has its own temporary directory (slapd.conf, an mdb database,
// the slapd log) and its own port on 127.0.0.1. slapd runs in the foreground
// in its own process group and is killed when the test ends (Start), when
// the caller says so (Launch, for one server shared by a package's tests),
// or when the test binary dies. A missing slapd fails the test: run `make test`, which
// installs slapd and ldap-utils.
package slapdtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// RootDN and RootPassword are the directory manager's credentials. The
// rootdn bypasses every ACL.
const (
	RootDN       = "cn=admin," + sampledata.BaseDN
	RootPassword = "slapdtest-root-pass"
)

// Server is a running slapd. Its fields are read-only.
type Server struct {
	// URL is ldap://127.0.0.1:Port.
	URL  string
	Port int
	// LDAPSURL is ldaps://127.0.0.1:LDAPSPort when the server has a
	// certificate (WithTLS), else empty. URL then offers StartTLS too.
	LDAPSURL  string
	LDAPSPort int
	// Dir holds slapd.conf, the database and slapd.log; it is removed when
	// the test ends.
	Dir          string
	BaseDN       string
	RootDN       string
	RootPassword string
	// ConfigFile is the slapd.conf slapd runs with.
	ConfigFile string

	slapd   string
	logFile string
	opts    options

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil when stopped
	exited chan struct{} // closed when cmd has been waited for
}

// Option changes how Start sets up slapd.
type Option func(*options)

type options struct {
	extraLDIF    string
	acl          string
	nofile       int
	logLevel     string
	startTimeout time.Duration
	certFile     string
	keyFile      string
	clientCA     string
	backLDAP     string // WithBackLDAP: the URI the ldap database relays to
	global       []string
}

// WithGlobal adds slapd.conf global directives ("threads 2",
// "conn_max_pending_auth 4"), to bring the directory's own limits within a
// test's reach.
func WithGlobal(lines ...string) Option {
	return func(o *options) { o.global = append(o.global, lines...) }
}

// WithTLS gives slapd a certificate: it serves LDAPS on a second port
// (Server.LDAPSURL) and StartTLS on URL.
func WithTLS(certFile, keyFile string) Option {
	return func(o *options) { o.certFile, o.keyFile = certFile, keyFile }
}

// WithClientCertificates makes slapd demand a client certificate issued
// by the CA in caFile on every TLS connection (TLSVerifyClient demand):
// a handshake without one fails. It needs WithTLS.
func WithClientCertificates(caFile string) Option {
	return func(o *options) { o.clientCA = caFile }
}

// WithExtraLDIF adds entries after the sample directory. Parents must come
// before children.
func WithExtraLDIF(ldif string) Option {
	return func(o *options) { o.extraLDIF = ldif }
}

// WithACL puts access rules (slapd.conf "access to ..." clauses) ahead of
// the default ones, so that they win where they match: for example groups
// that only the lookup account may read.
func WithACL(rules string) Option {
	return func(o *options) { o.acl = rules }
}

// WithNoFile runs slapd under RLIMIT_NOFILE n (soft and hard), through
// util-linux's prlimit, so a test can show what runs the directory out of
// descriptors.
func WithNoFile(n int) Option {
	return func(o *options) { o.nofile = n }
}

// WithLogLevel sets slapd's debug level (slapd -d), whose output goes to
// Server.Log. The default, "none", logs only errors; "stats" logs every
// connection and operation, which lets a test check what reached the
// directory.
func WithLogLevel(level string) Option {
	return func(o *options) { o.logLevel = level }
}

// WithStartTimeout bounds how long Start and Restart wait for slapd to
// answer (default 20s).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// FindSlapd returns the path of the slapd binary: from PATH, else
// /usr/sbin/slapd (which is not on every user's PATH).
func FindSlapd() (string, error) {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/slapd"
	if fi, err := os.Stat(sbin); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return sbin, nil
	}
	return "", errors.New("slapd not found in PATH or at /usr/sbin/slapd")
}

// Start sets up and starts a slapd serving the sample directory, and stops
// it when the test ends. It fails the test if slapd is missing or does not
// come up.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := launch(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("slapdtest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("slapdtest: slapd log of %s:\n%s", s.URL, tail(s.Log(), 8<<10))
		}
	})
	return s
}

// Launch is Start for a caller without a test: a TestMain, or a sync.Once,
// that shares one slapd among many tests. Its Dir is a new temporary
// directory. The caller must call stop, which kills slapd and removes Dir;
// it is idempotent. Tests sharing the server must not change the directory
// or stop it.
func Launch(opts ...Option) (s *Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "slapdtest-")
	if err != nil {
		return nil, nil, fmt.Errorf("slapdtest: %v", err)
	}
	s, err = launch(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("slapdtest: %v", err)
	}
	var once sync.Once
	return s, func() {
		once.Do(func() {
			s.Stop()
			os.RemoveAll(dir)
		})
	}, nil
}

// launch sets up a slapd in dir and starts it; on error nothing is left
// running.
func launch(dir string, opts []Option) (*Server, error) {
	slapd, err := FindSlapd()
	if err != nil {
		return nil, fmt.Errorf("%v: run `make test` (or `make deps` as root), which installs slapd and ldap-utils", err)
	}
	o := options{logLevel: "none", startTimeout: 20 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		Dir:          dir,
		BaseDN:       sampledata.BaseDN,
		RootDN:       RootDN,
		RootPassword: RootPassword,
		ConfigFile:   filepath.Join(dir, "slapd.conf"),
		slapd:        slapd,
		logFile:      filepath.Join(dir, "slapd.log"),
		opts:         o,
	}
	if o.clientCA != "" && o.certFile == "" {
		return nil, errors.New("WithClientCertificates needs WithTLS")
	}
	if err := s.setup(); err != nil {
		return nil, err
	}
	// A port picked by listening on :0 may be taken by someone else before
	// slapd binds it; pick another then.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ldapsPort := 0
		if o.certFile != "" {
			if ldapsPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		err = s.startLocked(port, ldapsPort) // stops slapd again on failure
		s.mu.Unlock()
		if err == nil {
			return s, nil
		}
		if attempt < 5 && strings.Contains(s.Log(), "Address already in use") {
			continue
		}
		return nil, err
	}
}

// setup writes slapd.conf and loads the sample directory with slapadd.
func (s *Server) setup() error {
	if s.opts.backLDAP != "" {
		return s.setupBackLDAP()
	}
	dbDir := filepath.Join(s.Dir, "db")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		return err
	}
	conf, err := config(s.Dir, dbDir, s.opts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.ConfigFile, []byte(conf), 0o600); err != nil {
		return err
	}
	ldifFile := filepath.Join(s.Dir, "data.ldif")
	ldif := sampledata.LDIF()
	if s.opts.extraLDIF != "" {
		ldif += "\n" + strings.TrimLeft(s.opts.extraLDIF, "\n")
	}
	if err := os.WriteFile(ldifFile, []byte(ldif), 0o600); err != nil {
		return err
	}
	// slapadd is slapd in tool mode; -q skips consistency checks we don't need.
	out, err := exec.Command(s.slapd, "-T", "add", "-q", "-f", s.ConfigFile, "-l", ldifFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapadd: %v\n%s", err, out)
	}
	return nil
}

// config returns a slapd.conf for the sample directory with a database in
// dbDir and ACLs like a real deployment's.
func config(dir, dbDir string, o options) (string, error) {
	acl := o.acl
	schemaDir, err := findDir("core.schema", "/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
	if err != nil {
		return "", fmt.Errorf("OpenLDAP schema: %v", err)
	}
	var b strings.Builder
	for _, schema := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s\n", filepath.Join(schemaDir, schema+".schema"))
	}
	fmt.Fprintf(&b, "pidfile %s\nargsfile %s\n", filepath.Join(dir, "slapd.pid"), filepath.Join(dir, "slapd.args"))
	for _, line := range o.global {
		fmt.Fprintln(&b, line)
	}
	if o.certFile != "" {
		fmt.Fprintf(&b, "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", o.certFile, o.keyFile)
	}
	if o.clientCA != "" {
		fmt.Fprintf(&b, "TLSCACertificateFile %s\nTLSVerifyClient demand\n", o.clientCA)
	}
	// Debian builds back_mdb as a module; elsewhere it may be built in.
	if modDir, err := findDir("back_mdb.so", "/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"); err == nil {
		fmt.Fprintf(&b, "modulepath %s\nmoduleload back_mdb\n", modDir)
	}

	people := quote(sampledata.PeopleDN)
	admins := quote(sampledata.GroupDN(sampledata.AdminGroup))
	fmt.Fprintf(&b, `
database mdb
suffix %s
rootdn %s
rootpw %s
directory %s
# Small, so that many instances fit; the data is a few KiB.
maxsize %d
# Writes still reach the page cache, so they survive slapd being killed.
dbnosync
index objectClass,uid,member eq
%s
# Passwords: only for binding, and changed by their owner. Admins set them
# on the people they add.
access to dn.subtree=%s attrs=userPassword
	by group.exact=%s write
	by self write
	by anonymous auth
	by * none
access to attrs=userPassword
	by self write
	by anonymous auth
	by * none
# Admins may add, delete and rename people.
access to dn.subtree=%s
	by group.exact=%s write
	by self write
	by users read
	by * none
# Anonymous clients cannot read anything; bound users read everything.
access to *
	by self write
	by users read
	by * none
`, quote(sampledata.BaseDN), quote(RootDN), sampledata.SSHA(RootPassword, []byte("slapdtst")),
		dbDir, 64<<20, acl, people, admins, people, admins)
	return b.String(), nil
}

func quote(dn string) string { return strconv.Quote(dn) }

func findDir(file string, dirs ...string) (string, error) {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", file, strings.Join(dirs, ", "))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startLocked starts slapd on port (and ldapsPort, when not 0) and waits
// until it answers LDAP.
func (s *Server) startLocked(port, ldapsPort int) error {
	s.Port = port
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	urls := s.URL + "/"
	if ldapsPort != 0 {
		s.LDAPSPort = ldapsPort
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
		urls += " " + s.LDAPSURL + "/"
	}
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	// -d keeps slapd in the foreground, so it is our child; -d none logs
	// errors only (-d 0 would hide them).
	args := []string{s.slapd, "-f", s.ConfigFile, "-h", urls, "-d", s.opts.logLevel}
	if s.opts.nofile > 0 {
		// prlimit execs slapd: the PID, and so Stop's process group, stay.
		args = append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", s.opts.nofile, s.opts.nofile), "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group, so Stop can kill everything it started; and
	// SIGKILL if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("start slapd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	if err := s.waitReady(exited, start.Add(s.opts.startTimeout)); err != nil {
		s.stopLocked()
		return fmt.Errorf("slapd on %s: %v\nslapd log:\n%s", s.URL, err, tail(s.Log(), 8<<10))
	}
	return nil
}

// waitReady polls until slapd answers a rootDSE search naming BaseDN.
func (s *Server) waitReady(exited <-chan struct{}, deadline time.Time) error {
	var lastErr error
	for {
		select {
		case <-exited:
			return fmt.Errorf("slapd exited during startup: %v", s.cmd.ProcessState)
		default:
		}
		if lastErr = s.ping(); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", s.opts.startTimeout, lastErr)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) ping() error {
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(2 * time.Second)
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil {
		return err
	}
	if len(res.Entries) != 1 || !strings.EqualFold(res.Entries[0].GetAttributeValue("namingContexts"), s.BaseDN) {
		return fmt.Errorf("rootDSE does not name %s", s.BaseDN)
	}
	return nil
}

// Stop kills slapd and waits for it to exit. It is idempotent, and runs when
// the test ends. The data stays in Dir for Restart.
// PID is slapd's process ID (0 while it is stopped): for a benchmark that
// reads its CPU time in /proc.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	// SIGKILL, not SIGTERM: slapd takes over a second to shut down cleanly,
	// and mdb needs no clean shutdown. A stopped process dies of SIGKILL too.
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Restart stops slapd and starts it again on the same port with the same
// data, as after a directory outage. It fails the test if slapd does not
// come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	if err := s.startLocked(s.Port, s.LDAPSPort); err != nil {
		t.Fatalf("slapdtest: restart: %v", err)
	}
}

// Pause stops the slapd process (SIGSTOP): connections are still accepted
// by the kernel, but nothing is ever answered. Resume undoes it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP, true)
}

// Resume continues a paused slapd (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT, false)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal, stopped bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("slapdtest: %v: slapd is not running", sig)
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("slapdtest: %v: %v", sig, err)
	}
	// Signals are delivered asynchronously; wait until the state shows, so
	// the caller's next step sees it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, err := procState(pid)
		if err != nil {
			break // no /proc: trust the signal
		}
		if (state == 'T' || state == 't') == stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapdtest: %v: slapd state is still %q", sig, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// procState returns the state letter of pid from /proc/pid/stat.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) S ..."; comm may contain spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, errors.New("unexpected /proc stat format")
	}
	return b[i+2], nil
}

// Conn dials the server and, if dn is not empty, binds as dn. It fails the
// test on error and closes the connection when the test ends.
func (s *Server) Conn(t testing.TB, dn, password string) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("slapdtest: dial %s: %v", s.URL, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetTimeout(10 * time.Second)
	if dn != "" {
		if err := conn.Bind(dn, password); err != nil {
			t.Fatalf("slapdtest: bind as %s: %v", dn, err)
		}
	}
	return conn
}

// Log returns what slapd has written to stdout and stderr since it last
// started. See WithLogLevel.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return fmt.Sprintf("(no slapd log: %v)", err)
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// Pdeathsig is sent when the thread that forked the child exits, not the
// process. The Go runtime ends a thread when a goroutine locked to it exits,
// so fork from one goroutine locked to a thread that lives as long as the
// process: slapd then dies with the test binary, and only then.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not exit
			for r := range spawnReqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnReq{cmd, errc}
	return <-errc
}
