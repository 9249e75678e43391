package duosim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duosecurity/duo_api_golang/authapi"
)

type controlClient struct {
	t   *testing.T
	url string
}

func (c controlClient) call(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (c controlClient) json(method, path, body string, into any) {
	c.t.Helper()
	status, b := c.call(method, path, body)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if err := json.Unmarshal([]byte(b), into); err != nil {
		c.t.Fatalf("%s %s: %q: %v", method, path, b, err)
	}
}

func TestControlHandlerFaults(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	srv := httptest.NewServer(sim.ControlHandler())
	defer srv.Close()
	ctl := controlClient{t, srv.URL}
	duo := client(t, sim)

	var st faultState
	ctl.json("GET", "/fault", "", &st)
	if st.Fault != FaultNone || st.SlowDelay != DefaultSlowDelay.String() {
		t.Fatalf("initial state %+v", st)
	}

	ctl.json("PUT", "/fault", `{"fault":"unauthorized"}`, &st)
	if st.Fault != FaultUnauthorized || sim.Fault() != FaultUnauthorized {
		t.Fatalf("after PUT: %+v, sim %q", st, sim.Fault())
	}
	if res, err := duo.Check(); err != nil || code(res.StatResult) != CodeInvalidSig {
		t.Fatalf("Check after setting unauthorized over HTTP: %v %+v", err, res)
	}
	ctl.json("GET", "/fault", "", &st)
	if st.Fault != FaultUnauthorized {
		t.Fatalf("GET /fault = %+v", st)
	}

	ctl.json("POST", "/fault", "server_error\n", &st) // plain text
	if sim.Fault() != FaultServerError {
		t.Fatalf("plain-text POST: %q", sim.Fault())
	}
	ctl.json("PUT", "/fault", `{"fault":"slow","slow_delay":"250ms","push_delay":"10ms"}`, &st)
	if st.Fault != FaultSlow || st.SlowDelay != "250ms" || st.PushDelay != "10ms" {
		t.Fatalf("slow with delay: %+v", st)
	}
	for _, f := range []Fault{FaultCheckHang, FaultPreauthError} {
		ctl.json("PUT", "/fault", string(f), &st)
		if st.Fault != f || sim.Fault() != f {
			t.Fatalf("PUT %s: %+v, sim %q", f, st, sim.Fault())
		}
	}
	ctl.json("PUT", "/fault", "none", &st)
	if st.Fault != FaultNone {
		t.Fatalf("none: %+v", st)
	}

	// refuse and back, over HTTP.
	ctl.json("PUT", "/fault", `{"fault":"refuse"}`, &st)
	if _, err := duo.Check(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check after refuse over HTTP: %v", err)
	}
	ctl.json("PUT", "/fault", `{"fault":""}`, &st)
	mustCheckOK(t, duo)

	for _, body := range []string{"bogus", `{"fault":"bogus"}`, `{"fault":"hang","extra":1}`, `{"slow_delay":"soon"}`, `{"fault":`} {
		if status, b := ctl.call("PUT", "/fault", body); status != http.StatusBadRequest {
			t.Errorf("PUT /fault %s: %d %s", body, status, b)
		}
	}
	if status, _ := ctl.call("DELETE", "/fault", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /fault: %d", status)
	}
	if sim.Fault() != FaultNone {
		t.Fatalf("a rejected request changed the fault to %q", sim.Fault())
	}
}

func TestControlHandlerCallsUsersInfo(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	srv := httptest.NewServer(sim.ControlHandler())
	defer srv.Close()
	ctl := controlClient{t, srv.URL}
	duo := client(t, sim)

	mustCheckOK(t, duo)
	if _, err := duo.Preauth(authapi.PreauthUsername("zoe")); err != nil {
		t.Fatal(err)
	}
	var calls Calls
	ctl.json("GET", "/calls", "", &calls)
	if calls != (Calls{Check: 1, Preauth: 1}) {
		t.Fatalf("GET /calls = %+v", calls)
	}
	var reqs []Request
	ctl.json("GET", "/requests", "", &reqs)
	if len(reqs) != 2 || reqs[1].Username != "zoe" {
		t.Fatalf("GET /requests = %+v", reqs)
	}
	ctl.json("POST", "/calls/reset", "", &calls)
	if calls != (Calls{}) || sim.Calls() != (Calls{}) {
		t.Fatalf("after reset: %+v", sim.Calls())
	}

	var users []User
	ctl.json("PUT", "/users", "- name: zoe\n  behavior: bypass\n", &users)
	if len(users) != 1 || users[0].Name != "zoe" {
		t.Fatalf("PUT /users = %+v", users)
	}
	ctl.json("GET", "/users", "", &users)
	if len(users) != 1 || users[0].Behavior != BehaviorBypass {
		t.Fatalf("GET /users = %+v", users)
	}
	if res, err := duo.Preauth(authapi.PreauthUsername("zoe")); err != nil || res.Response.Result != "allow" {
		t.Fatalf("Preauth zoe after PUT /users: %v %+v", err, res)
	}
	ctl.json("PUT", "/users", `[{"name":"zoe","behavior":"locked_out"}]`, &users)
	if res, err := duo.Preauth(authapi.PreauthUsername("zoe")); err != nil || res.Response.Result != "deny" {
		t.Fatalf("Preauth zoe after PUT /users JSON: %v %+v", err, res)
	}
	if status, b := ctl.call("PUT", "/users", "- name: zoe\n  behavior: sometimes\n"); status != http.StatusBadRequest || !strings.Contains(b, "sometimes") {
		t.Fatalf("bad PUT /users: %d %s", status, b)
	}
	if len(sim.Users()) != 1 || sim.Users()[0].Behavior != BehaviorLockedOut {
		t.Fatalf("a rejected PUT changed the users: %+v", sim.Users())
	}

	status, pem := ctl.call("GET", "/ca.pem", "")
	if status != http.StatusOK || pem != string(sim.CAPEM()) {
		t.Fatalf("GET /ca.pem: %d %q", status, pem)
	}
	var info map[string]string
	ctl.json("GET", "/info", "", &info)
	if info["api_host"] != sim.APIHost() || info["integration_key"] != testIKey || strings.Contains(pem+info["api_host"], testSKey) {
		t.Fatalf("GET /info = %v", info)
	}
}
