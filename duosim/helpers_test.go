package duosim

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/authapi"

	"github.com/ldapgate/ldapgate/internal/testutil"
)

// Keys from duo_api_golang's TestSign, reused so failures are easy to compare.
const (
	testIKey = "DIWJ8X6AEYOR5OMC6TQ1"
	testSKey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
)

func testUsers() []User {
	return []User{
		{Name: "alice", Behavior: BehaviorApprove, Passcodes: []string{"123456"}},
		{Name: "bob", Behavior: BehaviorDeny, Passcodes: []string{"654321"}},
		{Name: "carol", Behavior: BehaviorPasscodeOnly, Passcodes: []string{"111111", "222222"}},
		{Name: "dave", Behavior: BehaviorNotEnrolled},
		{Name: "erin", Behavior: BehaviorBypass},
		{Name: "frank", Behavior: BehaviorLockedOut},
	}
}

// newSim starts a simulator with the test keys and users unless opts says
// otherwise, and closes it when the test ends.
func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	if opts.IntegrationKey == "" {
		opts.IntegrationKey = testIKey
	}
	if opts.SecretKey == "" {
		opts.SecretKey = testSKey
	}
	if opts.Users == nil {
		opts.Users = testUsers()
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim
}

func caPool(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CAPEM: no certificate")
	}
	return pool
}

// newClient is the real Duo client pointed at sim, trusting sim's CA. timeout
// applies to the calls duo_api_golang runs with UseTimeout (everything but a
// synchronous Auth); 0 means none.
func newClient(t *testing.T, sim *Sim, ikey, skey string, timeout time.Duration) *authapi.AuthApi {
	t.Helper()
	return newClientAt(t, sim, sim.APIHost(), ikey, skey, timeout)
}

// newClientAt is newClient with another API host, e.g. "localhost:PORT".
func newClientAt(t *testing.T, sim *Sim, host, ikey, skey string, timeout time.Duration) *authapi.AuthApi {
	t.Helper()
	pool := caPool(t, sim.CAPEM())
	var transport *http.Transport
	api := duoapi.NewDuoApi(ikey, skey, host, "duosim-test",
		duoapi.SetTimeout(timeout),
		duoapi.SetTransport(func(tr *http.Transport) {
			tr.TLSClientConfig.RootCAs = pool
			tr.Proxy = nil
			transport = tr
		}))
	t.Cleanup(transport.CloseIdleConnections)
	return authapi.NewAuthApi(*api)
}

func client(t *testing.T, sim *Sim) *authapi.AuthApi {
	return newClient(t, sim, testIKey, testSKey, 10*time.Second)
}

// plainClient is an http.Client trusting sim's CA, for asserting raw answers.
func plainClient(t *testing.T, sim *Sim, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, sim.CAPEM())}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// signedRequest builds a request signed like duo_api_golang does, with the
// given date and keys.
func signedRequest(t *testing.T, host, method, path string, params url.Values, date time.Time, ikey, skey string) *http.Request {
	t.Helper()
	ds := date.UTC().Format(time.RFC1123Z)
	target := "https://" + host + path
	var body io.Reader
	if method == http.MethodGet {
		if len(params) > 0 {
			target += "?" + params.Encode()
		}
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Date", ds)
	req.SetBasicAuth(ikey, signCanon(skey, canonicalize(method, host, path, ds, params)))
	return req
}

type failBody struct {
	Stat          string `json:"stat"`
	Code          int    `json:"code"`
	Message       string `json:"message"`
	MessageDetail string `json:"message_detail"`
}

// do sends req and returns the status, the Content-Type and the body.
func do(t *testing.T, c *http.Client, req *http.Request) (int, string, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func decodeFail(t *testing.T, body []byte) failBody {
	t.Helper()
	var f failBody
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return f
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, cond, what)
}

func (s *Sim) activeHandlers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

func code(r duoapi.StatResult) int32 {
	if r.Code == nil {
		return 0
	}
	return *r.Code
}
