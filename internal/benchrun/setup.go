package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// benchUser is one of the generated people: every gated bind and push of
// the benchmarks goes to a different one in turn, so that push-fatigue
// limits (duo.max_pushes per user) never shape what is measured.
type benchUser struct{ UID, Password string }

func (u benchUser) DN() string { return sampledata.PersonDN(u.UID) }

func benchUsers(n int) []benchUser {
	us := make([]benchUser, n)
	for i := range us {
		us[i] = benchUser{UID: fmt.Sprintf("bench%05d", i), Password: fmt.Sprintf("bench-pass-%05d", i)}
	}
	return us
}

// benchLDIF is the generated people for slapdtest.WithExtraLDIF.
func benchLDIF(us []benchUser) string {
	var b strings.Builder
	for _, u := range us {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: %s\ncn: Bench %s\nsn: %s\nuserPassword: %s\n\n",
			u.DN(), u.UID, u.UID, u.UID, sampledata.SSHA(u.Password, []byte(u.UID[len(u.UID)-5:]+"slt")))
	}
	return b.String()
}

func duoUsers(us []benchUser) []duosim.User {
	ds := make([]duosim.User, len(us))
	for i, u := range us {
		ds[i] = duosim.User{Name: u.UID, Behavior: duosim.BehaviorApprove}
	}
	return ds
}

// gateSections are the sections of the measured configuration: gate fails
// secure (the default), safe fails safe (the outage scenarios, where binds
// are decided without Duo). Both exempt the sample app account.
var gateSections = []string{"gate", "safe"}

// writeGateConfig writes ldapgate's configuration: limits wide enough that
// they never refuse the benchmark's own load, which all comes from
// 127.0.0.1.
func writeGateConfig(dir, directoryURL string, sim *duosim.Sim, maxConns int) (string, error) {
	ca := filepath.Join(dir, "duo-ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		return "", err
	}
	lookup, _ := sampledata.LookupService("ldapgate")
	app, _ := sampledata.LookupService("app")
	duo := fmt.Sprintf(`{api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 1s, push_timeout: 5m,
          probe_interval: 500ms, unreachable_after: 3, max_pushes: 100, push_window: 1m}`,
		sim.APIHost(), sim.IntegrationKey(), sim.SecretKey(), ca)
	var sections strings.Builder
	for _, name := range gateSections {
		failmode := "secure"
		if name == "safe" {
			failmode = "safe"
		}
		fmt.Fprintf(&sections, `
  - name: %s
    listen: "127.0.0.1:0"
    directory: sample
    failmode: %s
    exempt_dns: [%q]
    max_connections: %d
    max_connections_per_ip: %d
    duo: %s
`, name, failmode, app.DN(), maxConns, maxConns, duo)
	}
	yaml := fmt.Sprintf(`
log: {level: info, format: json}
health: {listen: "127.0.0.1:0"}
shutdown_timeout: 1s
directories:
  sample: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 10s, max_connections: 2000}
servers:%s`, directoryURL, sampledata.BaseDN, lookup.DN(), lookup.Password, sections.String())
	cfg := filepath.Join(dir, "ldapgate.yaml")
	return cfg, os.WriteFile(cfg, []byte(yaml), 0o600)
}

// waitReady polls ldapgate's /readyz until every section is ready (Duo and
// the directory answered its probes), at most limit.
func waitReady(ctx context.Context, g *gate, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get("http://" + g.addr["health"] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ldapgate not ready within %v (last: %v)", limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
