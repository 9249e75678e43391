package duoclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

// ErrRateLimited is matched (errors.Is) by a *StatusError for HTTP 429 or a
// Duo 429xx code. Returning it from the RoundTripper is what stops
// duo_api_golang's retry loop.
var ErrRateLimited = errors.New("duo: rate limited")

// ErrResponseTooLarge is returned while reading a Duo response body longer
// than any Auth API answer can be.
var ErrResponseTooLarge = errors.New("duo: response too large")

const (
	maxBody      = 1 << 20 // any successful Auth API answer is far smaller
	maxErrorBody = 16 << 10
	maxMessage   = 160 // runes of Duo's message kept in errors
)

// StatusError is a Duo answer that is not a success: an HTTP status other
// than 2xx, or a {"stat":"FAIL"} body. Code and Message are Duo's, when the
// body carried them.
type StatusError struct {
	StatusCode int    // HTTP status as received
	Code       int    // Duo's error code (40103), 0 if absent
	Message    string // Duo's message, cleaned and truncated
}

func (e *StatusError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != 0 {
		s += fmt.Sprintf(": duo %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, ErrRateLimited) true for a rate limit.
func (e *StatusError) Is(target error) bool {
	return target == ErrRateLimited && e.group() == http.StatusTooManyRequests
}

// group is the HTTP status the answer stands for: the real status unless it
// was a success, then Duo's code/100 (Duo's convention: 40103 → 401).
func (e *StatusError) group() int {
	if e.StatusCode >= 200 && e.StatusCode < 300 {
		return e.Code / 100
	}
	return e.StatusCode
}

// detail is the operator-facing cause.
func (e *StatusError) detail() string {
	switch {
	case e.group() == http.StatusTooManyRequests && e.StatusCode == http.StatusTooManyRequests:
		return "rate limited (HTTP 429)"
	case e.group() == http.StatusTooManyRequests:
		return fmt.Sprintf("rate limited (duo %d)", e.Code)
	case e.Code != 0 && e.Message != "":
		return fmt.Sprintf("duo %d: %s", e.Code, e.Message)
	case e.Code != 0:
		return fmt.Sprintf("duo %d", e.Code)
	}
	return "HTTP " + strconv.Itoa(e.StatusCode)
}

// configureTransport adds what duo_api_golang's transport lacks. It keeps the
// library's pinned roots unless cfg.RootCAs replaces them. The per-call
// context is the real deadline; these bound each phase in case it is long.
func configureTransport(t *http.Transport, cfg Config) {
	t.DialContext = dialContext(cfg.Timeout)
	t.TLSHandshakeTimeout = cfg.Timeout
	t.ResponseHeaderTimeout = max(cfg.Timeout, cfg.PushTimeout)
	t.OnProxyConnectResponse = proxyRefusal
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 16
	// HTTP/2 when Duo's endpoint offers it through ALPN, HTTP/1.1
	// otherwise: with HTTP/2 every call in flight, however many pushes
	// wait, shares one connection (up to the server's stream limit)
	// instead of holding one each. net/http turns HTTP/2 off by itself once
	// DialContext and TLSClientConfig are ours, as above; this turns it
	// back on.
	t.ForceAttemptHTTP2 = true
	// A connection that stops answering is noticed by a ping after a
	// silence and closed when the ping is not answered in time, so that
	// calls stop queueing onto it; pending pushes send no frames for
	// minutes, so silence alone proves nothing. Closing it fails every
	// push it carries (up to the server's stream limit) at once, so the
	// ping gets at least pingPatience: a process busy with thousands of
	// waiting logins must not mistake its own delay for Duo's.
	patience := max(cfg.Timeout, pingPatience)
	t.HTTP2 = &http.HTTP2Config{SendPingTimeout: patience, PingTimeout: patience}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.MinVersion = tls.VersionTLS12
	if cfg.RootCAs != nil {
		t.TLSClientConfig.RootCAs = cfg.RootCAs
	}
}

// pingPatience is the least silence before an HTTP/2 connection to Duo is
// pinged, and the least time its ping has to come back.
const pingPatience = 15 * time.Second

// ProxyRefusedError means the HTTPS proxy (HTTPS_PROXY) answered our
// CONNECT to Duo with something other than 200: a proxy policy or
// credentials problem of ours, never evidence about Duo.
type ProxyRefusedError struct {
	Proxy  string // the proxy's URL, password redacted
	Status string // its answer, e.g. "407 Proxy Authentication Required"
}

func (e *ProxyRefusedError) Error() string {
	return "HTTPS proxy " + e.Proxy + " refused CONNECT: " + e.Status
}

// proxyRefusal types a proxy's refusal of CONNECT: net/http would return
// only its status text, which nothing may classify.
func proxyRefusal(_ context.Context, proxy *url.URL, _ *http.Request, res *http.Response) error {
	if res.StatusCode == http.StatusOK {
		return nil
	}
	return &ProxyRefusedError{Proxy: proxy.Redacted(), Status: res.Status}
}

// dialContext dials Duo with a resolver of its own per dial, so that a local
// errno its DNS sockets met (EMFILE...) stays in the error chain: a
// *net.DNSError keeps only the text of such a cause, and would otherwise
// read as "Duo's DNS is down" (see the table in classify.go). The resolver is
// Go's (PreferGo), because only Go's calls Dial for every socket it opens;
// it reads /etc/hosts and /etc/resolv.conf like the system's, but not other
// nsswitch sources. One resolver per dial also means concurrent dials do not
// share one lookup, whose fault only the first would see.
func dialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var rf resolverFaults
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
			Resolver: &net.Resolver{PreferGo: true, Dial: rf.dial}}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			if cause := rf.first(); cause != nil {
				return nil, &resolverError{err: err, cause: cause}
			}
			return nil, err
		}
		return conn, nil
	}
}

// resolverFaults records the first local fault (classify.go's localErrnos)
// the resolver's own dials met. The resolver dials from several goroutines
// (A and AAAA at once).
type resolverFaults struct {
	mu  sync.Mutex
	err error
}

func (r *resolverFaults) dial(ctx context.Context, network, server string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		if _, local := localProblem(err); local {
			r.mu.Lock()
			if r.err == nil {
				r.err = err
			}
			r.mu.Unlock()
		}
		return nil, err
	}
	return conn, nil
}

func (r *resolverFaults) first() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// resolverError is a failed dial whose name lookup met a local fault: it
// matches both the dial's error (a *net.DNSError) and the fault.
type resolverError struct{ err, cause error }

func (e *resolverError) Error() string   { return e.err.Error() + " (resolver: " + e.cause.Error() + ")" }
func (e *resolverError) Unwrap() []error { return []error{e.err, e.cause} }

// roundTripper binds every request of one call to the call's context and
// turns every non-2xx status into an error, so that duo_api_golang neither
// outlives the deadline nor retries (its 429 loop resends POSTs with a
// drained body).
type roundTripper struct {
	ctx  context.Context
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		resp.Body = &limitedBody{rc: resp.Body, n: maxBody}
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	se := &StatusError{StatusCode: resp.StatusCode}
	se.Code, se.Message = parseFail(body)
	return nil, se
}

// send sends req once, or twice when a call without side effects (the
// check, a preauth) was cut by the connection it reused closing under it:
// a server may close a connection it holds idle at any moment, and a call
// that happened to take it says nothing about Duo. net/http retries such a
// call itself over HTTP/1.1 (errServerClosedIdle), not over HTTP/2, where
// it ends in EOF or a reset. The push (auth) is never sent twice.
func (rt roundTripper) send(req *http.Request) (*http.Response, error) {
	if !sideEffectFree(req) {
		return rt.next.RoundTrip(req.WithContext(rt.ctx))
	}
	// duo_api_golang sets Body without GetBody: keep the form (a few
	// hundred bytes) to send it again.
	var form []byte
	if req.Body != nil {
		var err error
		if form, err = io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1)); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		if len(form) > maxRequestBody {
			return nil, fmt.Errorf("duo request body over %d bytes", maxRequestBody)
		}
	}
	attempt := func(ctx context.Context) *http.Request {
		r := req.Clone(ctx)
		if req.Body != nil {
			r.Body = io.NopCloser(bytes.NewReader(form))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(form)), nil }
		}
		return r
	}
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	resp, err := rt.next.RoundTrip(attempt(httptrace.WithClientTrace(rt.ctx, trace)))
	if err == nil || !reused || !connectionDropped(err) || rt.ctx.Err() != nil {
		return resp, err
	}
	return rt.next.RoundTrip(attempt(rt.ctx))
}

// maxRequestBody bounds the form of a call sent again: a preauth's is a
// few hundred bytes.
const maxRequestBody = 64 << 10

// sideEffectFree reports whether sending req twice is harmless: the check
// and preauth ask, auth sends a push.
func sideEffectFree(req *http.Request) bool {
	return strings.HasSuffix(req.URL.Path, "/check") || strings.HasSuffix(req.URL.Path, "/preauth")
}

// connectionDropped reports an error that means the connection went away
// under the call: closed (EOF) or reset.
func connectionDropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// parseFail extracts Duo's code and message from a FAIL body, if it is one.
func parseFail(body []byte) (int, string) {
	var f struct {
		Stat    string          `json:"stat"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &f) != nil || f.Stat != "FAIL" {
		return 0, ""
	}
	var code int
	if json.Unmarshal(f.Code, &code) != nil {
		code = 0
	}
	return code, clean(f.Message)
}

// limitedBody fails with ErrResponseTooLarge past n bytes instead of
// silently truncating.
type limitedBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		var one [1]byte
		k, err := b.rc.Read(one[:])
		if k > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.rc.Read(p)
	b.n -= int64(k)
	return k, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// clean makes server-provided text safe for a log line: no control
// characters, bounded length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return s
}
