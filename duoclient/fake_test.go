package duoclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

const (
	testIKey = "DIWJ8X6AEYOR5OMC6TQ1"
	testSKey = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep-SECRET"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for the given IPs and DNS names, valid
// from notBefore to notAfter.
func (ca *testCA) leaf(t testing.TB, ips []net.IP, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "duo test server"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		IPAddresses:  ips,
		DNSNames:     names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

var loopback = []net.IP{net.IPv4(127, 0, 0, 1)}

func (ca *testCA) goodLeaf(t testing.TB) tls.Certificate {
	return ca.leaf(t, loopback, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// trusted is the CA clients trust; other is one they do not.
var (
	caOnce         sync.Once
	trusted, other *testCA
)

func cas(t testing.TB) (*testCA, *testCA) {
	caOnce.Do(func() {
		trusted = newCA(t, "ldapgate test trusted CA")
		other = newCA(t, "ldapgate test untrusted CA")
	})
	return trusted, other
}

// recorded is one request the fake Duo received.
type recorded struct {
	Method, Path string
	Params       url.Values
	SignatureOK  bool
	UserAgent    string
}

// fakeDuo is an HTTPS server that answers like the Duo Auth API and checks
// every request's signature. Handlers per endpoint can be replaced.
type fakeDuo struct {
	srv  *httptest.Server
	skey string

	mu      sync.Mutex
	reqs    []recorded
	handler map[string]http.HandlerFunc // by path
}

// newFakeDuo starts a fake Duo with a certificate from the trusted CA. By
// default preauth says "auth", auth says "allow" and check answers the time.
func newFakeDuo(t testing.TB, cert ...tls.Certificate) *fakeDuo {
	t.Helper()
	ca, _ := cas(t)
	if len(cert) == 0 {
		cert = []tls.Certificate{ca.goodLeaf(t)}
	}
	return newFakeDuoTLS(t, &tls.Config{Certificates: cert})
}

// newFakeDuoTLS starts a fake Duo with the given server TLS config.
func newFakeDuoTLS(t testing.TB, tlsConfig *tls.Config) *fakeDuo {
	t.Helper()
	f := &fakeDuo{skey: testSKey, handler: map[string]http.HandlerFunc{
		"/auth/v2/preauth": okJSON(map[string]any{"result": "auth", "status_msg": "Account is active"}),
		"/auth/v2/auth":    okJSON(map[string]any{"result": "allow", "status": "allow", "status_msg": "Success. Logging you in..."}),
		"/auth/v2/check":   okJSON(map[string]any{"time": time.Now().Unix()}),
	}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.TLS = tlsConfig
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDuo) host() string { return f.srv.Listener.Addr().String() }

func (f *fakeDuo) set(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler[path] = h
}

func (f *fakeDuo) requests(path string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.reqs {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeDuo) serve(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		params = r.PostForm
	} else {
		params = r.URL.Query()
	}
	ok := verifySignature(r.Header.Get("Authorization"), r.Header.Get("Date"), r.Method, r.Host, r.URL.Path, params, testIKey, f.skey)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Method: r.Method, Path: r.URL.Path, Params: params, SignatureOK: ok, UserAgent: r.UserAgent()})
	h := f.handler[r.URL.Path]
	f.mu.Unlock()
	if !ok {
		fail(http.StatusUnauthorized, 40103, "Invalid signature in request credentials")(w, r)
		return
	}
	if h == nil {
		fail(http.StatusNotFound, 40401, "Resource not found")(w, r)
		return
	}
	h(w, r)
}

// verifySignature checks a Duo v2 request signature independently of
// duo_api_golang: Basic base64(ikey:hex(HMAC-SHA512(skey, canon))).
func verifySignature(authz, date, method, host, path string, params url.Values, ikey, skey string) bool {
	if _, err := time.Parse(time.RFC1123Z, date); err != nil {
		return false
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(ikey+":"+signature(skey, date, method, host, path, params)))
	return hmac.Equal([]byte(authz), []byte(want))
}

func signature(skey, date, method, host, path string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var pairs []string
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, esc(k)+"="+esc(v))
		}
	}
	canon := strings.Join([]string{date, strings.ToUpper(method), strings.ToLower(host), path, strings.Join(pairs, "&")}, "\n")
	mac := hmac.New(sha512.New, []byte(skey))
	mac.Write([]byte(canon))
	return hex.EncodeToString(mac.Sum(nil))
}

func okJSON(response map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"stat": "OK", "response": response})
	}
}

func fail(status, code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"stat": "FAIL", "code": code, "message": msg, "message_detail": "detail"})
	}
}

func raw(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hang answers nothing for d, or until the client goes away.
func hang(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(d):
		}
	}
}

// hijack takes the connection and closes it without an answer; with reset
// it sends a TCP RST instead of a FIN.
func hijack(reset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		if reset {
			if tc, ok := conn.(*tls.Conn); ok {
				if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
					_ = tcp.Close()
					return
				}
			}
		}
		_ = conn.Close()
	}
}

// closedPort returns 127.0.0.1:port where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// observation is one Observe call.
type observation struct {
	Endpoint failmode.Stage
	Class    failmode.Class
	D        time.Duration
}

type observer struct {
	mu  sync.Mutex
	obs []observation
}

func (o *observer) observe(endpoint failmode.Stage, d time.Duration, class failmode.Class) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, observation{endpoint, class, d})
}

func (o *observer) got() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.obs...)
}

// newClient builds a Client for host that trusts the trusted CA, with short
// timeouts; mods adjust the config.
func newClient(t testing.TB, host string, mods ...func(*Config)) (*Client, *observer) {
	t.Helper()
	ca, _ := cas(t)
	o := &observer{}
	cfg := Config{
		APIHost:        host,
		IntegrationKey: testIKey,
		SecretKey:      testSKey,
		RootCAs:        ca.pool,
		Timeout:        2 * time.Second,
		PushTimeout:    2 * time.Second,
		UserAgent:      "ldapgate/test",
		Observe:        o.observe,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, o
}

// wantFailure asserts err is a *failmode.Error of class and stage whose
// Detail contains detail, and that it does not hold the secret.
func wantFailure(t *testing.T, err error, class failmode.Class, stage failmode.Stage, detail string) *failmode.Error {
	t.Helper()
	var fe *failmode.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %T %v, want *failmode.Error", err, err)
	}
	if fe.Class != class || fe.Stage != stage {
		t.Errorf("got class %s stage %s, want %s %s (%v)", fe.Class, fe.Stage, class, stage, err)
	}
	if !strings.Contains(fe.Detail, detail) {
		t.Errorf("detail %q does not contain %q (%v)", fe.Detail, detail, err)
	}
	if fe.Detail == "" {
		t.Errorf("empty detail (%v)", err)
	}
	if strings.Contains(err.Error(), testSKey) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), testSKey) {
		t.Errorf("error leaks the secret key: %v", err)
	}
	return fe
}

// settleGoroutines waits until the goroutine count is back to baseline
// (plus slack), failing after a deadline: hung calls must not leak.
func settleGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d, baseline %d; leaked:\n%s", n, baseline, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
