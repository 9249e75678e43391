package authlog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

func TestRecordShape(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.RecordBind(failmode.BindEvent{
		Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("x", 3600)), Server: "vpn", ClientIP: "127.0.0.1",
		DN: "uid=alice,ou=people,dc=example,dc=com", Username: "alice", Stage: failmode.AuthSecondary, Factor: "push",
		Status: failmode.StatusAllow, Rule: "failmode_safe", Failmode: true,
		Msg: "failmode safe: allowed without second factor (duo unreachable: connection refused)",
	})
	l.RecordBind(failmode.BindEvent{Time: time.Now(), Server: "vpn", Stage: failmode.AuthPrimary, Status: failmode.StatusReject})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per event, got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timestamp", "server_section", "client_ip", "dn", "username", "auth_stage", "factor", "status", "msg"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, lines[0])
		}
	}
	if m["timestamp"] != "2026-11-23T09:00:00Z" || m["status"] != "Allow" || m["auth_stage"] != "secondary" || m["failmode"] != true {
		t.Errorf("bad record %s", lines[0])
	}
}

func TestOpenFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "auth.log")
	for i := 0; i < 2; i++ {
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		l.Write(Record{Status: "Allow"})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Fatalf("want 2 lines, got %d", n)
	}
}

func TestNotice(t *testing.T) {
	var buf bytes.Buffer
	New(&buf).Notice("duo_state", "vpn", "duo state changed: ok -> unreachable (connection refused)")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["event"] != "duo_state" || m["server_section"] != "vpn" || m["msg"] != "duo state changed: ok -> unreachable (connection refused)" {
		t.Fatalf("bad notice %s", buf.String())
	}
	if _, ok := m["status"]; ok {
		t.Fatalf("a notice is not a bind decision: %s", buf.String())
	}
}
