package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
	"github.com/ldapgate/ldapgate/internal/testutil"
)

// TestCheckOnline: check --online reports, one line each, every directory
// URL, secure group and Duo integration against real slapd and the
// simulator: a wrong lookup password, a URL nobody answers, a group the
// lookup account cannot see, a wrong secret key and a clock minutes off
// are each a "fail" naming the key; the good ones are "ok"; any failure
// exits 1, none exits 0.
func TestCheckOnline(t *testing.T) {
	dir := slapdtest.Start(t)
	tmp := t.TempDir()
	newSim := func(name string, offset time.Duration) (*duosim.Sim, string) {
		sim, err := duosim.New(duosim.Options{ClockOffset: offset})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		ca := filepath.Join(tmp, name+"-ca.pem")
		if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		return sim, ca
	}
	good, goodCA := newSim("good", 0)
	other, otherCA := newSim("other", 0)
	skewed, skewedCA := newSim("skewed", 3*time.Minute)
	svc, _ := sampledata.LookupService("ldapgate")
	dead := "ldap://" + testutil.FreeAddr(t)
	admins := sampledata.GroupDN(sampledata.AdminGroup)
	missing := sampledata.GroupDN("no-such-group")
	duo := func(sim *duosim.Sim, secret, ca string) string {
		return fmt.Sprintf("{api_host: %q, integration_key: %q, secret_key: %q, ca_file: %q, timeout: 2s}",
			sim.APIHost(), sim.IntegrationKey(), secret, ca)
	}
	section := func(name, directory, duo string, groups ...string) string {
		s := fmt.Sprintf("  - name: %s\n    listen: \"127.0.0.1:0\"\n    directory: %s\n    duo: %s\n", name, directory, duo)
		if len(groups) > 0 {
			quoted := make([]string, len(groups))
			for i, g := range groups {
				quoted[i] = fmt.Sprintf("%q", g)
			}
			s += "    secure_groups: [" + strings.Join(quoted, ", ") + "]\n"
		}
		return s
	}
	sample := func(urls string) string {
		return fmt.Sprintf("  sample: {urls: [%s], base_dn: %q, bind_dn: %q, bind_password: %q, username_attribute: uid, timeout: 2s}\n",
			urls, sampledata.BaseDN, svc.DN(), svc.Password)
	}
	directories := "directories:\n" + sample(fmt.Sprintf("%q, %q", dir.URL, dead)) +
		fmt.Sprintf("  wrongpw: {urls: [%q], base_dn: %q, bind_dn: %q, bind_password: \"not-the-password\", username_attribute: uid, timeout: 2s}\n",
			dir.URL, sampledata.BaseDN, svc.DN())

	bad := writeConfig(t, directories+"servers:\n"+
		section("vpn", "sample", duo(good, good.SecretKey(), goodCA), admins, missing)+
		section("wiki", "wrongpw", duo(other, "wrong-secret-key-wrong-secret-key-123456", otherCA))+
		section("mail", "sample", duo(skewed, skewed.SecretKey(), skewedCA)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, code := runCLICtx(t, ctx, "check", "--config", bad, "--online")
	if code != 1 {
		t.Errorf("exit code %d with failures, want 1", code)
	}
	for _, want := range []string{
		"ok   directories.sample.urls[0] " + dir.URL + ": connected (cleartext), lookup account " + svc.DN() + " bound",
		"fail directories.sample.urls[1] " + dead + ": cannot connect",
		"fail directories.wrongpw.urls[0] " + dir.URL + ": connected (cleartext), but the directory refused the lookup account",
		"ok   servers[0].secure_groups[0] " + admins + ": readable by the lookup account",
		"fail servers[0].secure_groups[1] " + missing + ": the lookup account cannot read it",
		"ok   servers[0].duo (" + strings.ToLower(good.APIHost()) + "/" + good.IntegrationKey() + "): signed /auth/v2/check accepted; clock skew ",
		"fail servers[1].duo (" + strings.ToLower(other.APIHost()) + "/" + other.IntegrationKey() + "): signed /auth/v2/check failed: ",
		"fail servers[2].duo (" + strings.ToLower(skewed.APIHost()) + "/" + skewed.IntegrationKey() + "): keys accepted, but this machine's clock is +3m",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "not-the-password") || strings.Contains(out, good.SecretKey()) {
		t.Error("check --online printed a secret")
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", out)
	}

	clean := writeConfig(t, "directories:\n"+sample(fmt.Sprintf("%q", dir.URL))+"servers:\n"+section("vpn", "sample", duo(good, good.SecretKey(), goodCA), admins))
	if out, code := runCLICtx(t, ctx, "check", "--config", clean, "--online"); code != 0 || strings.Contains(out, "fail") {
		t.Fatalf("all good: exit %d\n%s", code, out)
	}
}
