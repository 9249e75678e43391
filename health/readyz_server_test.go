package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestReadyzPerServer: /readyz?server=NAME answers for that section alone,
// in the same shape, 200 or 503 by that section's readiness whatever the
// others are; an unknown or empty NAME is 404; without the parameter the
// answer is still every section's.
func TestReadyzPerServer(t *testing.T) {
	down := okSection("wiki")
	down.DirectoryUp, down.DirectoryProblem = false, "refuses the lookup account (bind_dn/bind_password)"
	src := &sections{}
	src.set(okSection("vpn"), down)
	h := New("127.0.0.1:0", "1", time.Now(), src.get, nil, nil).Handler()

	for _, tt := range []struct {
		path  string
		code  int
		names []string
	}{
		{"/readyz?server=vpn", 200, []string{"vpn"}},
		{"/readyz?server=wiki", 503, []string{"wiki"}},
		{"/readyz?server=vpn&server=wiki", 503, []string{"vpn", "wiki"}},
		{"/readyz", 503, []string{"vpn", "wiki"}},
		{"/readyz?server=mail", 404, nil},
		{"/readyz?server=", 404, nil},
		{"/readyz?server=vpn&server=mail", 404, nil},
	} {
		resp, body := get(t, h, "GET", tt.path)
		var rs ReadyStatus
		if err := json.Unmarshal(body, &rs); err != nil {
			t.Fatalf("%s: %v: %s", tt.path, err, body)
		}
		if resp.StatusCode != tt.code || rs.Ready != (tt.code == 200) || len(rs.Sections) != len(tt.names) {
			t.Errorf("%s: %d %s", tt.path, resp.StatusCode, body)
			continue
		}
		for i, name := range tt.names {
			if rs.Sections[i].Name != name {
				t.Errorf("%s: section %d is %q, want %q", tt.path, i, rs.Sections[i].Name, name)
			}
		}
		if tt.code == 404 && rs.Reason == "" {
			t.Errorf("%s: 404 without a reason: %s", tt.path, body)
		}
	}
	if _, body := get(t, h, "GET", "/readyz?server=wiki"); !json.Valid(body) ||
		!strings.Contains(string(body), "lookup account") {
		t.Errorf("/readyz?server=wiki does not say why: %s", body)
	}
}

// TestStatusListsDirectoryURLs: /status carries each URL of a section's
// directory with its state, next to the existing fields.
func TestStatusListsDirectoryURLs(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sec := okSection("vpn")
	sec.DirectoryURLs = []DirectoryURL{
		{URL: "ldap://dc1:389", Up: true, Since: since, Checked: since.Add(time.Minute)},
		{URL: "ldap://dc2:389", Up: false, Since: since, Checked: since.Add(time.Minute), Error: "connection refused"},
		{URL: "ldap://dc3:389", Up: true, Since: since},
	}
	src := &sections{}
	src.set(sec)
	_, body := get(t, New("127.0.0.1:0", "1", time.Now(), src.get, nil, nil).Handler(), "GET", "/status")
	var raw struct {
		Sections []map[string]any `json:"sections"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Sections) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	s := raw.Sections[0]
	if s["directory"] != "corp" || s["directory_up"] != true {
		t.Errorf("existing fields: %v", s)
	}
	urls, _ := s["directory_urls"].([]any)
	if len(urls) != 3 {
		t.Fatalf("directory_urls: %v", s["directory_urls"])
	}
	dc2 := urls[1].(map[string]any)
	if dc2["url"] != "ldap://dc2:389" || dc2["up"] != false || dc2["error"] != "connection refused" ||
		dc2["since"] != "2026-01-02T03:04:05Z" || dc2["checked"] != "2026-01-02T03:05:05Z" {
		t.Errorf("down URL: %v", dc2)
	}
	if _, ok := urls[2].(map[string]any)["checked"]; ok {
		t.Errorf("a URL never checked has a checked time: %v", urls[2])
	}
}
