// Package duoclient is ldapgate's only code that speaks the Duo Auth API. It
// turns every answer and every failure into a failmode verdict or a classified
// *failmode.Error.
//
// It drives github.com/duosecurity/duo_api_golang for signing and encoding,
// but never lets that library decide about time or retries: every call runs
// through a RoundTripper bound to the call's context (so the synchronous push
// honours its deadline), and every HTTP status other than 2xx becomes an error
// before the library sees it (so its 429 retry loop, which resends POSTs with
// an already drained body, never runs).
//
// What the classes mean is defined by package failmode; the table in
// classify.go maps each failure to one of them.
package duoclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"

	duoapi "github.com/duosecurity/duo_api_golang"
	"github.com/duosecurity/duo_api_golang/authapi"

	"github.com/ldapgate/ldapgate/failmode"
)

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("duoclient: invalid config")

// Config says which Duo integration to talk to and how patiently.
type Config struct {
	// APIHost is the Duo API host name, e.g. api-xxxxxxxx.duosecurity.com,
	// optionally with a port (127.0.0.1:PORT for a simulator).
	APIHost        string
	IntegrationKey string
	// SecretKey signs every request. It never appears in errors or in the
	// printed form of a Client; a Config prints it as [redacted] (but fmt
	// cannot call Config's methods when a Config sits in an unexported field
	// of another struct, so don't print such structs).
	SecretKey string
	// RootCAs, when nil, keeps duo_api_golang's pinned Duo roots; non-nil
	// replaces them (private CAs, tests).
	RootCAs *x509.CertPool
	// Timeout bounds preauth and check, from dial to the last byte of the
	// body (duo.timeout; required).
	Timeout time.Duration
	// PushTimeout bounds the auth step: push, phone or passcode
	// (duo.push_timeout; required). The user has this long to answer the
	// push.
	PushTimeout time.Duration
	// UserAgent is sent ahead of the library's own, e.g. "ldapgate/1.2.3".
	UserAgent string
	// Proxy chooses the HTTPS proxy for a request; nil is
	// http.ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY; never for
	// loopback hosts). A proxy that refuses the CONNECT is Misconfigured,
	// with its answer in the error.
	Proxy func(*http.Request) (*url.URL, error)
	// Observe, when non-nil, is called after every HTTP call to Duo with the
	// stage it served (failmode.StagePreauth, StageAuth, StageCheck), its
	// duration and
	// its class: Allowed for a good answer (including preauth's "auth" and a
	// passing check), Denied when Duo said no, else the class of the error
	// (classify.go's table: Local when this process failed or the caller
	// cancelled, Rejected when Duo refused one user's request). It feeds
	// metrics and the health state machine; it must not block.
	Observe func(stage failmode.Stage, d time.Duration, class failmode.Class)
}

// String prints the Config with the secret key redacted.
func (c Config) String() string {
	secret := ""
	if c.SecretKey != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("duoclient.Config{APIHost:%q IntegrationKey:%q SecretKey:%s RootCAs:%t Timeout:%s PushTimeout:%s UserAgent:%q Observe:%t}",
		c.APIHost, c.IntegrationKey, secret, c.RootCAs != nil, c.Timeout, c.PushTimeout, c.UserAgent, c.Observe != nil)
}

// GoString is String: %#v must not print the secret either.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb, so no verb (%d, %x, %+v...) can reach
// the secret field.
func (c Config) Format(f fmt.State, verb rune) { _, _ = fmt.Fprint(f, c.String()) }

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	switch {
	case c.APIHost == "":
		bad("api host is empty")
	case hasSpace(c.APIHost):
		bad("api host %q contains whitespace", c.APIHost)
	case strings.Contains(c.APIHost, "://") || strings.ContainsAny(c.APIHost, "/?#@"):
		bad("api host %q must be a host name (with an optional port), not a URL", c.APIHost)
	}
	switch {
	case c.IntegrationKey == "":
		bad("integration key is empty")
	case hasSpace(c.IntegrationKey):
		bad("integration key %q contains whitespace", c.IntegrationKey)
	}
	switch {
	case c.SecretKey == "":
		bad("secret key is empty")
	case hasSpace(c.SecretKey):
		bad("secret key contains whitespace") // never echo it
	}
	// No defaults here: config is their one home.
	if c.Timeout <= 0 {
		bad("timeout %s is not positive", c.Timeout)
	}
	if c.PushTimeout <= 0 {
		bad("push timeout %s is not positive", c.PushTimeout)
	}
	return errors.Join(errs...)
}

func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

// Client talks to one Duo integration. It is safe for concurrent use.
type Client struct {
	host, ikey  string
	timeout     time.Duration
	pushTimeout time.Duration
	observe     func(failmode.Stage, time.Duration, failmode.Class)
	// api returns a copy of the DuoApi built by New, which holds the keys.
	// The secret lives only there, behind a closure: fmt prints a func as an
	// address, so no verb on a Client (or a struct holding one) reaches it.
	api func() duoapi.DuoApi
	tr  *http.Transport
}

// New validates cfg and builds a Client. Errors wrap ErrConfig and never
// contain the secret key. New does not contact Duo; use Check for that.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var tr *http.Transport
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	base := duoapi.NewDuoApi(cfg.IntegrationKey, cfg.SecretKey, cfg.APIHost, cfg.UserAgent,
		duoapi.SetProxy(proxy),
		duoapi.SetTransport(func(t *http.Transport) {
			configureTransport(t, cfg)
			tr = t
		}))
	if tr == nil {
		return nil, errors.New("duoclient: duo_api_golang did not hand out its transport")
	}
	return &Client{
		host:        cfg.APIHost,
		ikey:        cfg.IntegrationKey,
		timeout:     cfg.Timeout,
		pushTimeout: cfg.PushTimeout,
		observe:     cfg.Observe,
		api:         func() duoapi.DuoApi { return *base },
		tr:          tr,
	}, nil
}

// Integration identifies the integration as "api_host/ikey": a stable key for
// health state and metrics. It holds no secret.
func (c *Client) Integration() string { return failmode.Integration(c.host, c.ikey) }

// String prints the integration, never the secret.
func (c *Client) String() string { return "duoclient.Client(" + c.Integration() + ")" }

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Client) Format(f fmt.State, verb rune) { _, _ = fmt.Fprint(f, c.String()) }

// Close drops idle connections to Duo. Calls in flight are not affected; the
// Client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Verify asks Duo for the second factor of one attempt: preauth, then, when
// Duo asks for it, auth. It returns a Verdict when Duo answered (Allowed
// false with a nil error means Duo said no: deny, enroll, fraud) or a
// *failmode.Error whose Class and Stage say what failed. It never returns an
// allowing Verdict together with an error.
func (c *Client) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	factor, err := authFactor(a)
	if err != nil {
		// A caller bug, not Duo's answer: nothing is sent, nothing observed.
		return failmode.Verdict{}, &failmode.Error{Class: failmode.Local, Stage: failmode.StagePreauth, Detail: "invalid attempt", Err: err}
	}
	ip := clientIP(a.ClientIP)

	var pre *authapi.PreauthResult
	d, ferr := c.call(ctx, failmode.StagePreauth, c.timeout, func(api *authapi.AuthApi) (*duoapi.StatResult, error) {
		opts := []func(*url.Values){authapi.PreauthUsername(a.Username)}
		if ip != "" {
			opts = append(opts, authapi.PreauthIpAddr(ip))
		}
		r, err := api.Preauth(opts...)
		if err != nil {
			return nil, err
		}
		pre = r
		return &r.StatResult, nil
	})
	if ferr != nil {
		return failmode.Verdict{}, ferr
	}
	msg := clean(pre.Response.Status_Msg)
	switch pre.Response.Result {
	case "allow":
		c.report(failmode.StagePreauth, d, failmode.Allowed)
		return failmode.Verdict{Allowed: true, Bypass: true, Message: msg}, nil
	case "deny":
		c.report(failmode.StagePreauth, d, failmode.Denied)
		return failmode.Verdict{Message: msg}, nil
	case "enroll":
		c.report(failmode.StagePreauth, d, failmode.Denied)
		return failmode.Verdict{Message: "not enrolled: " + msg}, nil
	case "auth":
		c.report(failmode.StagePreauth, d, failmode.Allowed)
	default:
		// Duo answered, signed and well-formed, with something we do not
		// know. It is reachable, so failmode must not decide: Degraded
		// (denied, no fail-open).
		c.report(failmode.StagePreauth, d, failmode.Degraded)
		return failmode.Verdict{}, &failmode.Error{Class: failmode.Degraded, Stage: failmode.StagePreauth,
			Detail: fmt.Sprintf("unexpected preauth result %q", clean(pre.Response.Result))}
	}

	if a.Admit != nil {
		if err := a.Admit(ctx, factor); err != nil {
			// The caller's own refusal, after a good preauth: nothing is
			// sent, nothing observed; the caller recognises its error.
			return failmode.Verdict{}, &failmode.Error{Class: failmode.Local, Stage: failmode.StageAuth,
				Detail: "refused by the caller before auth", Err: err}
		}
	}

	var res *authapi.AuthResult
	d, ferr = c.call(ctx, failmode.StageAuth, c.pushTimeout, func(api *authapi.AuthApi) (*duoapi.StatResult, error) {
		opts := []func(*url.Values){authapi.AuthUsername(a.Username)}
		if ip != "" {
			opts = append(opts, authapi.AuthIpAddr(ip))
		}
		if factor == failmode.FactorPasscode {
			opts = append(opts, authapi.AuthPasscode(a.Passcode))
		} else {
			opts = append(opts, authapi.AuthDevice("auto"))
			if info := pushinfo(a.Server, ip); info != "" {
				opts = append(opts, authapi.AuthPushinfo(info))
			}
		}
		r, err := api.Auth(string(factor), opts...)
		if err != nil {
			return nil, err
		}
		res = r
		return &r.StatResult, nil
	})
	if ferr != nil {
		return failmode.Verdict{}, ferr
	}
	msg = clean(res.Response.Status_Msg)
	switch res.Response.Result {
	case "allow":
		c.report(failmode.StageAuth, d, failmode.Allowed)
		return failmode.Verdict{Allowed: true, Message: msg}, nil
	case "deny":
		c.report(failmode.StageAuth, d, failmode.Denied)
		return failmode.Verdict{Message: msg, Fraud: res.Response.Status == "fraud"}, nil
	}
	c.report(failmode.StageAuth, d, failmode.Degraded)
	return failmode.Verdict{}, &failmode.Error{Class: failmode.Degraded, Stage: failmode.StageAuth,
		Detail: fmt.Sprintf("unexpected auth result %q", clean(res.Response.Result))}
}

// Check proves the integration works: a signed GET /auth/v2/check within
// Timeout. It returns nil when Duo accepted the keys and the signature, else
// a *failmode.Error with StageCheck (Unreachable, Misconfigured, Untrusted,
// Degraded for rate limiting, Local for this process's own fault). A 400
// is Misconfigured here: the check carries no user input.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.CheckTime(ctx)
	return err
}

// CheckTime is Check that also returns the time Duo reported in its answer
// (whole seconds), for clock-skew reports: Duo refuses requests whose Date
// header is minutes away from its clock.
func (c *Client) CheckTime(ctx context.Context) (time.Time, error) {
	var duoTime int64
	d, ferr := c.call(ctx, failmode.StageCheck, c.timeout, func(api *authapi.AuthApi) (*duoapi.StatResult, error) {
		r, err := api.Check()
		if err != nil {
			return nil, err
		}
		duoTime = r.Response.Time
		return &r.StatResult, nil
	})
	if ferr != nil {
		return time.Time{}, ferr
	}
	c.report(failmode.StageCheck, d, failmode.Allowed)
	return time.Unix(duoTime, 0), nil
}

// call runs one library call bounded by budget and the caller's ctx, and
// classifies any failure, including a well-formed FAIL answer. It reports a
// failure to the observer itself; the caller reports how an answer is read.
func (c *Client) call(ctx context.Context, stage failmode.Stage, budget time.Duration,
	do func(*authapi.AuthApi) (*duoapi.StatResult, error)) (time.Duration, *failmode.Error) {
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	api := c.api()
	api.SetCustomHTTPClient(&http.Client{
		Transport: roundTripper{ctx: callCtx, next: c.tr},
		// Duo does not redirect; roundTripper turns 3xx into errors anyway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	})
	st, err := do(authapi.NewAuthApi(api))
	elapsed := time.Since(start)
	var ferr *failmode.Error
	switch {
	case err != nil:
		ferr = classify(stage, err, timing{parent: ctx, call: callCtx, start: start, budget: budget, phase: c.timeout})
	case st.Stat != "OK":
		ferr = classifyStat(stage, st)
	}
	if ferr != nil {
		c.report(stage, elapsed, ferr.Class)
	}
	return elapsed, ferr
}

func (c *Client) report(stage failmode.Stage, d time.Duration, class failmode.Class) {
	if c.observe != nil {
		c.observe(stage, d, class)
	}
}

// authFactor checks the attempt and returns the factor to send at auth: a
// typed passcode always wins.
func authFactor(a failmode.Attempt) (failmode.Factor, error) {
	if a.Username == "" {
		return "", errors.New("empty username")
	}
	if a.Passcode != "" {
		return failmode.FactorPasscode, nil
	}
	switch a.Factor {
	case "", failmode.FactorAuto:
		return failmode.FactorAuto, nil
	case failmode.FactorPush, failmode.FactorPhone:
		return a.Factor, nil
	case failmode.FactorPasscode:
		return "", errors.New("passcode factor without a passcode")
	}
	return "", fmt.Errorf("unknown factor %q", clean(string(a.Factor)))
}

// pushinfo is what the push shows the user about who asks: the section and
// the client's address, form-encoded as Duo's pushinfo parameter wants
// ("section=vpn&client_ip=192.0.2.7"); "" when there is neither.
func pushinfo(server, ip string) string {
	v := url.Values{}
	if server != "" {
		v.Set("section", server)
	}
	if ip != "" {
		v.Set("client_ip", ip)
	}
	return v.Encode()
}

// clientIP returns the address to send as ipaddr, or "" when s is neither an
// IP nor an IP:port.
func clientIP(s string) string {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return ""
		}
		addr = ap.Addr()
	}
	return addr.Unmap().WithZone("").String()
}
