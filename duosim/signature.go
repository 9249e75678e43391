package duosim

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// MaxClockSkew is the largest difference between a request's Date header and
// the simulator's clock that is accepted, as with Duo.
const MaxClockSkew = 300 * time.Second

// Duo error codes the simulator answers with. The HTTP status is Code/100.
const (
	CodeMissingParams   = 40001 // a required parameter is missing
	CodeInvalidParams   = 40002 // a parameter has an invalid value
	CodeInvalidIKey     = 40101 // missing Authorization, or unknown integration key
	CodeInvalidSig      = 40103 // the HMAC does not match
	CodeInvalidDate     = 40105 // Date header missing, unparseable or too far off
	CodeNotFound        = 40401
	CodeMethodNotAllow  = 40501
	CodeRateLimited     = 42901
	CodeUnavailable     = 50301
	msgInvalidIKey      = "Missing or invalid integration key"
	msgInvalidSignature = "Invalid signature in request credentials"
	msgInvalidDate      = "Invalid request timestamp"
)

// APIError is a Duo "stat": "FAIL" answer. [VerifySignature] returns one, so
// tests can check the code with errors.As.
type APIError struct {
	Code    int    // Duo error code, e.g. 40103
	Message string // Duo's message for the code
	Detail  string // message_detail; never contains parameter values
}

// HTTPStatus is the HTTP status Duo pairs with the code (40103 → 401).
func (e *APIError) HTTPStatus() int { return e.Code / 100 }

func (e *APIError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("duo %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("duo %d: %s (%s)", e.Code, e.Message, e.Detail)
}

// VerifySignature checks a Duo v2 request signature the way Duo does.
//
// params is the signed parameter set: for POST and PUT the form-encoded body,
// already parsed (the Go client sends it chunked); when params is nil the
// request's query string is used, which is right for GET. The canonical
// string is
//
//	Date header + "\n" + METHOD + "\n" + lower(Host header) + "\n" + path + "\n" + params
//
// with params sorted by key then value, each key and value escaped with
// url.QueryEscape and "+" then written as "%20". The Authorization header must
// be Basic base64(ikey + ":" + lowercase hex HMAC-SHA512(skey, canon)).
//
// Failures, all as *APIError: no Authorization header or a wrong integration
// key → 40101; missing or unparseable Date → 40105; wrong HMAC → 40103; Date
// more than MaxClockSkew away from now → 40105. Comparisons are constant-time.
func VerifySignature(r *http.Request, params url.Values, ikey, skey string, now time.Time) error {
	gotIKey, gotSig, ok := r.BasicAuth()
	if !ok {
		detail := "the Authorization header is missing"
		if r.Header.Get("Authorization") != "" {
			detail = "the Authorization header is not HTTP Basic ikey:signature"
		}
		return &APIError{Code: CodeInvalidIKey, Message: msgInvalidIKey, Detail: detail}
	}
	if subtle.ConstantTimeCompare([]byte(gotIKey), []byte(ikey)) != 1 || ikey == "" {
		return &APIError{Code: CodeInvalidIKey, Message: msgInvalidIKey, Detail: "unknown integration key"}
	}
	date := r.Header.Get("Date")
	if date == "" {
		return &APIError{Code: CodeInvalidDate, Message: msgInvalidDate, Detail: "the Date header is missing"}
	}
	sent, err := parseDate(date)
	if err != nil {
		return &APIError{Code: CodeInvalidDate, Message: msgInvalidDate, Detail: "the Date header is not RFC 1123 (Mon, 02 Jan 2006 15:04:05 -0700)"}
	}
	if params == nil {
		params = r.URL.Query()
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	want := signCanon(skey, canonicalize(r.Method, host, r.URL.Path, date, params))
	if !hmac.Equal([]byte(gotSig), []byte(want)) {
		keys := make([]string, 0, len(params))
		for k := range params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return &APIError{Code: CodeInvalidSig, Message: msgInvalidSignature, Detail: fmt.Sprintf(
			"signature does not match; the simulator signed method=%s host=%q path=%q date=%q params=%v",
			strings.ToUpper(r.Method), strings.ToLower(host), r.URL.Path, date, keys)}
	}
	if skew := now.Sub(sent); skew > MaxClockSkew || skew < -MaxClockSkew {
		return &APIError{Code: CodeInvalidDate, Message: msgInvalidDate, Detail: fmt.Sprintf(
			"the Date header is %s away from the server clock (at most %s allowed)", skew.Round(time.Second), MaxClockSkew)}
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t, nil
	}
	return http.ParseTime(s)
}

// canonParams renders params the way duo_api_golang's canonParams does,
// without modifying the caller's values.
func canonParams(params url.Values) string {
	sorted := make(url.Values, len(params))
	for k, v := range params {
		c := slices.Clone(v)
		sort.Strings(c)
		sorted[k] = c
	}
	return strings.ReplaceAll(sorted.Encode(), "+", "%20")
}

func canonicalize(method, host, path, date string, params url.Values) string {
	return strings.Join([]string{
		date,
		strings.ToUpper(method),
		strings.ToLower(host),
		path,
		canonParams(params),
	}, "\n")
}

func signCanon(skey, canon string) string {
	mac := hmac.New(sha512.New, []byte(skey))
	mac.Write([]byte(canon))
	return hex.EncodeToString(mac.Sum(nil))
}
