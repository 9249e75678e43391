package duosim

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

func TestPingAndCheck(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	before := time.Now().Unix()

	ping, err := c.Ping()
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if ping.Stat != "OK" || ping.Response.Time < before-1 {
		t.Fatalf("Ping: %+v", ping)
	}
	check, err := c.Check()
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if check.Stat != "OK" || check.Response.Time < before-1 {
		t.Fatalf("Check: stat %s code %d time %d", check.Stat, code(check.StatResult), check.Response.Time)
	}
	if got := sim.Calls(); got != (Calls{Ping: 1, Check: 1}) {
		t.Fatalf("Calls = %+v", got)
	}
	reqs := sim.Requests()
	if len(reqs) != 2 || reqs[0].Path != pathPing || reqs[0].SignatureOK || reqs[1].Path != pathCheck || !reqs[1].SignatureOK {
		t.Fatalf("Requests = %+v", reqs)
	}
}

func TestAPIHostAndGeneratedKeys(t *testing.T) {
	t.Parallel()
	sim, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	host, _, err := net.SplitHostPort(sim.APIHost())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("APIHost = %q", sim.APIHost())
	}
	if !strings.HasPrefix(sim.IntegrationKey(), "DI") || len(sim.IntegrationKey()) != 20 || len(sim.SecretKey()) != 40 {
		t.Fatalf("generated keys %q %q", sim.IntegrationKey(), sim.SecretKey())
	}
	c := newClient(t, sim, sim.IntegrationKey(), sim.SecretKey(), 10*time.Second)
	if res, err := c.Check(); err != nil || res.Stat != "OK" {
		t.Fatalf("Check with generated keys: %v %+v", err, res)
	}
}

func TestHostnamesAndLocalhost(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{Hostnames: []string{"duo.example.test", "10.1.2.3"}})
	leaf := sim.good.leaf.Leaf
	for _, name := range []string{"localhost", "duo.example.test"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("leaf: %v", err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Errorf("leaf: %v", err)
		}
	}
	// The signature covers the Host as sent: "localhost:PORT" works too.
	_, port, _ := net.SplitHostPort(sim.APIHost())
	c := newClientAt(t, sim, "LocalHost:"+port, testIKey, testSKey, 10*time.Second)
	if res, err := c.Check(); err != nil || res.Stat != "OK" {
		t.Fatalf("Check via LocalHost: %v %+v", err, res)
	}
}

func TestPreauthBehaviors(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	tests := []struct {
		user, result, msg string
		push              bool // a device with the push capability
		devices           int
	}{
		{"alice", "auth", msgActive, true, 1},
		{"ALICE", "auth", msgActive, true, 1}, // names are case-insensitive
		{"bob", "auth", msgActive, true, 1},
		{"carol", "auth", msgActive, false, 1},
		{"dave", "enroll", msgEnroll, false, 0},
		{"erin", "allow", msgBypass, false, 0},
		{"frank", "deny", msgLockedOut, false, 0},
		{"nobody", "enroll", msgEnroll, false, 0},
	}
	for _, tc := range tests {
		res, err := c.Preauth(authapi.PreauthUsername(tc.user), authapi.PreauthIpAddr("192.0.2.7"))
		if err != nil {
			t.Fatalf("%s: Preauth: %v", tc.user, err)
		}
		r := res.Response
		if res.Stat != "OK" || r.Result != tc.result || r.Status_Msg != tc.msg || len(r.Devices) != tc.devices {
			t.Errorf("%s: got stat %s code %d %+v", tc.user, res.Stat, code(res.StatResult), r)
			continue
		}
		push := len(r.Devices) > 0 && slices.Contains(r.Devices[0].Capabilities, "push")
		if push != tc.push {
			t.Errorf("%s: push capability %v, want %v (%+v)", tc.user, push, tc.push, r.Devices)
		}
		if tc.result == "enroll" && !strings.HasPrefix(r.Enroll_Portal_Url, "https://"+sim.APIHost()+"/") {
			t.Errorf("%s: enroll_portal_url %q", tc.user, r.Enroll_Portal_Url)
		}
		if tc.devices > 0 && (len(r.Devices[0].Device) != 20 || r.Devices[0].Type == "") {
			t.Errorf("%s: device %+v", tc.user, r.Devices[0])
		}
	}
	if got := sim.Calls(); got.Preauth != len(tests) || got.BadSignature != 0 {
		t.Fatalf("Calls = %+v", got)
	}
	if r := sim.Requests()[0]; r.Username != "alice" || r.IPAddr != "192.0.2.7" || r.Method != http.MethodPost {
		t.Fatalf("Requests()[0] = %+v", r)
	}
}

func TestPreauthByUserIDAndMissingUser(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	res, err := c.Preauth(authapi.PreauthUserId(userID("bob")))
	if err != nil || res.Response.Result != "auth" {
		t.Fatalf("Preauth by user_id: %v %+v", err, res)
	}
	res, err = c.Preauth()
	if err != nil {
		t.Fatal(err)
	}
	if res.Stat != "FAIL" || code(res.StatResult) != CodeMissingParams {
		t.Fatalf("Preauth without user: %+v code %d", res, code(res.StatResult))
	}
}

// Unicode, spaces, "+", "~" and "*" in parameters must sign the same on
// both sides (the POST body is chunked by the Go client).
func TestSignatureWithSpecialCharacters(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	for _, name := range []string{"José O'Brien+test@example.com", "a b~c*d/e?f=g&h", "用户", "%41"} {
		res, err := c.Preauth(authapi.PreauthUsername(name), authapi.PreauthIpAddr("2001:db8::1"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Stat != "OK" || res.Response.Result != "enroll" {
			t.Fatalf("%q: stat %s code %d message %v", name, res.Stat, code(res.StatResult), res.Message_Detail)
		}
	}
	if got := sim.Calls().BadSignature; got != 0 {
		t.Fatalf("BadSignature = %d", got)
	}
}

func TestAuthFactors(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	tests := []struct {
		user, factor, passcode string
		result, status, msg    string
	}{
		{"alice", "push", "", "allow", "allow", msgSuccess},
		{"alice", "auto", "", "allow", "allow", msgSuccess},
		{"alice", "phone", "", "allow", "allow", msgSuccess},
		{"bob", "push", "", "deny", "deny", msgPushDenied},
		{"bob", "auto", "", "deny", "deny", msgPushDenied},
		{"carol", "push", "", "deny", "deny", msgNoPushDevice},
		{"carol", "auto", "", "deny", "deny", msgNoPushDevice},
		{"carol", "phone", "", "deny", "deny", msgNoPushDevice},
		{"alice", "passcode", "123456", "allow", "allow", msgSuccess},
		{"alice", "passcode", "123456", "allow", "allow", msgSuccess}, // reusable
		{"alice", "passcode", "000000", "deny", "deny", msgBadPasscode},
		{"alice", "passcode", "654321", "deny", "deny", msgBadPasscode}, // bob's
		{"bob", "passcode", "654321", "allow", "allow", msgSuccess},
		{"carol", "passcode", "222222", "allow", "allow", msgSuccess},
		{"carol", "passcode", "11111", "deny", "deny", msgBadPasscode},
		{"alice", "sms", "", "deny", "sent", msgSMSSent},
		{"dave", "push", "", "deny", "deny", msgEnroll},
		{"nobody", "passcode", "123456", "deny", "deny", msgEnroll},
		{"erin", "push", "", "allow", "bypass", msgBypass},
		{"frank", "passcode", "123456", "deny", "locked_out", msgLockedOut},
	}
	for _, tc := range tests {
		opts := []func(*url.Values){authapi.AuthUsername(tc.user), authapi.AuthDevice("auto"), authapi.AuthIpAddr("192.0.2.9")}
		if tc.passcode != "" {
			opts = append(opts, authapi.AuthPasscode(tc.passcode))
		}
		res, err := c.Auth(tc.factor, opts...)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.user, tc.factor, err)
		}
		r := res.Response
		if res.Stat != "OK" || r.Result != tc.result || r.Status != tc.status || r.Status_Msg != tc.msg {
			t.Errorf("%s %s %q: got stat %s code %d %+v", tc.user, tc.factor, tc.passcode, res.Stat, code(res.StatResult), r)
		}
	}
	// Requests record the factor but never a passcode.
	all, _ := json.Marshal(sim.Requests())
	for _, p := range []string{"123456", "654321", "222222", "000000"} {
		if strings.Contains(string(all), p) {
			t.Fatalf("Requests() contains passcode %s: %s", p, all)
		}
	}
	if r := sim.Requests()[0]; r.Factor != "push" || r.Username != "alice" || r.IPAddr != "192.0.2.9" {
		t.Fatalf("Requests()[0] = %+v", r)
	}
}

func TestAuthInvalidParams(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	tests := []struct {
		factor string
		opts   []func(*url.Values)
		code   int32
	}{
		{"push", nil, CodeMissingParams},
		{"passcode", []func(*url.Values){authapi.AuthUsername("alice")}, CodeMissingParams},
		{"yubikey", []func(*url.Values){authapi.AuthUsername("alice")}, CodeInvalidParams},
		{"push", []func(*url.Values){authapi.AuthUsername("alice"), authapi.AuthDevice("DPNOTHERDEVICE00000")}, CodeInvalidParams},
	}
	for _, tc := range tests {
		res, err := c.Auth(tc.factor, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stat != "FAIL" || code(res.StatResult) != tc.code {
			t.Errorf("%s: stat %s code %d, want FAIL %d", tc.factor, res.Stat, code(res.StatResult), tc.code)
		}
	}
	// The device preauth returned is accepted.
	pre, _ := c.Preauth(authapi.PreauthUsername("alice"))
	res, err := c.Auth("push", authapi.AuthUsername("alice"), authapi.AuthDevice(pre.Response.Devices[0].Device))
	if err != nil || res.Response.Result != "allow" {
		t.Fatalf("push to preauth's device: %v %+v", err, res)
	}
}

func TestAuthAsync(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)

	start := func(user, factor string, extra ...func(*url.Values)) string {
		t.Helper()
		opts := append([]func(*url.Values){authapi.AuthUsername(user), authapi.AuthAsync()}, extra...)
		res, err := c.Auth(factor, opts...)
		if err != nil || res.Stat != "OK" || res.Response.Txid == "" {
			t.Fatalf("async %s %s: %v %+v", user, factor, err, res)
		}
		return res.Response.Txid
	}
	status := func(txid string) *authapi.AuthStatusResult {
		t.Helper()
		res, err := c.AuthStatus(txid)
		if err != nil || res.Stat != "OK" {
			t.Fatalf("AuthStatus: %v %+v", err, res)
		}
		return res
	}

	if r := status(start("alice", "push")).Response; r.Result != "allow" || r.Status_Msg != msgSuccess {
		t.Fatalf("alice push: %+v", r)
	}
	if r := status(start("bob", "push")).Response; r.Result != "deny" || r.Status != "deny" {
		t.Fatalf("bob push: %+v", r)
	}
	if r := status(start("alice", "passcode", authapi.AuthPasscode("123456"))).Response; r.Result != "allow" {
		t.Fatalf("alice passcode: %+v", r)
	}

	// A push that takes forever stays "waiting"; a short one resolves.
	sim.SetPushDelay(time.Hour)
	if r := status(start("alice", "push")).Response; r.Result != "waiting" || r.Status != "pushed" {
		t.Fatalf("long push: %+v", r)
	}
	sim.SetPushDelay(50 * time.Millisecond)
	txid := start("alice", "push")
	waitFor(t, "the async push to be answered", func() bool {
		r := status(txid).Response
		if r.Result != "waiting" && r.Result != "allow" {
			t.Fatalf("unexpected status %+v", r)
		}
		return r.Result == "allow"
	})

	res, err := c.AuthStatus("no-such-txid")
	if err != nil || res.Stat != "FAIL" || code(res.StatResult) != CodeInvalidParams {
		t.Fatalf("unknown txid: %v %+v", err, res)
	}
	if got := sim.Calls(); got.Auth != 5 || got.AuthStatus < 6 {
		t.Fatalf("Calls = %+v", got)
	}
}

func TestPushDelay(t *testing.T) {
	t.Parallel()
	const delay = 150 * time.Millisecond
	sim := newSim(t, Options{PushDelay: delay})
	c := client(t, sim)
	for _, user := range []string{"alice", "bob"} {
		start := time.Now()
		res, err := c.Auth("push", authapi.AuthUsername(user))
		if err != nil || res.Stat != "OK" {
			t.Fatalf("%s: %v %+v", user, err, res)
		}
		if el := time.Since(start); el < delay {
			t.Fatalf("%s: answered after %v, before the %v push delay", user, el, delay)
		}
	}
	if res, err := c.Auth("passcode", authapi.AuthUsername("alice"), authapi.AuthPasscode("123456")); err != nil || res.Response.Result != "allow" {
		t.Fatalf("passcode: %v %+v", err, res)
	}
}

// A client that gives up on a long push frees the server side.
func TestPushDelayClientGoesAway(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{PushDelay: time.Hour})
	c := client(t, sim)
	c.SetCustomHTTPClient(plainClient(t, sim, 200*time.Millisecond))
	_, err := c.Auth("push", authapi.AuthUsername("alice"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Auth: got %v, want a client timeout", err)
	}
	waitFor(t, "the push wait to stop", func() bool { return sim.activeHandlers() == 0 })
}

func TestBadSignatureCounted(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})

	res, err := newClient(t, sim, testIKey, "wrong-secret", 10*time.Second).Check()
	if err != nil {
		t.Fatal(err)
	}
	if res.Stat != "FAIL" || code(res.StatResult) != CodeInvalidSig || *res.Message != msgInvalidSignature {
		t.Fatalf("wrong skey: %+v code %d", res, code(res.StatResult))
	}
	pre, err := newClient(t, sim, "DIAAAAAAAAAAAAAAAAAA", testSKey, 10*time.Second).Preauth(authapi.PreauthUsername("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if pre.Stat != "FAIL" || code(pre.StatResult) != CodeInvalidIKey {
		t.Fatalf("wrong ikey: %+v code %d", pre, code(pre.StatResult))
	}
	if got := sim.Calls(); got != (Calls{Check: 1, Preauth: 1, BadSignature: 2}) {
		t.Fatalf("Calls = %+v", got)
	}
	for _, r := range sim.Requests() {
		if r.SignatureOK {
			t.Fatalf("request recorded as signed correctly: %+v", r)
		}
	}
	sim.ResetCalls()
	if got := sim.Calls(); got != (Calls{}) || len(sim.Requests()) != 0 {
		t.Fatalf("after ResetCalls: %+v %v", got, sim.Requests())
	}
}

func TestRawRequests(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	hc := plainClient(t, sim, 10*time.Second)
	host := sim.APIHost()
	now := time.Now()

	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   int
	}{
		{"skewed date", signedRequest(t, host, http.MethodGet, pathCheck, nil, now.Add(-10*time.Minute), testIKey, testSKey), 401, CodeInvalidDate},
		{"no Authorization", func() *http.Request {
			r := signedRequest(t, host, http.MethodGet, pathCheck, nil, now, testIKey, testSKey)
			r.Header.Del("Authorization")
			return r
		}(), 401, CodeInvalidIKey},
		{"signed for another host", signedRequest(t, "api-xxxx.duosecurity.com", http.MethodGet, pathCheck, nil, now, testIKey, testSKey), 401, CodeInvalidSig},
		{"unknown path", signedRequest(t, host, http.MethodGet, "/auth/v2/logo", nil, now, testIKey, testSKey), 404, CodeNotFound},
		{"wrong method", signedRequest(t, host, http.MethodGet, pathPreauth, nil, now, testIKey, testSKey), 405, CodeMethodNotAllow},
	}
	for _, tc := range tests {
		req := tc.req
		if tc.name == "signed for another host" {
			req.URL.Host = host
			req.Host = host
			// keep the signature made for the other host
		}
		status, ctype, body := do(t, hc, req)
		f := decodeFail(t, body)
		if status != tc.status || f.Stat != "FAIL" || f.Code != tc.code || ctype != "application/json" {
			t.Errorf("%s: %d %s %+v, want %d FAIL %d", tc.name, status, ctype, f, tc.status, tc.code)
		}
	}
}
