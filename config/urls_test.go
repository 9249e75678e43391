package config

import (
	"strings"
	"testing"
)

// TestDirectoryURLUserinfoRefused: a directory URL carrying a user and
// password is refused by its key path, and the password is not echoed.
func TestDirectoryURLUserinfoRefused(t *testing.T) {
	body := `
directories:
  corp:
    urls: ["ldap://127.0.0.1:389", "ldap://cn=admin:hunter2@127.0.0.1:390"]
    base_dn: "dc=example,dc=com"
servers:
  - name: vpn
    listen: "127.0.0.1:1389"
    directory: corp
    duo: {api_host: api-x.duosecurity.com, integration_key: DIXXXXXXXXXXXXXXXXXX, secret_key: k}
`
	_, err := Parse([]byte(body), noEnv)
	if err == nil || !strings.Contains(err.Error(), "directories.corp.urls[1]: must not carry a user or password") {
		t.Fatalf("userinfo in a directory URL: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "urls[0]") {
		t.Fatalf("error echoes the password or blames the good URL: %v", err)
	}
}
