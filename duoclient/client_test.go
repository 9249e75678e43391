package duoclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// TestSignatureChecker proves the fake's independent checker against the
// vector from duo_api_golang's TestSign, so a passing signature test means
// something.
func TestSignatureChecker(t *testing.T) {
	const (
		ikey = "DIWJ8X6AEYOR5OMC6TQ1"
		skey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
		date = "Tue, 21 Aug 2012 17:29:18 -0000"
		want = "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MWJmZmI4OTI0MzQ4ZjdkYjdkYTllN2Q3ZDc0OWRlZDkzYWFmZDAyZDhlOTA0OTYwZGE3Yjk2YzU3NTEwMjIwMTg1YTY0YTI4MjdlZThmMjRhYzVkMzA4MDJhOWVlOTdlNTlkZTQ0YjMwNGIxODI0MmYwZDU5NmQxNWE4MTIyYWY="
	)
	params := url.Values{"realname": {"First Last"}, "username": {"root"}}
	got := "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":"+signature(skey, date, "POST", "api-XXXXXXXX.duosecurity.com", "/accounts/v1/account/list", params)))
	if got != want {
		t.Fatalf("checker disagrees with Duo's test vector:\n got %s\nwant %s", got, want)
	}
	if verifySignature(want, "not a date", "POST", "api-XXXXXXXX.duosecurity.com", "/accounts/v1/account/list", params, ikey, skey) {
		t.Fatal("a bad Date header must not verify")
	}
}

// TestRequestsAreSigned: every request the client sends carries a valid Duo
// signature for the exact host, path and parameters, and a wrong secret is
// caught by the same check.
func TestRequestsAreSigned(t *testing.T) {
	f := newFakeDuo(t)
	c, _ := newClient(t, f.host())
	if _, err := c.Verify(context.Background(), failmode.Attempt{Username: "alice smith", ClientIP: "192.0.2.1", Passcode: "123 456"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("")
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want preauth, auth, check", len(reqs))
	}
	for _, r := range reqs {
		if !r.SignatureOK {
			t.Errorf("%s %s: bad signature", r.Method, r.Path)
		}
	}

	bad, _ := newClient(t, f.host(), func(c *Config) { c.SecretKey = testSKey + "x" })
	err := bad.Check(context.Background())
	wantFailure(t, err, failmode.Misconfigured, failmode.StageCheck, "duo 40103: Invalid signature in request credentials")
	if last := f.requests("/auth/v2/check"); last[len(last)-1].SignatureOK {
		t.Error("the checker accepted a wrong secret")
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{APIHost: "api-12345678.duosecurity.com", IntegrationKey: testIKey, SecretKey: testSKey,
		Timeout: 10 * time.Second, PushTimeout: time.Minute}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"empty host", func(c *Config) { c.APIHost = "" }, "api host is empty"},
		{"host is a URL", func(c *Config) { c.APIHost = "https://api-1.duosecurity.com" }, "not a URL"},
		{"host with path", func(c *Config) { c.APIHost = "api-1.duosecurity.com/auth" }, "not a URL"},
		{"host with space", func(c *Config) { c.APIHost = "api-1 .duosecurity.com" }, "whitespace"},
		{"empty ikey", func(c *Config) { c.IntegrationKey = "" }, "integration key is empty"},
		{"ikey with newline", func(c *Config) { c.IntegrationKey = testIKey + "\n" }, "integration key"},
		{"empty skey", func(c *Config) { c.SecretKey = "" }, "secret key is empty"},
		{"skey with trailing newline", func(c *Config) { c.SecretKey = testSKey + "\n" }, "secret key contains whitespace"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"negative push timeout", func(c *Config) { c.PushTimeout = -time.Second }, "push timeout"},
		// No defaults here: config holds them, so a zero is a caller bug.
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "timeout 0s is not positive"},
		{"no push timeout", func(c *Config) { c.PushTimeout = 0 }, "push timeout 0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSKey) {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
	_, err := New(Config{})
	if n := strings.Count(err.Error(), "duoclient: invalid config"); n != 5 {
		t.Errorf("want every problem reported at once, got %d in %q", n, err)
	}
}

func TestTimeoutsAndIntegration(t *testing.T) {
	const timeout, push = 7 * time.Second, 45 * time.Second
	c, err := New(Config{APIHost: "api-12345678.duosecurity.com", IntegrationKey: testIKey, SecretKey: testSKey,
		Timeout: timeout, PushTimeout: push})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != timeout || c.pushTimeout != push {
		t.Errorf("timeouts: %s %s", c.timeout, c.pushTimeout)
	}
	if got, want := c.Integration(), "api-12345678.duosecurity.com/"+testIKey; got != want {
		t.Errorf("Integration() = %q, want %q", got, want)
	}
	// RootCAs nil keeps the library's pinned Duo roots, not the system pool.
	if c.tr.TLSClientConfig.RootCAs == nil {
		t.Error("pinned Duo roots were dropped")
	}
	if c.tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("certificate verification is off")
	}
	if c.tr.TLSHandshakeTimeout != timeout || c.tr.ResponseHeaderTimeout != push {
		t.Errorf("transport timeouts: handshake %s, response header %s", c.tr.TLSHandshakeTimeout, c.tr.ResponseHeaderTimeout)
	}
}

// TestSecretNeverPrinted: the secret key cannot reach any printed form of a
// Client or Config, nor any error, whatever the verb.
func TestSecretNeverPrinted(t *testing.T) {
	f := newFakeDuo(t)
	c, _ := newClient(t, f.host())
	cfg := Config{APIHost: f.host(), IntegrationKey: testIKey, SecretKey: testSKey}
	var texts []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		texts = append(texts,
			fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c),
			fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg),
			fmt.Sprintf(verb, []any{c, cfg}), fmt.Sprintf(verb, struct{ C *Client }{c}),
			fmt.Sprintf(verb, struct{ c *Client }{c}), fmt.Sprintf(verb, struct{ c Client }{*c}),
			fmt.Sprintf(verb, struct{ C Config }{cfg}), fmt.Sprintf(verb, struct{ C *Config }{&cfg}))
	}
	texts = append(texts, c.String(), c.GoString(), cfg.String())
	f.set("/auth/v2/preauth", fail(401, 40103, "Invalid signature in request credentials"))
	_, err := c.Verify(context.Background(), failmode.Attempt{Username: "alice", Passcode: "424242"})
	texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
	for _, s := range texts {
		if strings.Contains(s, testSKey) {
			t.Fatalf("secret printed: %s", s)
		}
		if strings.Contains(strings.ToLower(s), strings.ToLower(fmt.Sprintf("%x", testSKey))) {
			t.Fatalf("secret printed in hex: %s", s)
		}
	}
	if !strings.Contains(c.String(), c.Integration()) {
		t.Errorf("String() %q should name the integration", c.String())
	}
	if !strings.Contains(cfg.String(), "[redacted]") {
		t.Errorf("Config.String() %q should show the secret is set", cfg.String())
	}
}
