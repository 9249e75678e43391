package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/demo"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/rsyslogtest"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestAuthEventsShippedToRsyslog runs the whole program in-process with
// auth_syslog pointed at a real rsyslogd speaking TLS (gtls) that demands
// a client certificate: every bind decision arrives as an RFC 5424
// message whose MSG is the auth log's own line, with the severity of its
// status and its rule as MSGID, and no password, passcode or secret in
// anything received.
func TestAuthEventsShippedToRsyslog(t *testing.T) {
	tmp := t.TempDir()
	ca := testca.New(t, "syslog-ca")
	caFile := ca.WriteFile(t, tmp)
	srvCert, srvKey := ca.Server(t, "logs.test", "127.0.0.1").Write(t, tmp, "rsyslog")
	cliCert, cliKey := ca.Client(t, "ldapgate").Write(t, tmp, "ldapgate")
	rs := rsyslogtest.Start(t, rsyslogtest.WithTLS(caFile, srvCert, srvKey, true))

	dir := slapdtest.Start(t)
	sim, err := duosim.New(duosim.Options{Users: demo.SampleDuoUsers()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	duoCA := filepath.Join(tmp, "duo-ca.pem")
	if err := os.WriteFile(duoCA, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	authLog := filepath.Join(tmp, "auth.log")
	svc, _ := sampledata.LookupService("ldapgate")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
auth_log: %q
auth_syslog: {address: %q, tls: true, ca_file: %q, tls_server_name: logs.test, cert_file: %q, key_file: %q, app_name: ldapgate-test, facility: local3}
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}
servers:
  - name: vpn
    listen: "127.0.0.1:0"
    directory: sample
    duo: {api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}
`, authLog, rs.Addr, caFile, cliCert, cliKey, dir.URL, sampledata.BaseDN, svc.DN(), svc.Password,
		sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), duoCA))

	logR, logW := io.Pipe()
	addrs := &logAddrs{addrs: map[string]string{}}
	go addrs.read(logR)
	opLog := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfg}, io.Discard, io.MultiWriter(logW, opLog))
		logW.Close()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	testutil.WaitFor(t, 10*time.Second, func() bool { return addrs.get("vpn") != "" && addrs.get("health") != "" }, "the listeners")

	bind := func(name, password string) {
		t.Helper()
		conn, err := ldap.DialURL("ldap://" + addrs.get("vpn"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.Bind(name, password) // the outcome is checked in the records
	}
	alice, _ := sampledata.Lookup("alice")
	bob, _ := sampledata.Lookup("bob")
	carol, _ := sampledata.Lookup("carol")
	bind(alice.DN(), alice.Password)                        // push approved
	bind(bob.DN(), bob.Password)                            // push denied
	bind(alice.DN(), "wrong-"+alice.Password)               // the directory refuses
	bind(carol.DN(), carol.Password+","+carol.Passcodes[0]) // passcode

	type want struct {
		dn, status, rule, severity string
	}
	wants := []want{
		{alice.DN(), "Allow", "second_factor", "info"},
		{bob.DN(), "Reject", "denied", "notice"},
		{"", "Reject", "invalid_credentials", "notice"},
		{carol.DN(), "Allow", "second_factor", "info"},
	}
	binds := func() []rsyslogtest.Message {
		var out []rsyslogtest.Message
		for _, m := range rs.Messages(t) {
			if strings.Contains(m.Msg, `"status":`) {
				out = append(out, m)
			}
		}
		return out
	}
	testutil.WaitFor(t, 15*time.Second, func() bool { return len(binds()) == len(wants) }, "rsyslogd to receive the four bind records")

	localLines, err := os.ReadFile(authLog)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range binds() {
		w := wants[i]
		var rec map[string]any
		if err := json.Unmarshal([]byte(m.Msg), &rec); err != nil {
			t.Fatalf("message %d is not JSON: %v: %s", i, err, m.Msg)
		}
		if rec["server_section"] != "vpn" || rec["status"] != w.status || rec["rule"] != w.rule || rec["client_ip"] != "127.0.0.1" ||
			(w.dn != "" && !strings.EqualFold(fmt.Sprint(rec["dn"]), w.dn)) || rec["timestamp"] == "" {
			t.Errorf("record %d: %s, want %+v", i, m.Msg, w)
		}
		if m.Version != "1" || m.Facility != "local3" || m.Severity != w.severity || m.AppName != "ldapgate-test" ||
			m.MsgID != w.rule || m.ProcID != fmt.Sprint(os.Getpid()) || m.Hostname == "" || m.Hostname == "-" {
			t.Errorf("header of record %d: %+v, want %+v", i, m, w)
		}
		if !strings.Contains(string(localLines), m.Msg+"\n") {
			t.Errorf("record %d is not the auth log's line:\n%s\nauth log:\n%s", i, m.Msg, localLines)
		}
	}
	if r := binds()[3].Msg; !strings.Contains(r, `"factor":"passcode"`) {
		t.Errorf("carol's record has no passcode factor: %s", r)
	}
	raw := rs.Raw(t)
	for _, secret := range []string{alice.Password, bob.Password, carol.Password, carol.Passcodes[0], svc.Password, sim.SecretKey()} {
		if strings.Contains(raw, secret) {
			t.Errorf("rsyslogd received the secret %q:\n%s", secret, raw)
		}
	}

	resp, err := http.Get("http://" + addrs.get("health") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{"ldapgate_auth_syslog_dropped_total 0", "ldapgate_auth_syslog_connected 1"} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("/metrics has no %q", line)
		}
	}
	if !strings.Contains(string(body), "ldapgate_auth_syslog_sent_total ") {
		t.Error("/metrics has no ldapgate_auth_syslog_sent_total")
	}
	if !strings.Contains(opLog.String(), `"msg":"auth syslog connected"`) {
		t.Errorf("no connected line in the log:\n%s", opLog.String())
	}

	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20s")
	}
}

// TestAuthSyslogIsRestartOnly: a reload that changes auth_syslog says it
// takes effect at the next start.
func TestAuthSyslogIsRestartOnly(t *testing.T) {
	a, b := &config.Config{}, &config.Config{}
	b.AuthSyslog.Address = "logs.corp.example:6514"
	if got := restartOnly(a, b); len(got) != 1 || got[0] != "auth_syslog" {
		t.Fatalf("restartOnly = %v, want [auth_syslog]", got)
	}
	if got := restartOnly(b, b); len(got) != 0 {
		t.Fatalf("restartOnly of the same configuration = %v", got)
	}
}
