package duosim

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// The vector from duo_api_golang's TestSign.
const (
	vecHost = "api-XXXXXXXX.duosecurity.com"
	vecPath = "/accounts/v1/account/list"
	vecDate = "Tue, 21 Aug 2012 17:29:18 -0000"
	vecAuth = "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MWJmZmI4OTI0MzQ4ZjdkYjdkYTllN2Q3ZDc0OWRlZDkzYWFmZDAyZDhlOTA0OTYwZGE3Yjk2YzU3NTEwMjIwMTg1YTY0YTI4MjdlZThmMjRhYzVkMzA4MDJhOWVlOTdlNTlkZTQ0YjMwNGIxODI0MmYwZDU5NmQxNWE4MTIyYWY="
)

func vectorRequest() (*http.Request, url.Values, time.Time) {
	params := url.Values{"realname": {"First Last"}, "username": {"root"}}
	r := httptest.NewRequest(http.MethodPost, "https://"+vecHost+vecPath, nil)
	r.Header.Set("Date", vecDate)
	r.Header.Set("Authorization", vecAuth)
	now, err := time.Parse(time.RFC1123Z, vecDate)
	if err != nil {
		panic(err)
	}
	return r, params, now
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want an *APIError with code %d", err, code)
	}
	if apiErr.Code != code {
		t.Fatalf("got code %d (%v), want %d", apiErr.Code, err, code)
	}
}

func TestVerifySignatureVector(t *testing.T) {
	t.Parallel()
	r, params, now := vectorRequest()
	if err := VerifySignature(r, params, testIKey, testSKey, now); err != nil {
		t.Fatalf("library test vector rejected: %v", err)
	}
	// The canonical form alone reproduces the vector.
	_, sig, _ := r.BasicAuth()
	if got := signCanon(testSKey, canonicalize("post", vecHost, vecPath, vecDate, params)); got != sig {
		t.Fatalf("signature %s, want %s", got, sig)
	}
}

func TestVerifySignatureRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(r *http.Request, params url.Values, ikey, skey *string, now *time.Time)
		code   int // 0: accepted
	}{
		{"wrong skey", func(_ *http.Request, _ url.Values, _, skey *string, _ *time.Time) { *skey = "x" + *skey }, CodeInvalidSig},
		{"wrong ikey", func(_ *http.Request, _ url.Values, ikey, _ *string, _ *time.Time) { *ikey = "DIXXXXXXXXXXXXXXXXXX" }, CodeInvalidIKey},
		{"empty configured ikey", func(_ *http.Request, _ url.Values, ikey, _ *string, _ *time.Time) { *ikey = "" }, CodeInvalidIKey},
		{"no Authorization", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.Header.Del("Authorization") }, CodeInvalidIKey},
		{"Authorization not Basic", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) {
			r.Header.Set("Authorization", "Bearer abc")
		}, CodeInvalidIKey},
		{"no Date", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.Header.Del("Date") }, CodeInvalidDate},
		{"unparseable Date", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.Header.Set("Date", "yesterday") }, CodeInvalidDate},
		{"clock 301s ahead", func(_ *http.Request, _ url.Values, _, _ *string, now *time.Time) { *now = now.Add(301 * time.Second) }, CodeInvalidDate},
		{"clock 301s behind", func(_ *http.Request, _ url.Values, _, _ *string, now *time.Time) { *now = now.Add(-301 * time.Second) }, CodeInvalidDate},
		{"clock 299s ahead", func(_ *http.Request, _ url.Values, _, _ *string, now *time.Time) { *now = now.Add(299 * time.Second) }, 0},
		{"Host in upper case", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) {
			r.Host = "API-XXXXXXXX.DUOSECURITY.COM"
		}, 0},
		{"other Host", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.Host = "127.0.0.1:443" }, CodeInvalidSig},
		{"other path", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.URL.Path = "/auth/v2/check" }, CodeInvalidSig},
		{"other method", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) { r.Method = http.MethodGet }, CodeInvalidSig},
		{"changed param", func(_ *http.Request, params url.Values, _, _ *string, _ *time.Time) { params.Set("username", "admin") }, CodeInvalidSig},
		{"extra param", func(_ *http.Request, params url.Values, _, _ *string, _ *time.Time) { params.Set("factor", "push") }, CodeInvalidSig},
		{"other date, same time", func(r *http.Request, _ url.Values, _, _ *string, _ *time.Time) {
			r.Header.Set("Date", "Tue, 21 Aug 2012 17:29:18 +0000")
		}, CodeInvalidSig},
		{"uppercase hex signature", func(r *http.Request, _ url.Values, ikey, _ *string, _ *time.Time) {
			_, sig, _ := r.BasicAuth()
			up := []byte(sig)
			for i, c := range up {
				if c >= 'a' && c <= 'f' {
					up[i] = c - 'a' + 'A'
				}
			}
			r.SetBasicAuth(*ikey, string(up))
		}, CodeInvalidSig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, params, now := vectorRequest()
			ikey, skey := testIKey, testSKey
			tc.change(r, params, &ikey, &skey, &now)
			err := VerifySignature(r, params, ikey, skey, now)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			wantCode(t, err, tc.code)
		})
	}
}

func TestVerifySignatureGETUsesQuery(t *testing.T) {
	t.Parallel()
	now := time.Now()
	params := url.Values{"txid": {"abc def"}}
	r := signedRequest(t, "127.0.0.1:8443", http.MethodGet, "/auth/v2/auth_status", params, now, testIKey, testSKey)
	if err := VerifySignature(r, nil, testIKey, testSKey, now); err != nil {
		t.Fatalf("GET with query: %v", err)
	}
	r.URL.RawQuery = url.Values{"txid": {"other"}}.Encode()
	wantCode(t, VerifySignature(r, nil, testIKey, testSKey, now), CodeInvalidSig)
}

func TestVerifySignatureDoesNotModifyParams(t *testing.T) {
	t.Parallel()
	params := url.Values{"a": {"2", "1"}}
	_ = canonParams(params)
	if params["a"][0] != "2" {
		t.Fatal("canonParams sorted the caller's values in place")
	}
}

func TestCanonParams(t *testing.T) {
	t.Parallel()
	got := canonParams(url.Values{
		"b":     {"2", "1"},
		"a":     {"~-._*+", "x y"},
		"é k":   {"ü"},
		"empty": {""},
	})
	want := "a=x%20y&a=~-._%2A%2B&b=1&b=2&empty=&%C3%A9%20k=%C3%BC"
	if got != want {
		t.Fatalf("canonParams:\n got %s\nwant %s", got, want)
	}
}
