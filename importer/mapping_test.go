package importer

import (
	"errors"
	"strings"
	"testing"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/failmode"
)

const minimal = `[ad_client]
host=dc1.corp.example.com
transport=ldaps
service_account_username=svc
service_account_password=ad-password-do-not-print
search_dn=OU=Staff,DC=corp,DC=example,DC=com

[ldap_server_auto]
client=ad_client
ikey=DIXXXXXXXXXXXXXXXXXX
skey=duo-secret-do-not-print
api_host=api-xxxxxxxx.duosecurity.com
`

func importString(t *testing.T, cfg string, opts Options) (*Result, error) {
	t.Helper()
	if opts.Source == "" {
		opts.Source = "/etc/duoauthproxy/authproxy.cfg"
	}
	res, err := Import([]byte(cfg), opts)
	if res == nil {
		t.Fatalf("nil result (err %v)", err)
	}
	return res, err
}

// TestDuoDefaultsCarriedOver: what the Duo proxy did by default is what
// the imported file does, explicitly, and the report flags each.
func TestDuoDefaultsCarriedOver(t *testing.T) {
	res, err := importString(t, minimal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Config.Servers[0]
	if s.Mode() != failmode.Safe || !s.ExemptPrimaryBind {
		t.Errorf("failmode %v, exempt_primary_bind %v: want the Duo proxy's safe and true", s.Mode(), s.ExemptPrimaryBind)
	}
	if s.Duo.Timeout != config.DefaultDuoTimeout {
		t.Errorf("duo.timeout %v", s.Duo.Timeout)
	}
	for _, want := range []string{
		"differs: [ldap_server_auto] failmode: unset: the Duo proxy's default is safe",
		"differs: [ldap_server_auto] exempt_primary_bind: unset: the Duo proxy's default is true",
		"differs: [ldap_server_auto] api_timeout: unset: the Duo proxy waits for Duo without a limit",
		"an untrusted certificate never fails open",
		"finding: high failmode-safe-without-secure-groups",
		"finding: high exempt-primary-bind",
	} {
		if !strings.Contains(string(res.Report), want) {
			t.Errorf("report lacks %q:\n%s", want, res.Report)
		}
	}
	for _, want := range []string{"failmode: safe", "exempt_primary_bind: true"} {
		if !strings.Contains(string(res.YAML), want) {
			t.Errorf("YAML lacks %q:\n%s", want, res.YAML)
		}
	}
}

// TestBareServiceAccount: an account name the Duo proxy bound with NTLM
// becomes a form a simple bind takes, or the import says what to write.
func TestBareServiceAccount(t *testing.T) {
	res, err := importString(t, minimal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Config.Directories["ad_client"].BindDN; got != "svc@corp.example.com" {
		t.Errorf("implicit UPN: bind_dn %q", got)
	}
	res, err = importString(t, strings.Replace(minimal, "service_account_username=svc\n", "service_account_username=svc\nntlm_domain=CORP\n", 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Config.Directories["ad_client"].BindDN; got != `CORP\svc` {
		t.Errorf("ntlm_domain: bind_dn %q", got)
	}
	_, err = importString(t, strings.Replace(minimal, "search_dn=OU=Staff,DC=corp,DC=example,DC=com", "search_dn=o=corp", 1), Options{})
	if err == nil || !strings.Contains(err.Error(), `[ad_client] service_account_username: "svc" is neither a DN`) {
		t.Errorf("no domain to complete it with: %v", err)
	}
}

// TestSecretModes: environment references by default, files with
// --secrets-dir, inline only with --with-secrets.
func TestSecretModes(t *testing.T) {
	res, err := importString(t, minimal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.YAML), "do-not-print") || strings.Contains(string(res.YAML), "secret_key") || len(res.Files) != 0 {
		t.Errorf("default mode put a secret in the output:\n%s", res.YAML)
	}
	for _, env := range []string{config.EnvName("servers", "ldap_server_auto", "duo_secret_key"), config.EnvName("directories", "ad_client", "bind_password")} {
		if !strings.Contains(string(res.Report), "set "+env+" to it") {
			t.Errorf("report does not name %s", env)
		}
	}

	res, err = importString(t, minimal, Options{Secrets: SecretsFiles, SecretsDir: "/etc/ldapgate/secrets"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 2 || res.Files[0].Path != "/etc/ldapgate/secrets/ad_client.bind_password" || res.Files[0].Value.Reveal() != "ad-password-do-not-print" ||
		res.Files[1].Path != "/etc/ldapgate/secrets/ldap_server_auto.duo_secret_key" || res.Files[1].Value.Reveal() != "duo-secret-do-not-print" {
		t.Errorf("files %+v", res.Files)
	}
	for _, want := range []string{"bind_password_file: /etc/ldapgate/secrets/ad_client.bind_password", "secret_key_file: /etc/ldapgate/secrets/ldap_server_auto.duo_secret_key"} {
		if !strings.Contains(string(res.YAML), want) {
			t.Errorf("YAML lacks %q:\n%s", want, res.YAML)
		}
	}
	if strings.Contains(string(res.YAML)+string(res.Report), "do-not-print") {
		t.Error("--secrets-dir printed a secret")
	}

	res, err = importString(t, minimal, Options{Secrets: SecretsInline})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "secret_key: duo-secret-do-not-print") || strings.Contains(string(res.Report), "do-not-print") {
		t.Errorf("--with-secrets: YAML\n%s\nreport\n%s", res.YAML, res.Report)
	}

	res, err = importString(t, strings.Replace(minimal, "skey=duo-secret-do-not-print", "skey_protected=AQAAANCMnd8BFdERjHoAwE", 1), Options{Secrets: SecretsInline})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Report), "Windows DPAPI") || strings.Contains(string(res.YAML), "AQAAANCMnd8") {
		t.Errorf("skey_protected: report\n%s\nYAML\n%s", res.Report, res.YAML)
	}
}

// TestRefusedValuesNameTheirKey: a value the generated configuration
// refuses is named by its authproxy.cfg key and its ldapgate key.
func TestRefusedValuesNameTheirKey(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"api_timeout beyond ldapgate's bound", "api_host=api-xxxxxxxx.duosecurity.com\n", "api_host=api-xxxxxxxx.duosecurity.com\napi_timeout=600\n",
			"[ldap_server_auto] api_timeout (servers[0].duo.timeout): 10m is out of range; allowed 1s to 2m"},
		{"missing ikey", "ikey=DIXXXXXXXXXXXXXXXXXX\n", "",
			"[ldap_server_auto] ikey (servers[0].duo.integration_key): is required"},
		{"missing search_dn", "service_account_username=svc\nservice_account_password=ad-password-do-not-print\nsearch_dn=OU=Staff,DC=corp,DC=example,DC=com\n",
			"service_account_username=svc@corp.example.com\nservice_account_password=ad-password-do-not-print\n",
			"[ad_client] search_dn (directories.ad_client.base_dn): is required"},
		{"missing skey", "skey=duo-secret-do-not-print\n", "",
			"[ldap_server_auto] skey (servers[0].duo.secret_key): is required"},
		{"bad failmode", "api_host=api-xxxxxxxx.duosecurity.com\n", "api_host=api-xxxxxxxx.duosecurity.com\nfailmode=open\n",
			`[ldap_server_auto] failmode: "open" is not safe or secure`},
		{"bad exempt OU", "api_host=api-xxxxxxxx.duosecurity.com\n", "api_host=api-xxxxxxxx.duosecurity.com\nexempt_ou_1=Service Accounts\n",
			"[ldap_server_auto] exempt_ou_1 (servers[0].exempt_dns[0]): not a valid DN"},
		{"client names nothing", "client=ad_client\n", "client=ad_client9\n", "[ldap_server_auto] client: names no section [ad_client9]"},
		{"client is not an ad_client", "client=ad_client\n", "client=radius_client\n[radius_client]\nhost=x\n",
			"[ldap_server_auto] client: [radius_client] is not an [ad_client] section"},
		{"case-variant section", "[ldap_server_auto]", "[LDAP_Server_Auto]",
			"[LDAP_Server_Auto]: section names are case-sensitive"},
		{"syntax", "[ad_client]\n", "[ad_client]\nhost\n", "line 2: in [ad_client]: not a [section], a key = value or a comment"},
		{"bad transport", "transport=ldaps", "transport=tls", `[ad_client] transport: "tls" is not clear, ldaps or starttls`},
		{"bad port", "transport=ldaps", "transport=ldaps\nport=ldaps", `[ad_client] port: "ldaps" is not a port`},
		{"missing CA file", "transport=ldaps", "transport=ldaps\nssl_ca_certs_file=missing.pem",
			"[ad_client] ssl_ca_certs_file (directories.ad_client.ca_file): open /etc/duoauthproxy/missing.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(minimal, tc.from, tc.to, 1)
			if cfg == minimal {
				t.Fatal("the case changes nothing")
			}
			res, err := importString(t, cfg, Options{})
			var ie *Error
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error with %q", err, tc.want)
			}
			if res.YAML != nil || !strings.Contains(string(res.Report), "error: "+tc.want) {
				t.Errorf("YAML %q; report:\n%s", res.YAML, res.Report)
			}
			if strings.Contains(string(res.Report), "do-not-print") {
				t.Error("the report printed a secret")
			}
		})
	}
}

// TestPasscodeSettings: allow_concat=false disables passcodes; delimiter
// carries over.
func TestPasscodeSettings(t *testing.T) {
	for _, tc := range []struct{ add, want string }{
		{"", ","},
		{"delimiter=:\n", ":"},
		{"allow_concat=false\ndelimiter=:\n", ""},
		{"allow_concat=off\n", ""},
	} {
		res, err := importString(t, minimal+tc.add, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Config.Servers[0].Delimiter(); got != tc.want {
			t.Errorf("%q: delimiter %q, want %q", tc.add, got, tc.want)
		}
	}
}
