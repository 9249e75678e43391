package duosim

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duosecurity/duo_api_golang/authapi"
)

func mustCheckOK(t *testing.T, c *authapi.AuthApi) {
	t.Helper()
	res, err := c.Check()
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if res.Stat != "OK" {
		t.Fatalf("Check: stat %s code %d", res.Stat, code(res.StatResult))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSetFaultValidates(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault("bogus"); err == nil || !strings.Contains(err.Error(), "rate_limit") {
		t.Fatalf("SetFault(bogus) = %v, want an error listing the faults", err)
	}
	if err := sim.SetFault("none"); err == nil {
		t.Fatal(`SetFault("none") accepted; only ParseFault knows that alias`)
	}
	for _, s := range []string{"", "none", "clear", " hang "} {
		if _, err := ParseFault(s); err != nil {
			t.Errorf("ParseFault(%q): %v", s, err)
		}
	}
	for _, f := range faults {
		if err := sim.SetFault(f); err != nil {
			t.Fatalf("SetFault(%q): %v", f, err)
		}
		if got := sim.Fault(); got != f {
			t.Fatalf("Fault() = %q after SetFault(%q)", got, f)
		}
	}
	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	mustCheckOK(t, client(t, sim))
}

func TestFaultRefuse(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	host := sim.APIHost()
	mustCheckOK(t, c) // leaves a keep-alive connection, which refuse must drop

	if err := sim.SetFault(FaultRefuse); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check()
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Check under refuse: %v, want connection refused", err)
	}
	if _, err := c.Ping(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Ping under refuse: %v", err)
	}
	if got := sim.Calls(); got != (Calls{Check: 1}) {
		t.Fatalf("refused requests were counted: %+v", got)
	}

	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	if sim.APIHost() != host {
		t.Fatalf("APIHost changed from %s to %s", host, sim.APIHost())
	}
	mustCheckOK(t, c)
}

func TestFaultHang(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultHang); err != nil {
		t.Fatal(err)
	}

	// A client with a short timeout gives up; the server side lets go.
	short := newClient(t, sim, testIKey, testSKey, 300*time.Millisecond)
	if _, err := short.Check(); !isTimeout(err) {
		t.Fatalf("Check under hang: %v, want a timeout", err)
	}
	if got := sim.Calls().Check; got != 1 {
		t.Fatalf("the hanging request was not read: Calls().Check = %d", got)
	}
	waitFor(t, "the abandoned request to be let go", func() bool { return sim.Held() == 0 && sim.activeHandlers() == 0 })

	// Ping hangs too: the whole service is stuck.
	if _, err := short.Ping(); !isTimeout(err) {
		t.Fatalf("Ping under hang: %v, want a timeout", err)
	}
	waitFor(t, "the abandoned ping to be let go", func() bool { return sim.Held() == 0 })

	// Clearing the fault answers held requests with a 503 FAIL.
	patient := client(t, sim)
	done := make(chan *authapi.PreauthResult, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := patient.Preauth(authapi.PreauthUsername("alice"))
		errc <- err
		done <- res
	}()
	waitFor(t, "the preauth to be held", func() bool { return sim.Held() == 1 })
	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("released Preauth: %v", err)
	}
	if res := <-done; res.Stat != "FAIL" || code(res.StatResult) != CodeUnavailable {
		t.Fatalf("released Preauth: %+v code %d", res, code(res.StatResult))
	}
	mustCheckOK(t, patient)
}

// Close releases held requests and leaves no goroutine behind. Not parallel:
// it counts goroutines.
func TestCloseReleasesHeldRequestsNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	sim, err := New(Options{IntegrationKey: testIKey, SecretKey: testSKey, Users: testUsers(), PushDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, sim)
	mustCheckOK(t, c)
	if err := sim.SetFault(FaultAuthHang); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	call := func(f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- f() }()
	}
	call(func() error { _, err := c.Auth("push", authapi.AuthUsername("alice")); return err })
	call(func() error { _, err := c.Auth("push", authapi.AuthUsername("bob")); return err })
	waitFor(t, "two auths to be held", func() bool { return sim.Held() == 2 })
	if err := sim.SetFault(FaultHang); err != nil { // releases both with a 503
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("auth released by a fault change: %v", err)
		}
	}
	call(func() error { _, err := c.Preauth(authapi.PreauthUsername("alice")); return err })
	waitFor(t, "the preauth to be held", func() bool { return sim.Held() == 1 })

	closed := make(chan error, 1)
	go func() { closed <- sim.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a request was held")
	}
	if err := <-errs; err == nil {
		t.Fatal("held preauth succeeded after Close")
	}
	wg.Wait()
	if err := sim.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sim.SetFault(FaultNone); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetFault after Close: %v", err)
	}
	if _, err := c.Ping(); err == nil {
		t.Fatal("Ping after Close succeeded")
	}

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaultServerError(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultServerError); err != nil {
		t.Fatal(err)
	}
	_, err := client(t, sim).Check()
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Fatalf("Check under server_error: %v, want a JSON syntax error", err)
	}
	status, ctype, body := do(t, plainClient(t, sim, 10*time.Second),
		signedRequest(t, sim.APIHost(), http.MethodPost, pathPreauth, url.Values{"username": {"alice"}}, time.Now(), testIKey, testSKey))
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(ctype, "text/html") || !bytes.HasPrefix(body, []byte("<html>")) {
		t.Fatalf("got %d %s %q", status, ctype, body)
	}
}

func TestFaultUnauthorized(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	if err := sim.SetFault(FaultUnauthorized); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check()
	if err != nil {
		t.Fatal(err)
	}
	if res.Stat != "FAIL" || code(res.StatResult) != CodeInvalidSig {
		t.Fatalf("Check under unauthorized: %+v code %d", res, code(res.StatResult))
	}
	pre, err := c.Preauth(authapi.PreauthUsername("alice"))
	if err != nil || pre.Stat != "FAIL" || code(pre.StatResult) != CodeInvalidSig {
		t.Fatalf("Preauth under unauthorized: %v %+v", err, pre)
	}
	// Ping is unsigned and proves nothing about keys: it still answers.
	ping, err := c.Ping()
	if err != nil || ping.Stat != "OK" {
		t.Fatalf("Ping under unauthorized: %v %+v", err, ping)
	}
	// The signatures were good: not counted as bad.
	if got := sim.Calls(); got.BadSignature != 0 || got.Check != 1 || got.Preauth != 1 {
		t.Fatalf("Calls = %+v", got)
	}
}

func TestFaultBadCert(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	c := client(t, sim)
	mustCheckOK(t, c) // a pooled connection must not hide the new certificate

	if err := sim.SetFault(FaultBadCert); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check()
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Check under bad_cert: %v, want x509 unknown authority", err)
	}
	if !strings.Contains(unknown.Cert.Subject.CommonName, "UNTRUSTED") {
		t.Fatalf("presented %q", unknown.Cert.Subject.CommonName)
	}
	if sim.Calls().Check != 1 {
		t.Fatalf("a request got through the bad handshake: %+v", sim.Calls())
	}
	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	mustCheckOK(t, c)
}

// The real client retries 429 with sleeps of a second and more, so the
// status is asserted with a plain client.
func TestFaultRateLimit(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultRateLimit); err != nil {
		t.Fatal(err)
	}
	hc := plainClient(t, sim, 10*time.Second)
	for _, req := range []*http.Request{
		signedRequest(t, sim.APIHost(), http.MethodGet, pathCheck, nil, time.Now(), testIKey, testSKey),
		signedRequest(t, sim.APIHost(), http.MethodPost, pathAuth, url.Values{"username": {"alice"}, "factor": {"push"}}, time.Now(), testIKey, testSKey),
	} {
		status, _, body := do(t, hc, req)
		if f := decodeFail(t, body); status != http.StatusTooManyRequests || f.Stat != "FAIL" || f.Code != CodeRateLimited {
			t.Fatalf("%s: %d %+v", req.URL.Path, status, f)
		}
	}
}

func TestFaultAuthHang(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultAuthHang); err != nil {
		t.Fatal(err)
	}
	c := client(t, sim)
	pre, err := c.Preauth(authapi.PreauthUsername("alice"))
	if err != nil || pre.Response.Result != "auth" {
		t.Fatalf("Preauth under auth_hang: %v %+v", err, pre)
	}
	mustCheckOK(t, c)

	// A proxy with a 300 ms auth timeout gives up.
	impatient := client(t, sim)
	impatient.SetCustomHTTPClient(plainClient(t, sim, 300*time.Millisecond))
	if _, err := impatient.Auth("push", authapi.AuthUsername("alice")); !isTimeout(err) {
		t.Fatalf("Auth under auth_hang: %v, want a timeout", err)
	}
	// Passcodes and async auths hang too.
	if _, err := impatient.Auth("passcode", authapi.AuthUsername("alice"), authapi.AuthPasscode("123456"), authapi.AuthAsync()); !isTimeout(err) {
		t.Fatalf("async Auth under auth_hang: %v, want a timeout", err)
	}
	waitFor(t, "the abandoned auths to be let go", func() bool { return sim.Held() == 0 })

	// A client without a timeout waits until the fault is cleared.
	type result struct {
		res *authapi.AuthResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.Auth("push", authapi.AuthUsername("alice"))
		done <- result{res, err}
	}()
	waitFor(t, "the auth to be held", func() bool { return sim.Held() == 1 })
	mustCheckOK(t, c) // other endpoints still answer meanwhile
	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.res.Stat != "FAIL" || code(r.res.StatResult) != CodeUnavailable {
		t.Fatalf("released Auth: %v %+v", r.err, r.res)
	}
	if res, err := c.Auth("push", authapi.AuthUsername("alice")); err != nil || res.Response.Result != "allow" {
		t.Fatalf("Auth after clearing: %v %+v", err, res)
	}
}

func TestFaultAuthError(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultAuthError); err != nil {
		t.Fatal(err)
	}
	c := client(t, sim)
	pre, err := c.Preauth(authapi.PreauthUsername("alice"))
	if err != nil || pre.Response.Result != "auth" {
		t.Fatalf("Preauth under auth_error: %v %+v", err, pre)
	}
	_, err = c.Auth("push", authapi.AuthUsername("alice"))
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Fatalf("Auth under auth_error: %v, want a JSON syntax error from the 503 page", err)
	}
	status, _, _ := do(t, plainClient(t, sim, 10*time.Second),
		signedRequest(t, sim.APIHost(), http.MethodPost, pathAuth, url.Values{"username": {"alice"}, "factor": {"push"}}, time.Now(), testIKey, testSKey))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", status)
	}
}

func TestFaultSlow(t *testing.T) {
	t.Parallel()
	const delay = 200 * time.Millisecond
	sim := newSim(t, Options{SlowDelay: delay})
	c := client(t, sim)
	if err := sim.SetFault(FaultSlow); err != nil {
		t.Fatal(err)
	}
	// Every endpoint is slow, the signed check included: a probe sees the
	// same latency as logins.
	timed := func(what string, want time.Duration, call func() error) {
		t.Helper()
		start := time.Now()
		if err := call(); err != nil {
			t.Fatalf("%s under slow: %v", what, err)
		}
		if el := time.Since(start); el < want {
			t.Fatalf("%s answered after %v under slow (%v)", what, el, want)
		}
	}
	timed("Check", delay, func() error { mustCheckOK(t, c); return nil })
	timed("Preauth", delay, func() error {
		res, err := c.Preauth(authapi.PreauthUsername("alice"))
		if err == nil && res.Response.Result != "auth" {
			err = errors.New("result " + res.Response.Result)
		}
		return err
	})
	timed("Auth", delay, func() error {
		res, err := c.Auth("push", authapi.AuthUsername("alice"))
		if err == nil && res.Response.Result != "allow" {
			err = errors.New("result " + res.Response.Result)
		}
		return err
	})
	sim.SetSlow(2 * delay)
	timed("Ping", 2*delay, func() error {
		ping, err := c.Ping()
		if err == nil && ping.Stat != "OK" {
			err = errors.New("stat " + ping.Stat)
		}
		return err
	})
	// A client that cannot wait that long times out.
	if _, err := newClient(t, sim, testIKey, testSKey, delay/4).Check(); !isTimeout(err) {
		t.Fatalf("short client under slow: %v", err)
	}
	waitFor(t, "the slow handler to stop", func() bool { return sim.activeHandlers() == 0 })
}

func TestFaultCheckHang(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultCheckHang); err != nil {
		t.Fatal(err)
	}
	// Logins work...
	c := client(t, sim)
	if pre, err := c.Preauth(authapi.PreauthUsername("alice")); err != nil || pre.Response.Result != "auth" {
		t.Fatalf("Preauth under check_hang: %v %+v", err, pre)
	}
	if res, err := c.Auth("push", authapi.AuthUsername("alice")); err != nil || res.Response.Result != "allow" {
		t.Fatalf("Auth under check_hang: %v %+v", err, res)
	}
	if ping, err := c.Ping(); err != nil || ping.Stat != "OK" {
		t.Fatalf("Ping under check_hang: %v", err)
	}
	// ...while the signed check never answers.
	short := newClient(t, sim, testIKey, testSKey, 300*time.Millisecond)
	if _, err := short.Check(); !isTimeout(err) {
		t.Fatalf("Check under check_hang: %v, want a timeout", err)
	}
	waitFor(t, "the abandoned check to be let go", func() bool { return sim.Held() == 0 })

	// Changing the fault answers a held check with a 503 FAIL.
	done := make(chan *authapi.CheckResult, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := c.Check()
		errc <- err
		done <- res
	}()
	waitFor(t, "the check to be held", func() bool { return sim.Held() == 1 })
	if err := sim.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("released Check: %v", err)
	}
	if res := <-done; res.Stat != "FAIL" || code(res.StatResult) != CodeUnavailable {
		t.Fatalf("released Check: %+v", res)
	}
	mustCheckOK(t, c)
}

func TestFaultPreauthError(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{})
	if err := sim.SetFault(FaultPreauthError); err != nil {
		t.Fatal(err)
	}
	c := client(t, sim)
	// The probe says all is well...
	mustCheckOK(t, c)
	if ping, err := c.Ping(); err != nil || ping.Stat != "OK" {
		t.Fatalf("Ping under preauth_error: %v", err)
	}
	// ...while preauth answers a load balancer's 503 page.
	_, err := c.Preauth(authapi.PreauthUsername("alice"))
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Fatalf("Preauth under preauth_error: %v, want a JSON syntax error from the 503 page", err)
	}
	status, ctype, body := do(t, plainClient(t, sim, 10*time.Second),
		signedRequest(t, sim.APIHost(), http.MethodPost, pathPreauth, url.Values{"username": {"alice"}}, time.Now(), testIKey, testSKey))
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(ctype, "text/html") || !bytes.HasPrefix(body, []byte("<html>")) {
		t.Fatalf("got %d %s %q", status, ctype, body)
	}
	// auth itself still answers (a client that skips preauth gets through).
	if res, err := c.Auth("push", authapi.AuthUsername("alice")); err != nil || res.Response.Result != "allow" {
		t.Fatalf("Auth under preauth_error: %v %+v", err, res)
	}
	if got := sim.Calls(); got.Preauth != 2 || got.Check != 1 {
		t.Fatalf("calls %+v", got)
	}
}

// Faults flip while requests are in flight; run with -race.
func TestFaultsFlipUnderLoad(t *testing.T) {
	t.Parallel()
	sim := newSim(t, Options{SlowDelay: 20 * time.Millisecond, PushDelay: 10 * time.Millisecond})
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			hc := plainClient(t, sim, 500*time.Millisecond)
			for i := range 25 {
				var req *http.Request
				switch (w + i) % 3 {
				case 0:
					req = signedRequest(t, sim.APIHost(), http.MethodGet, pathCheck, nil, time.Now(), testIKey, testSKey)
				case 1:
					req = signedRequest(t, sim.APIHost(), http.MethodPost, pathPreauth, url.Values{"username": {"alice"}}, time.Now(), testIKey, testSKey)
				default:
					req = signedRequest(t, sim.APIHost(), http.MethodPost, pathAuth, url.Values{"username": {"bob"}, "factor": {"auto"}}, time.Now(), testIKey, testSKey)
				}
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	flipped := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				flipped <- sim.SetFault(FaultNone)
				return
			default:
			}
			if err := sim.SetFault(faults[i%len(faults)]); err != nil {
				flipped <- err
				return
			}
			sim.SetUsers(testUsers())
			_ = sim.Calls()
			_ = sim.Requests()
			_ = sim.Held()
			time.Sleep(3 * time.Millisecond) // pacing, not synchronization
		}
	}()
	workers.Wait()
	close(stop)
	if err := <-flipped; err != nil {
		t.Fatalf("SetFault under load: %v", err)
	}
	mustCheckOK(t, client(t, sim))
}
