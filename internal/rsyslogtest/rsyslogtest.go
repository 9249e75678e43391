// Package rsyslogtest starts a throwaway rsyslogd (Debian's rsyslog) on
// loopback for tests: its own configuration, work directory and pid file
// in a temporary directory, an imtcp input (octet-counting framing,
// optionally TLS with the gtls driver from rsyslog-gnutls), and a file
// where every message received is written, one line each, with the fields
// rsyslog parsed. No privileges needed. Only tests import it.
package rsyslogtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/internal/testutil"
)

// Server is one rsyslogd.
type Server struct {
	// Addr is the 127.0.0.1:port it listens on (the same after Restart).
	Addr string
	dir  string
	out  string
	opts options
	cmd  *exec.Cmd
	done chan struct{}
	logs *testutil.SyncBuffer
}

// Message is one message as rsyslog parsed it.
type Message struct {
	PRI      int
	Facility string // rsyslog's name: authpriv, local0...
	Severity string // info, notice, warning, err...
	Hostname string
	AppName  string
	ProcID   string
	MsgID    string
	Version  string // "1" for RFC 5424
	SD       string // structured data, "-" for none
	Msg      string
}

type options struct {
	ca, cert, key string
	clientAuth    bool
}

// Option configures Start.
type Option func(*options)

// WithTLS makes the input speak TLS (RFC 5425) with the gtls driver,
// serving cert/key; with clientAuth, clients must present a certificate
// issued by the CA in ca (rsyslog's x509/certvalid), else any client may
// send (anon).
func WithTLS(ca, cert, key string, clientAuth bool) Option {
	return func(o *options) { o.ca, o.cert, o.key, o.clientAuth = ca, cert, key, clientAuth }
}

// binary finds rsyslogd, which lives in /usr/sbin.
func binary() (string, error) {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/rsyslogd"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", errors.New("rsyslogd not found in PATH or at /usr/sbin/rsyslogd (scripts/deps.sh installs rsyslog and rsyslog-gnutls)")
}

// Start starts rsyslogd on 127.0.0.1 at a port the kernel picks; it is
// stopped when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir()}
	for _, o := range opts {
		o(&s.opts)
	}
	s.out = filepath.Join(s.dir, "received.log")
	if err := os.Mkdir(filepath.Join(s.dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.start(t, 0)
	t.Cleanup(func() { s.stop() })
	return s
}

const template = `%pri%\t%syslogfacility-text%\t%syslogseverity-text%\t%hostname%\t%app-name%\t%procid%\t%msgid%\t%protocol-version%\t%structured-data%\t%msg%\n`

func (s *Server) config(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"64k\"", filepath.Join(s.dir, "work"))
	if s.opts.cert != "" {
		fmt.Fprintf(&b, " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			s.opts.ca, s.opts.cert, s.opts.key)
	}
	b.WriteString(")\n")
	if s.opts.cert != "" {
		mode := "anon"
		if s.opts.clientAuth {
			mode = "x509/certvalid"
		}
		fmt.Fprintf(&b, "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=%q)\n", mode)
	} else {
		b.WriteString("module(load=\"imtcp\")\n")
	}
	b.WriteString("template(name=\"fields\" type=\"string\" string=\"" + template + "\")\n")
	fmt.Fprintf(&b, "ruleset(name=\"received\") { action(type=\"omfile\" file=%q template=\"fields\") }\n", s.out)
	fmt.Fprintf(&b, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" listenPortFileName=%q ruleset=\"received\")\n",
		port, filepath.Join(s.dir, "port"))
	return b.String()
}

// start runs rsyslogd listening on port (0: any) and waits until it
// listens.
func (s *Server) start(t testing.TB, port int) {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("rsyslogtest: %v", err)
	}
	conf := filepath.Join(s.dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(s.config(port)), 0o600); err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(s.dir, "port")
	_ = os.Remove(portFile)
	// -n: stay in the foreground; -i: our own pid file; -f: our config.
	cmd := exec.Command(bin, "-n", "-f", conf, "-i", filepath.Join(s.dir, "rsyslogd.pid"))
	s.logs = &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("rsyslogtest: start: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	testutil.WaitFor(t, 10*time.Second, func() bool {
		select {
		case <-s.done:
			t.Fatalf("rsyslogtest: rsyslogd exited: %s", s.logs.String())
		default:
		}
		if port == 0 {
			// rsyslog writes the port file only for port 0, once it has
			// the port: which may be before it accepts on it.
			data, err := os.ReadFile(portFile)
			if err != nil {
				return false
			}
			n, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || n == 0 {
				return false
			}
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n))
		}
		// Listening means accepting: a sender started now must connect
		// at its first try.
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "rsyslogd to listen")
}

func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Stop stops rsyslogd (SIGTERM) and waits for it to exit: its port
// refuses connections until Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// Restart starts rsyslogd again on the same port, after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	_, port, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(port)
	s.start(t, n)
}

// Log is what rsyslogd itself printed.
func (s *Server) Log() string { return s.logs.String() }

// Messages returns every message received so far.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	data, err := os.ReadFile(s.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 10)
		if len(f) != 10 {
			t.Fatalf("rsyslogtest: unexpected line %q", sc.Text())
		}
		pri, _ := strconv.Atoi(f[0])
		out = append(out, Message{PRI: pri, Facility: f[1], Severity: f[2], Hostname: f[3], AppName: f[4],
			ProcID: f[5], MsgID: f[6], Version: f[7], SD: f[8], Msg: strings.TrimSpace(f[9])})
	}
	return out
}

// Raw is the file of received messages as it is.
func (s *Server) Raw(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(s.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}
