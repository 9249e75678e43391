package authlog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/rsyslogtest"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// testSyslog is a Syslog for addr with fast backoffs, logging into log.
func testSyslog(t *testing.T, addr string, queue int, tlsCfg *tls.Config, log *testutil.SyncBuffer) *Syslog {
	t.Helper()
	s, err := NewSyslog(SyslogConfig{
		Address: addr, TLS: tlsCfg, AppName: "ldapgate", Facility: 10, Hostname: "gate-1",
		Queue: queue, Timeout: 500 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		FlushTimeout: time.Second, MaxMessage: 8000,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s until the test ends and fails the test if Run does not
// return within bound of its context ending.
func run(t *testing.T, s *Syslog, bound time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(bound):
				t.Errorf("Run did not return within %s of its context ending", bound)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func event(i int, status failmode.Status, rule failmode.Rule, fm bool) failmode.BindEvent {
	return failmode.BindEvent{
		Time: time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC), Server: "vpn", ClientIP: "127.0.0.1",
		BindName: fmt.Sprintf("user%d", i), DN: fmt.Sprintf("uid=user%d,ou=people,dc=example,dc=com", i), Username: fmt.Sprintf("user%d", i),
		Stage: failmode.AuthSecondary, Factor: "push", Status: status, Rule: rule, Failmode: fm, Msg: "message " + strconv.Itoa(i),
	}
}

// TestSyslogFormat: the header of each record, its severity by status,
// and the frame's length.
func TestSyslogFormat(t *testing.T) {
	s := testSyslog(t, "127.0.0.1:1", 1, nil, &testutil.SyncBuffer{})
	cases := []struct {
		name  string
		rec   Record
		pri   int
		msgid string
	}{
		{"allow", bindRecord(event(1, failmode.StatusAllow, failmode.RuleSecondFactor, false)), 10*8 + 6, "second_factor"},
		{"failmode allow", bindRecord(event(1, failmode.StatusAllow, failmode.RuleFailmodeSafe, true)), 10*8 + 4, "failmode_safe"},
		{"reject", bindRecord(event(1, failmode.StatusReject, failmode.RuleInvalidCredentials, false)), 10*8 + 5, "invalid_credentials"},
		{"error", bindRecord(event(1, failmode.StatusError, failmode.RuleDirectoryUnavailable, false)), 10*8 + 3, "directory_unavailable"},
		{"notice", noticeRecord(time.Now(), "duo_state", "vpn", "duo state changed"), 10*8 + 5, "duo_state"},
		{"neither", Record{Msg: "x"}, 10*8 + 5, "-"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frame, err := s.format(time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.FixedZone("x", 3600)), c.rec)
			if err != nil {
				t.Fatal(err)
			}
			n, msg, ok := strings.Cut(string(frame), " ")
			if l, _ := strconv.Atoi(n); !ok || l != len(msg) {
				t.Fatalf("frame length %q for a message of %d bytes", n, len(msg))
			}
			want := fmt.Sprintf("<%d>1 2026-11-23T09:00:00.123456Z gate-1 ldapgate %d %s - ", c.pri, s.pid(), c.msgid)
			if !strings.HasPrefix(msg, want) {
				t.Fatalf("message %q, want it to begin %q", msg, want)
			}
			body := msg[len(want):]
			want, _ = jsonLine(c.rec)
			if body != want {
				t.Fatalf("body %s, want the auth log's line %s", body, want)
			}
		})
	}
}

func (s *Syslog) pid() int { n, _ := strconv.Atoi(s.procid); return n }

func jsonLine(r Record) (string, error) {
	b, err := json.Marshal(r)
	return string(b), err
}

// TestSyslogShortensLongRecords: a bind name as long as a client may send
// does not make a message longer than MaxMessage, and the record stays
// JSON.
func TestSyslogShortensLongRecords(t *testing.T) {
	s := testSyslog(t, "127.0.0.1:1", 1, nil, &testutil.SyncBuffer{})
	e := event(1, failmode.StatusReject, failmode.RuleInvalidCredentials, false)
	e.BindName = strings.Repeat("é\x01", 1<<20)
	frame, err := s.format(e.Time, bindRecord(e))
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > 8000+5 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	_, msg, _ := strings.Cut(string(frame), " - ")
	var r Record
	if err := json.Unmarshal([]byte(msg), &r); err != nil {
		t.Fatalf("shortened record is not JSON: %v", err)
	}
	if !strings.HasSuffix(r.BindName, "…") || r.DN != e.DN {
		t.Fatalf("bind_name %d bytes, dn %q", len(r.BindName), r.DN)
	}
}

// TestSyslogToRsyslog: records reach a real rsyslogd as RFC 5424 messages
// with the auth log's JSON line as MSG.
func TestSyslogToRsyslog(t *testing.T) {
	rs := rsyslogtest.Start(t)
	log := &testutil.SyncBuffer{}
	s := testSyslog(t, rs.Addr, 100, nil, log)
	run(t, s, 5*time.Second)
	events := []failmode.BindEvent{
		event(1, failmode.StatusAllow, failmode.RuleSecondFactor, false),
		event(2, failmode.StatusAllow, failmode.RuleFailmodeSafe, true),
		event(3, failmode.StatusReject, failmode.RuleDenied, false),
		event(4, failmode.StatusError, failmode.RuleDirectoryUnavailable, false),
	}
	for _, e := range events {
		s.RecordBind(e)
	}
	s.Notice("duo_state", "vpn", "duo state changed: ok -> unreachable (connection refused)")
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(rs.Messages(t)) == 5 }, "rsyslogd to receive 5 messages")
	msgs := rs.Messages(t)
	wantSev := []string{"info", "warning", "notice", "err", "notice"}
	for i, m := range msgs {
		if m.Version != "1" || m.Facility != "authpriv" || m.Severity != wantSev[i] || m.Hostname != "gate-1" ||
			m.AppName != "ldapgate" || m.ProcID != s.procid || m.SD != "-" {
			t.Errorf("message %d: %+v", i, m)
		}
		if i == len(events) {
			if m.MsgID != "duo_state" || !strings.Contains(m.Msg, `"event":"duo_state"`) {
				t.Errorf("notice: %+v", m)
			}
			continue
		}
		var local bytes.Buffer
		New(&local).RecordBind(events[i])
		if want := strings.TrimSpace(local.String()); m.Msg != want || m.MsgID != string(events[i].Rule) {
			t.Errorf("message %d: msgid %q body %s, want %s and the auth log's line %s", i, m.MsgID, m.Msg, events[i].Rule, want)
		}
	}
	if s.Sent() != 5 || s.Dropped() != 0 {
		t.Errorf("sent %d dropped %d", s.Sent(), s.Dropped())
	}
	if !strings.Contains(log.String(), "auth syslog connected") {
		t.Errorf("no connected line in %s", log.String())
	}
}

// TestSyslogReconnects: while rsyslogd is down records wait in the queue;
// when it comes back on its port they arrive, and the state changes are
// in the log.
func TestSyslogReconnects(t *testing.T) {
	rs := rsyslogtest.Start(t)
	log := &testutil.SyncBuffer{}
	s := testSyslog(t, rs.Addr, 100, nil, log)
	run(t, s, 5*time.Second)
	s.RecordBind(event(1, failmode.StatusAllow, failmode.RuleSecondFactor, false))
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(rs.Messages(t)) == 1 }, "the first message")

	rs.Stop(t)
	testutil.WaitFor(t, 10*time.Second, func() bool { return !s.Connected() }, "the sender to see the server go")
	for i := 2; i <= 4; i++ {
		s.RecordBind(event(i, failmode.StatusReject, failmode.RuleDenied, false))
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(log.String(), "auth syslog unreachable") },
		"the sender to say it cannot connect")
	rs.Restart(t)
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(rs.Messages(t)) == 4 }, "the queued messages after the restart")
	for i, m := range rs.Messages(t) {
		if !strings.Contains(m.Msg, fmt.Sprintf(`"bind_name":"user%d"`, i+1)) {
			t.Errorf("message %d out of order or missing: %s", i, m.Msg)
		}
	}
	for _, line := range []string{"auth syslog disconnected", "auth syslog unreachable"} {
		if strings.Count(log.String(), line) != 1 {
			t.Errorf("%q not logged exactly once (on change only):\n%s", line, log.String())
		}
	}
	if strings.Count(log.String(), "auth syslog connected") != 2 {
		t.Errorf("want two connected lines:\n%s", log.String())
	}
	if s.Sent() != 4 || s.Dropped() != 0 {
		t.Errorf("sent %d dropped %d", s.Sent(), s.Dropped())
	}
}

// recordFor records n events and fails the test unless that takes less
// than bound.
func recordFor(t *testing.T, s *Syslog, n int, bound time.Duration) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for i := range n {
			s.RecordBind(event(i, failmode.StatusAllow, failmode.RuleSecondFactor, false))
		}
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%d records not recorded within %s: RecordBind waits", n, bound)
	}
	t.Logf("%d records in %s", n, time.Since(start))
}

// TestSyslogNothingListening: with no server, RecordBind never waits;
// what does not fit the queue is dropped and counted; Run stops within
// its flush timeout.
func TestSyslogNothingListening(t *testing.T) {
	addr := testutil.FreeAddr(t) // closed again: connections are refused
	log := &testutil.SyncBuffer{}
	s := testSyslog(t, addr, 10, nil, log)
	stop := run(t, s, 3*time.Second)
	const n = 2000
	recordFor(t, s, n, 10*time.Second)
	// the queue holds 10, the sender at most one more
	if got := s.Dropped(); got < n-11 || got > n-10 {
		t.Fatalf("dropped %d of %d with a queue of 10", got, n)
	}
	testutil.WaitFor(t, 5*time.Second, func() bool { return strings.Contains(log.String(), "auth syslog unreachable") }, "the unreachable line")
	stop()
	if s.Sent() != 0 || s.Dropped() != n {
		t.Fatalf("after stop: sent %d dropped %d, want 0 and %d (unsent records count as dropped)", s.Sent(), s.Dropped(), n)
	}
}

// stuckServer accepts connections and never reads from them.
func stuckServer(t *testing.T) (addr string, accepted func() int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// TestSyslogServerNeverReads: a server that accepts and never reads fills
// the connection; writes time out, the sender reconnects, binds never
// wait, drops are counted, and Run still stops in bounded time.
func TestSyslogServerNeverReads(t *testing.T) {
	addr, accepted := stuckServer(t)
	log := &testutil.SyncBuffer{}
	s := testSyslog(t, addr, 100, nil, log)
	stop := run(t, s, 3*time.Second)
	const n = 2000
	// Until the kernel's buffers are full and a write has timed out.
	testutil.WaitFor(t, 30*time.Second, func() bool {
		recordFor(t, s, n, 10*time.Second)
		return strings.Contains(log.String(), "auth syslog disconnected")
	}, "a write to time out")
	if s.Dropped() == 0 {
		t.Fatal("nothing dropped while the server did not read")
	}
	testutil.WaitFor(t, 10*time.Second, func() bool { return accepted() >= 2 }, "the sender to reconnect")
	recordFor(t, s, n, 10*time.Second)
	stop()
}

// TestSyslogTLSToRsyslog: RFC 5425 to rsyslogd's gtls driver, which
// demands a client certificate from the test CA; a server whose
// certificate the CA did not issue is never sent anything.
func TestSyslogTLSToRsyslog(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t, "syslog-ca")
	caFile := ca.WriteFile(t, dir)
	cert, key := ca.Loopback(t).Write(t, dir, "server")
	rs := rsyslogtest.Start(t, rsyslogtest.WithTLS(caFile, cert, key, true))

	client := ca.Client(t, "ldapgate").TLS(t)
	log := &testutil.SyncBuffer{}
	s := testSyslog(t, rs.Addr, 10, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{client}}, log)
	run(t, s, 5*time.Second)
	s.RecordBind(event(1, failmode.StatusAllow, failmode.RuleSecondFactor, false))
	testutil.WaitFor(t, 10*time.Second, func() bool { return len(rs.Messages(t)) == 1 }, "the message over TLS")
	if m := rs.Messages(t)[0]; m.AppName != "ldapgate" || !strings.Contains(m.Msg, `"bind_name":"user1"`) {
		t.Fatalf("received %+v", m)
	}

	other := testca.New(t, "someone-else")
	log2 := &testutil.SyncBuffer{}
	s2 := testSyslog(t, rs.Addr, 10, &tls.Config{RootCAs: other.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{client}}, log2)
	run(t, s2, 5*time.Second)
	s2.RecordBind(event(2, failmode.StatusAllow, failmode.RuleSecondFactor, false))
	testutil.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(log2.String(), "auth syslog unreachable") && strings.Contains(log2.String(), "certificate")
	}, "the untrusted server to be refused")
	if s2.Sent() != 0 || s2.Connected() {
		t.Fatalf("sent %d to a server the CA did not issue", s2.Sent())
	}
}
