package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// logRecords keeps every JSON log line the program writes, and the
// listeners' addresses (as logAddrs does).
type logRecords struct {
	mu   sync.Mutex
	recs []map[string]any
	addr map[string]string
}

func (l *logRecords) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		l.mu.Lock()
		l.recs = append(l.recs, rec)
		if a, _ := rec["addr"].(string); a != "" {
			name, _ := rec["server"].(string)
			if rec["msg"] == "health listener up" {
				name = "health"
			}
			l.addr[name] = a
		}
		l.mu.Unlock()
	}
}

func (l *logRecords) get(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addr[name]
}

// find returns the first record whose fields include every one of want.
func (l *logRecords) find(want map[string]string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, rec := range l.recs {
		for k, v := range want {
			if s, _ := rec[k].(string); !strings.Contains(s, v) {
				continue next
			}
		}
		return rec
	}
	return nil
}

// webhook is a local alert receiver on 127.0.0.1.
type webhook struct {
	mu     sync.Mutex
	events []alert.Event
}

func startWebhook(t *testing.T) (*webhook, string) {
	w := &webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var e alert.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

func (w *webhook) find(match func(alert.Event) bool) (alert.Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if match(e) {
			return e, true
		}
	}
	return alert.Event{}, false
}

// program is an in-process ldapgate serving a config.
type program struct {
	log    *logRecords
	socket string
}

func (p *program) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + p.log.get("health") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (p *program) metric(t *testing.T, series string) string {
	t.Helper()
	_, body := p.get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func runProgram(t *testing.T, cfgBody string, socket string) *program {
	t.Helper()
	cfg := writeConfig(t, cfgBody)
	logR, logW := io.Pipe()
	p := &program{log: &logRecords{addr: map[string]string{}}, socket: socket}
	go p.log.read(logR)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var runErr error
	go func() {
		runErr = Run(ctx, []string{"serve", "--config", cfg}, io.Discard, logW)
		logW.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
			if runErr != nil {
				t.Errorf("serve: %v", runErr)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s")
		}
	})
	testutil.WaitFor(t, 10*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("serve returned early: %v", runErr)
		default:
		}
		_, err := os.Stat(socket)
		return p.log.get("health") != "" && err == nil
	}, "the health listener and the admin socket")
	return p
}

// TestDirectoryURLDownWhileAnotherServes runs the whole program with two
// slapds as the two URLs of one directory, and a second section on a
// directory whose lookup password is wrong. Stopping the secondary slapd
// shows in /status, ldapgate_directory_url_up, a log line, an alert and
// `ldapgate status`, while the directory and its section stay up and
// ready; its return shows everywhere too. /readyz?server= answers per
// section.
func TestDirectoryURLDownWhileAnotherServes(t *testing.T) {
	primary, secondary := slapdtest.Start(t), slapdtest.Start(t)
	sim, err := duosim.New(duosim.Options{Users: []duosim.User{{Name: "alice", Behavior: duosim.BehaviorApprove}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	hook, hookURL := startWebhook(t)
	socket := filepath.Join(tmp, "admin.sock")
	svc, _ := sampledata.LookupService("ldapgate")
	duo := fmt.Sprintf("{api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}",
		sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), ca)
	p := runProgram(t, fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
admin: {socket: %q}
alerts: {webhook_url: %q}
directories:
  sample: {urls: [%q, %q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 1s, probe_interval: 500ms}
  wrong: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: not-the-password, username_attribute: uid, timeout: 1s, probe_interval: 500ms}
servers:
  - {name: vpn, listen: "127.0.0.1:0", directory: sample, duo: %s}
  - {name: wiki, listen: "127.0.0.2:0", directory: wrong, duo: %s}
`, socket, hookURL, primary.URL, secondary.URL, sampledata.BaseDN, svc.DN(), svc.Password,
		primary.URL, sampledata.BaseDN, svc.DN(), duo, duo), socket)

	// Per-section readiness: vpn ready, wiki not (its lookup account is
	// refused), an unknown section 404, and /readyz as a whole 503.
	testutil.WaitFor(t, 15*time.Second, func() bool {
		code, _ := p.get(t, "/readyz?server=vpn")
		return code == http.StatusOK
	}, "/readyz?server=vpn to say ready")
	// wiki's directory refuses the lookup account: its first probe (or
	// first lookup) says so; until then it is "not checked yet".
	testutil.WaitFor(t, 10*time.Second, func() bool {
		code, body := p.get(t, "/readyz?server=wiki")
		return code == http.StatusServiceUnavailable && strings.Contains(string(body), "lookup account")
	}, "/readyz?server=wiki to say the lookup account is refused")
	if code, body := p.get(t, "/readyz?server=wiki"); code != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "lookup account") || strings.Contains(string(body), `"vpn"`) {
		t.Fatalf("/readyz?server=wiki: %d %s", code, body)
	}
	if code, _ := p.get(t, "/readyz?server=mail"); code != http.StatusNotFound {
		t.Fatalf("/readyz?server=mail: %d, want 404", code)
	}
	if code, _ := p.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with wiki not ready: %d, want 503", code)
	}
	if _, ok := hook.find(func(e alert.Event) bool { return e.Kind == alert.KindDirectory && e.Directory == "wrong" }); !ok {
		testutil.WaitFor(t, 10*time.Second, func() bool {
			_, ok := hook.find(func(e alert.Event) bool {
				return e.Kind == alert.KindDirectory && e.Directory == "wrong" && e.To == "down"
			})
			return ok
		}, "an alert that directory wrong is not usable")
	}

	urlUp := func(u string) string {
		return p.metric(t, fmt.Sprintf(`ldapgate_directory_url_up{directory="sample",url=%q}`, u))
	}
	type urlStatus struct {
		URL   string    `json:"url"`
		Up    bool      `json:"up"`
		Since time.Time `json:"since"`
		Error string    `json:"error"`
	}
	vpnURLs := func() []urlStatus {
		_, body := p.get(t, "/status")
		var st struct {
			Sections []struct {
				Name          string      `json:"name"`
				DirectoryUp   bool        `json:"directory_up"`
				DirectoryURLs []urlStatus `json:"directory_urls"`
			} `json:"sections"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("/status: %v: %s", err, body)
		}
		for _, s := range st.Sections {
			if s.Name == "vpn" {
				if !s.DirectoryUp {
					t.Errorf("/status says vpn's directory is down: %s", body)
				}
				return s.DirectoryURLs
			}
		}
		t.Fatalf("/status has no vpn: %s", body)
		return nil
	}
	// Each URL is "not checked yet" until the first probe reaches it.
	testutil.WaitFor(t, 10*time.Second, func() bool {
		urls := vpnURLs()
		return len(urls) == 2 && urls[0].Up && urls[1].Up
	}, "/status to list both URLs up")
	if urls := vpnURLs(); len(urls) != 2 || urls[0].URL != primary.URL || urls[1].URL != secondary.URL ||
		!urls[0].Up || !urls[1].Up {
		t.Fatalf("/status directory_urls with both up: %+v", urls)
	}
	// The metrics follow each probe's report, a moment after the states.
	testutil.WaitFor(t, 10*time.Second, func() bool { return urlUp(primary.URL) == "1" && urlUp(secondary.URL) == "1" },
		"ldapgate_directory_url_up to be 1 for both URLs")

	// The secondary goes down: noticed by the probe while the primary serves.
	stopped := time.Now()
	secondary.Stop()
	isURL := func(to string) func(alert.Event) bool {
		return func(e alert.Event) bool {
			return e.Kind == alert.KindDirectoryURL && e.Directory == "sample" && e.URL == secondary.URL && e.To == to
		}
	}
	testutil.WaitFor(t, 30*time.Second, func() bool { _, ok := hook.find(isURL("down")); return ok },
		"an alert that the secondary is down")
	e, _ := hook.find(isURL("down"))
	if !strings.Contains(e.Msg, "1 of 2 URLs serve") || e.From != "up" {
		t.Errorf("down alert: %+v", e)
	}
	if rec := p.log.find(map[string]string{"alert": "directory_url", "url": secondary.URL, "msg": "down"}); rec == nil {
		t.Error("no log line for the secondary going down")
	}
	if urlUp(secondary.URL) != "0" || urlUp(primary.URL) != "1" ||
		p.metric(t, `ldapgate_directory_up{directory="sample"}`) != "1" {
		t.Errorf("metrics with the secondary down: url_up %q %q, directory_up %q", urlUp(primary.URL),
			urlUp(secondary.URL), p.metric(t, `ldapgate_directory_up{directory="sample"}`))
	}
	if urls := vpnURLs(); !urls[0].Up || urls[1].Up || urls[1].Error == "" || urls[1].Since.Before(stopped.Add(-time.Second)) {
		t.Errorf("/status directory_urls with the secondary down: %+v", urls)
	}
	if code, body := p.get(t, "/readyz?server=vpn"); code != http.StatusOK {
		t.Errorf("vpn not ready while the primary serves: %d %s", code, body)
	}

	// ldapgate status, over the admin socket of the running program.
	out, code := runCLI(t, "status", "--socket", socket)
	if code != 0 {
		t.Fatalf("ldapgate status: exit %d: %s", code, out)
	}
	for _, want := range [][]string{
		{"vpn: ready"}, {"wiki: NOT READY: directory wrong refuses the lookup account"},
		{"directory", "sample: up"}, {primary.URL, "up since"}, {secondary.URL, "DOWN since", "connection refused"},
		{"duo", "ok since"}, {"primary-only", "off"},
	} {
		if !hasLine(out, want...) {
			t.Errorf("ldapgate status has no line with %q:\n%s", want, out)
		}
	}
	out, code = runCLI(t, "status", "--socket", socket, "--server", "wiki")
	if code != 0 || strings.Contains(out, "vpn:") || !strings.Contains(out, "wiki: NOT READY") {
		t.Errorf("ldapgate status --server wiki: exit %d:\n%s", code, out)
	}

	// The secondary comes back.
	secondary.Restart(t)
	testutil.WaitFor(t, 30*time.Second, func() bool { _, ok := hook.find(isURL("up")); return ok },
		"an alert that the secondary serves again")
	if rec := p.log.find(map[string]string{"alert": "directory_url", "url": secondary.URL, "msg": "serves again"}); rec == nil {
		t.Error("no log line for the secondary coming back")
	}
	if urlUp(secondary.URL) != "1" {
		t.Errorf("ldapgate_directory_url_up of the secondary back: %q", urlUp(secondary.URL))
	}
	if urls := vpnURLs(); !urls[1].Up || urls[1].Error != "" {
		t.Errorf("/status directory_urls with the secondary back: %+v", urls)
	}
	if e, ok := hook.find(func(e alert.Event) bool { return e.Kind == alert.KindDirectory && e.Directory == "sample" }); ok {
		t.Errorf("the directory as a whole was announced while the primary served: %+v", e)
	}
	if rec := p.log.find(map[string]string{"msg": "directory not usable", "directory": "sample"}); rec != nil {
		t.Errorf("logged the directory unusable while the primary served: %v", rec)
	}
}

// TestStatusWithoutSocket: `ldapgate status` exits non-zero, naming the
// socket, when nothing listens there.
func TestStatusWithoutSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	out, code := runCLI(t, "status", "--socket", path)
	if code == 0 || !strings.Contains(out, path) {
		t.Fatalf("status without a socket: exit %d, output %q", code, out)
	}
	cfg := writeConfig(t, "admin: {socket: "+path+"}\n")
	if out, code := runCLI(t, "status", "--config", cfg); code == 0 || !strings.Contains(out, path) {
		t.Fatalf("status with the config's socket missing: exit %d, output %q", code, out)
	}
}

// hasLine reports whether some line of out contains every one of parts, in
// order.
func hasLine(out string, parts ...string) bool {
next:
	for _, line := range strings.Split(out, "\n") {
		for _, p := range parts {
			i := strings.Index(line, p)
			if i < 0 {
				continue next
			}
			line = line[i+len(p):]
		}
		return true
	}
	return false
}
