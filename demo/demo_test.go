package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/testca"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

func TestConfigTemplate(t *testing.T) {
	ca := testca.New(t, "demo test CA").WriteFile(t, t.TempDir()) // check reads it
	v := configValues{
		AuthLog: "/tmp/d/auth.log", HealthAddr: "127.0.0.1:10392", AdminSocket: "/tmp/d/admin.sock",
		DirectoryURL: "ldap://127.0.0.1:10389", LookupDN: sampledata.ServiceDN("ldapgate"), LookupPassword: `p"w: #x`,
		BaseDN: sampledata.BaseDN, SecureAddr: "127.0.0.1:10390", SafeAddr: "127.0.0.1:10391",
		AdminsDN: sampledata.GroupDN("admins"), AppDN: sampledata.ServiceDN("app"),
		DuoAPIHost: "127.0.0.1:10393", DuoIKey: "DIXXXXXXXXXXXXXXXXXX", DuoSKey: "skey", DuoCAFile: ca,
	}
	data, err := renderConfig(v)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	d := cfg.Directories["sample"]
	if d == nil || d.BindPassword.Reveal() != v.LookupPassword || d.UsernameAttribute != "uid" || d.BaseDN != sampledata.BaseDN {
		t.Fatalf("directory: %+v", d)
	}
	if len(cfg.Servers) != 2 {
		t.Fatalf("%d sections", len(cfg.Servers))
	}
	vpn, wiki := cfg.Servers[0], cfg.Servers[1]
	if vpn.Name != SecureSection || vpn.Failmode != "secure" || vpn.Listen != v.SecureAddr || !slices.Equal(vpn.SecureGroups, []string{v.AdminsDN}) {
		t.Errorf("vpn: %+v", vpn)
	}
	if wiki.Name != SafeSection || wiki.Failmode != "safe" || wiki.Listen != v.SafeAddr ||
		!slices.Equal(wiki.SecureGroups, []string{v.AdminsDN}) || !slices.Equal(wiki.ExemptDNs, []string{v.AppDN}) {
		t.Errorf("wiki: %+v", wiki)
	}
	for _, s := range cfg.Servers {
		if s.Duo.APIHost != v.DuoAPIHost || s.Duo.SecretKey.Reveal() != v.DuoSKey || s.Duo.CAFile != v.DuoCAFile ||
			s.Duo.Timeout != 3*time.Second || s.Duo.PushTimeout != 10*time.Second {
			t.Errorf("%s duo: %+v", s.Name, s.Duo)
		}
	}
	if cfg.Health.Listen != v.HealthAddr || cfg.AuthLog != v.AuthLog || cfg.Admin.Socket != v.AdminSocket {
		t.Errorf("top level: %+v", cfg)
	}
}

func TestOutages(t *testing.T) {
	want := map[string]duosim.Fault{"on": duosim.FaultRefuse, "off": duosim.FaultNone, "degrade": duosim.FaultAuthError,
		"misconfigure": duosim.FaultUnauthorized, "hang": duosim.FaultHang}
	for name, fault := range want {
		o, ok := LookupOutage(strings.ToUpper(name))
		if !ok || o.Fault != fault || o.Effect == "" {
			t.Errorf("%s: %+v %v", name, o, ok)
		}
	}
	if _, ok := LookupOutage("bogus"); ok {
		t.Error("bogus outage found")
	}
}

// TestTourLines checks the contract the integration test relies on: every
// step is one line "COMMAND   # -> OUTCOME: NOTE".
func TestTourLines(t *testing.T) {
	for _, client := range []Client{ClientLDAPUtils, ClientTry} {
		t.Run(string(client), func(t *testing.T) {
			opts := Options{BasePort: 20389, Self: "/opt/my ldapgate", Client: client}
			var buf bytes.Buffer
			if err := newTour(opts, "/tmp/a.log", "/tmp/c.yaml", "/tmp/s.sock").write(&buf); err != nil {
				t.Fatal(err)
			}
			steps := 0
			for _, line := range strings.Split(buf.String(), "\n") {
				cmd, expect, ok := strings.Cut(line, "   "+expectMarker)
				if !ok {
					if strings.Contains(line, "->") {
						t.Errorf("line mentions the marker but is not a step: %q", line)
					}
					continue
				}
				steps++
				if !strings.HasPrefix(expect, "ok: ") && !strings.HasPrefix(expect, "49 invalid credentials: ") {
					t.Errorf("outcome %q", expect)
				}
				first := strings.Fields(cmd)[0]
				switch {
				case first == "curl", strings.HasPrefix(cmd, "'/opt/my ldapgate' "):
				case client == ClientTry:
					t.Errorf("try tour runs %s: %q", first, line)
				case first != "ldapwhoami" && first != "ldapsearch":
					t.Errorf("unexpected command %q", line)
				}
				if strings.Contains(cmd, "outage") && !strings.Contains(cmd, "--base-port 20389") {
					t.Errorf("outage line without the demo's base port: %q", line)
				}
			}
			if steps < 20 {
				t.Errorf("%d steps:\n%s", steps, buf.String())
			}
			if client == ClientTry && !strings.Contains(buf.String(), "apt-get install ldap-utils") {
				t.Error("the try tour does not say how to get ldap-utils")
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"uid=alice,ou=people,dc=example,dc=com": "uid=alice,ou=people,dc=example,dc=com",
		"(uid=erin)":                            "'(uid=erin)'",
		"it's":                                  `'it'\''s'`,
		"":                                      "''",
		"a b":                                   "'a b'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRun drives Run with a stand-in for ldapgate's serve: it checks what
// Run builds and cleans up, not the proxy (the integration test does that).
func TestRun(t *testing.T) {
	base := testutil.FreePortRange(t, 6)
	opts := Options{BasePort: base, Client: ClientTry}
	var out testutil.SyncBuffer
	opts.Out = &out
	var got *config.Config
	fakeServe := func(ctx context.Context, cfg *config.Config) error {
		got = cfg
		var lns []net.Listener
		for _, s := range cfg.Servers {
			ln, err := net.Listen("tcp", s.Listen)
			if err != nil {
				return err
			}
			lns = append(lns, ln)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
		hs := &http.Server{Addr: cfg.Health.Listen, Handler: mux}
		go hs.ListenAndServe()
		<-ctx.Done()
		hs.Close()
		for _, ln := range lns {
			ln.Close()
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts, fakeServe) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Stop the demo") {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tour; output so far:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ports := opts.Ports()
	if got.Servers[0].Listen != fmt.Sprintf("127.0.0.1:%d", ports.Secure) || got.Servers[1].Listen != fmt.Sprintf("127.0.0.1:%d", ports.Safe) {
		t.Errorf("sections listen on %s and %s", got.Servers[0].Listen, got.Servers[1].Listen)
	}
	if got.Servers[0].Duo.APIHost != fmt.Sprintf("127.0.0.1:%d", ports.DuoAPI) {
		t.Errorf("duo api_host %s", got.Servers[0].Duo.APIHost)
	}
	if _, err := os.Stat(got.Servers[0].Duo.CAFile); err != nil {
		t.Errorf("CA file: %v", err)
	}

	// The outage command's client against the real control API.
	if err := SetOutage(ctx, opts, Outages[0]); err != nil {
		t.Fatal(err)
	}
	if o, _, err := CurrentOutage(ctx, opts); err != nil || o.Name != "on" {
		t.Fatalf("current outage: %+v %v", o, err)
	}
	if err := SetOutage(ctx, opts, Outage{Name: "off"}); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Stat(got.Servers[0].Duo.CAFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary files left behind: %v", err)
	}
	for _, p := range []int{ports.Directory, ports.DuoAPI, ports.DuoControl} {
		if err := checkFree(fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			t.Errorf("port %d still in use: %v", p, err)
		}
	}
}

func TestRunStaysOnLoopback(t *testing.T) {
	err := Run(context.Background(), Options{Listen: "0.0.0.0"}, func(context.Context, *config.Config) error {
		t.Error("serve called")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunRefusesBusyPorts(t *testing.T) {
	base := testutil.FreePortRange(t, 6)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+4))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), Options{BasePort: base}, func(context.Context, *config.Config) error {
		t.Error("serve called")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "--base-port") {
		t.Fatalf("err = %v", err)
	}
}
