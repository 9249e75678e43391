package duoclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"

	"github.com/ldapgate/ldapgate/failmode"
)

// The classification, by stage:
//
//	what happened                                   preauth/check   auth
//	certificate does not verify                     Untrusted       Untrusted
//	HTTP 400 and FAIL 400xx, unless the status and
//	  the code disagree (HTTP 400 + 40103)          Rejected        Rejected
//	  ... at check, which carries no user input     Misconfigured
//	HTTP 4xx (but 429), FAIL 4xxxx (but 429xx)      Misconfigured   Misconfigured
//	HTTP 429, FAIL 429xx                            Degraded        Degraded
//	DNS, refused, reset, no route, closed, timeout,
//	  HTTP 5xx (or 3xx), FAIL 5xxxx, unparseable,
//	  response too large, any other transport error Unreachable     Degraded
//	the caller cancelled its context                Unknown         Unknown
//	FAIL without a usable code, anything else       Unknown         Unknown
//
// Deny, enroll and fraud are Verdicts, not errors. Everything is decided on
// types (errors.As/Is), never on error text.

// transient is the class of "Duo could not be reached or did not answer":
// failmode may decide before authentication began, never after.
func transient(stage failmode.Stage) failmode.Class {
	if stage == failmode.StageAuth {
		return failmode.Degraded
	}
	return failmode.Unreachable
}

// timing is what classify needs to tell our deadline from the caller's.
type timing struct {
	parent, call context.Context
	start        time.Time
	budget       time.Duration // this call's deadline
	phase        time.Duration // the transport's dial and TLS handshake timeouts
}

func (t timing) timeoutDetail() string {
	if pd, ok := t.parent.Deadline(); ok && pd.Before(t.start.Add(t.budget)) {
		return fmt.Sprintf("no answer within %s (caller's deadline)", fmtDuration(pd.Sub(t.start).Round(time.Millisecond)))
	}
	return "no answer within " + fmtDuration(t.budget)
}

// fmtDuration prints whole seconds as "60s" rather than "1m0s".
func fmtDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// classify turns an error from a duo_api_golang call into a classified error.
func classify(stage failmode.Stage, err error, tm timing) *failmode.Error {
	fe := func(class failmode.Class, detail string) *failmode.Error {
		return &failmode.Error{Class: class, Stage: stage, Detail: detail, Err: err}
	}
	if detail, ok := certProblem(err); ok {
		return fe(failmode.Untrusted, detail)
	}
	var se *StatusError
	if errors.As(err, &se) {
		return classifyStatus(stage, se, err)
	}
	if errors.Is(err, ErrResponseTooLarge) {
		return fe(transient(stage), "response too large")
	}
	if perr := tm.parent.Err(); errors.Is(perr, context.Canceled) {
		// The caller gave up (client gone, shutdown): says nothing about Duo.
		err = withCause(err, perr)
		return fe(failmode.Unknown, "canceled by caller")
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fe(transient(stage), "dns lookup failed")
	}
	if cerr := tm.call.Err(); cerr != nil || errors.Is(err, context.DeadlineExceeded) {
		// Checked before the body's shape: a call cut off at its deadline can
		// surface as a truncated or empty body.
		err = withCause(err, cerr)
		return fe(transient(stage), tm.timeoutDetail())
	}
	var synErr *json.SyntaxError
	var typErr *json.UnmarshalTypeError
	if errors.As(err, &synErr) || errors.As(err, &typErr) {
		return fe(transient(stage), "unparseable response")
	}
	// The transport's own phase timeouts fire at the same moment as a
	// preauth deadline, or earlier during a push.
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial" && opErr.Timeout():
		return fe(transient(stage), "connect timeout after "+fmtDuration(tm.phase))
	case errors.As(err, &netErr) && netErr.Timeout():
		return fe(transient(stage), "no answer within "+fmtDuration(tm.phase))
	}
	if detail, ok := netProblem(err); ok {
		return fe(transient(stage), detail)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return fe(transient(stage), "transport error")
	}
	return fe(failmode.Unknown, "unclassified error")
}

// withCause makes err match the context error that ended the call, when the
// library surfaced it as something else (an empty body, a closed connection).
func withCause(err, cause error) error {
	if cause == nil || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// classifyStat classifies a parsed answer whose stat is not OK.
func classifyStat(stage failmode.Stage, st *duoapi.StatResult) *failmode.Error {
	if st.Stat != "FAIL" {
		return &failmode.Error{Class: transient(stage), Stage: stage, Detail: "unparseable response",
			Err: fmt.Errorf("response stat %q is neither OK nor FAIL", clean(st.Stat))}
	}
	se := &StatusError{StatusCode: http.StatusOK}
	if st.Code != nil {
		se.Code = int(*st.Code)
	}
	if st.Message != nil {
		se.Message = clean(*st.Message)
	}
	return classifyStatus(stage, se, se)
}

func classifyStatus(stage failmode.Stage, se *StatusError, err error) *failmode.Error {
	fe := func(class failmode.Class, detail string) *failmode.Error {
		return &failmode.Error{Class: class, Stage: stage, Detail: detail, Err: err}
	}
	switch g := se.group(); {
	case g == http.StatusBadRequest && stage != failmode.StageCheck && (se.Code == 0 || se.Code/100 == http.StatusBadRequest):
		// Duo refused this user's request (a factor they have no device
		// for...): nothing about the integration. Only when the HTTP status
		// and Duo's code agree; a 400 carrying 40103 is still our keys. The
		// check has no user input: a 400 there is ours.
		return fe(failmode.Rejected, se.detail())
	case g == http.StatusTooManyRequests:
		return fe(failmode.Degraded, se.detail())
	case g >= 400 && g < 500:
		return fe(failmode.Misconfigured, se.detail())
	case g >= 500 && g < 600, g >= 300 && g < 400:
		return fe(transient(stage), se.detail())
	}
	detail := "duo FAIL without a usable code"
	if se.Message != "" {
		detail += ": " + se.Message
	}
	return fe(failmode.Unknown, detail)
}

// certProblem reports a server certificate that does not verify.
func certProblem(err error) (string, bool) {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		insecure    x509.InsecureAlgorithmError
		constraint  x509.ConstraintViolationError
		roots       x509.SystemRootsError
		verify      *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownAuth):
		return "certificate signed by unknown authority", true
	case errors.As(err, &hostname):
		return "certificate is not valid for " + hostname.Host, true
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate expired or not yet valid", true
		}
		return "certificate invalid: " + strings.TrimPrefix(invalid.Error(), "x509: "), true
	case errors.As(err, &insecure):
		return "certificate uses an insecure algorithm", true
	case errors.As(err, &constraint):
		return "certificate violates a constraint", true
	case errors.As(err, &roots):
		return "no root certificates to verify against", true
	case errors.As(err, &verify):
		return "certificate does not verify", true
	}
	return "", false
}

// netProblem names a transport failure.
func netProblem(err error) (string, bool) {
	var (
		record tls.RecordHeaderError
		alert  tls.AlertError
		opErr  *net.OpError
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &record):
		return "not a TLS server", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return "connection reset", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server", true
	case errors.As(err, &alert):
		return "TLS handshake failed", true
	case errors.As(err, &opErr):
		if opErr.Op == "dial" {
			return "connect failed", true
		}
		return "network error", true
	}
	return "", false
}
