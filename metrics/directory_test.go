package metrics_test

import (
	"strings"
	"testing"

	"github.com/ldapgate/ldapgate/metrics"
)

// TestDirectoryURLUp: one series per directory URL, set and reset, and a
// URL's user or password never reaches a label.
func TestDirectoryURLUp(t *testing.T) {
	m := metrics.New("test")
	m.SetDirectoryURLUp("corp", "ldap://dc1.example.com:389", true)
	m.SetDirectoryURLUp("corp", "ldaps://dc2.example.com", true)
	m.SetDirectoryURLUp("corp", "ldaps://dc2.example.com", false)
	m.SetDirectoryURLUp("corp", "ldap://cn=admin:hunter2@dc3.example.com/?x", false)
	m.SetDirectoryURLUp("corp", "%zz", false)
	wantValues(t, scrape(t, m), "ldapgate_directory_url_up", map[string]float64{
		"directory=corp,url=ldap://dc1.example.com:389": 1,
		"directory=corp,url=ldaps://dc2.example.com":    0,
		"directory=corp,url=ldap://dc3.example.com":     0,
		"directory=corp,url=invalid":                    0,
	})
	for name, f := range scrape(t, m) {
		if strings.Contains(f.String(), "hunter2") {
			t.Fatalf("%s carries the URL's password", name)
		}
	}
}
