package config

import (
	"errors"
	"strings"
	"testing"
)

func TestBindNameFormOf(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     BindNameForm
	}{
		{"dn", "CN=svc-ldapgate,OU=Service,DC=corp,DC=example", BindNameDN},
		{"dn with escaped comma", `cn=Svc\, Ldapgate,dc=example,dc=com`, BindNameDN},
		{"dn with at sign in a value", "cn=svc@corp,dc=example", BindNameDN},
		{"dn with escaped backslash", `cn=a\\b,dc=example`, BindNameDN},
		{"upn", "svc@corp.example.com", BindNameUPN},
		{"upn single-label suffix", "svc@corp", BindNameUPN},
		{"down-level", `CORP\svc`, BindNameDownLevel},
		{"down-level with dns domain", `corp.example.com\svc`, BindNameDownLevel},
		{"bare account name", "svc", BindNameInvalid},
		{"empty", "", BindNameInvalid},
		{"leading space", " svc@corp.example.com", BindNameInvalid},
		{"two at signs", "svc@corp@example.com", BindNameInvalid},
		{"upn empty user", "@corp.example.com", BindNameInvalid},
		{"upn empty domain", "svc@", BindNameInvalid},
		{"upn bad domain", "svc@corp example.com", BindNameInvalid},
		{"down-level empty user", `CORP\`, BindNameInvalid},
		{"down-level empty domain", `\svc`, BindNameInvalid},
		{"down-level two backslashes", `CORP\svc\x`, BindNameInvalid},
		{"control character", "svc@corp.example.com\n", BindNameInvalid},
		{"inline comment carried over", "svc@corp.example.com ; service account", BindNameInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BindNameFormOf(tc.in); got != tc.want {
				t.Errorf("BindNameFormOf(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestBindDNAcceptsADForms: the lookup account may be named as Active
// Directory accepts it in a simple bind (and as authproxy.cfg names it);
// anything else is refused at the key.
func TestBindDNAcceptsADForms(t *testing.T) {
	parse := func(bindDN string) error {
		_, err := Parse([]byte(`
directories:
  corp:
    urls: ["ldaps://dc1.corp.example"]
    base_dn: "DC=corp,DC=example"
    bind_dn: '`+bindDN+`'
    bind_password: x
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: s}
`), func(string) (string, bool) { return "", false })
		return err
	}
	for _, ok := range []string{"CN=svc,OU=Service,DC=corp,DC=example", "svc@corp.example.com", `CORP\svc`} {
		if err := parse(ok); err != nil {
			t.Errorf("bind_dn %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"svc", "svc@", `CORP\`} {
		err := parse(bad)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "directories.corp.bind_dn: must be a DN") {
			t.Errorf("bind_dn %q: got %v", bad, err)
		}
	}
}
