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
	"strings"
	"syscall"
	"time"

	duoapi "github.com/duosecurity/duo_api_golang"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/human"
)

// The classification: the single description of how a failed Duo call
// becomes a class. Rows are tried top to bottom; the first that matches wins.
//
//	what happened                                  preauth        auth           check
//	local resource errno anywhere in the chain:
//	  EMFILE, ENFILE, ENOMEM, ENOBUFS,
//	  EADDRNOTAVAIL (no local port), EPERM,
//	  EACCES (local policy refused the socket)     Local          Local          Local
//	certificate does not verify                    Untrusted      Untrusted      Untrusted
//	the HTTPS proxy refused CONNECT (any non-200)  Misconfigured  Misconfigured  Misconfigured
//	HTTP 400 or FAIL 400xx, the status and the
//	  code not disagreeing (400 + 40103 does)      Rejected       Rejected       Misconfigured
//	HTTP 429, FAIL 429xx                           Degraded       Degraded       Degraded
//	any other 4xx: HTTP 401, 403, 404...,
//	  FAIL 401xx (keys, signature, clock), 403xx   Misconfigured  Misconfigured  Misconfigured
//	HTTP 5xx (or 3xx), FAIL 5xxxx                  Unreachable    Degraded       Unreachable
//	the caller cancelled its context               Local          Local          Local
//	response too large                             Unreachable    Degraded       Unreachable
//	DNS failure (*net.DNSError, see below)         Unreachable    Degraded       Unreachable
//	our or the caller's deadline, unparseable
//	  body, connect/read timeouts, refused,
//	  reset, no route, closed by server, not a
//	  TLS server, TLS alert from the server        Unreachable    Degraded       Unreachable
//	FAIL without a usable code (Duo answered,
//	  oddly: not Local, not Unreachable)           Unknown        Unknown        Unknown
//	anything else, including any other
//	  *net.OpError or *url.Error                   Local          Local          Local
//
// Verify also returns Local, without calling Duo, for an invalid attempt
// (a caller bug). Deny, enroll and fraud are Verdicts, not errors.
//
// Only evidence about Duo (or the path to it) is Unreachable. An errno is
// always the result of one of our own system calls; the ones above say that
// this process, not Duo, is short of something, so they are checked before
// any transport rule, wherever they sit in the chain (errors.Is). Errnos
// that report what the network or Duo did (ECONNREFUSED, ECONNRESET,
// EHOSTUNREACH, ENETUNREACH, ETIMEDOUT) stay transport evidence. An error
// nobody recognises is not evidence, so it is Local: denied, and it does not
// move the shared Duo state.
//
// What can and cannot be told apart, on types alone (Go 1.26, read in
// $GOROOT/src/net):
//   - A dial that fails for want of a descriptor is a *net.OpError{Op:
//     "dial"} wrapping *os.SyscallError{"socket", EMFILE} inside the
//     *url.Error: errors.Is finds the errno.
//   - A *net.DNSError does not: newDNSError keeps only context errors in
//     UnwrapErr and flattens every other cause to the Err string, so the
//     Go resolver's own "socket: too many open files" is, by type, the same
//     as a DNS server that refused or timed out (both set IsTemporary). The
//     cgo resolver is worse: out of descriptors, getaddrinfo answered "no
//     such host" (IsNotFound) in TestRealEMFILE, and its EAI_SYSTEM errno
//     is flattened the same way. dialContext in transport.go therefore
//     resolves with a resolver of its own (Go's, whose Dial hook sees every
//     socket it opens) and adds the local errno its dials met to the chain.
//     What stays indistinguishable: a local fault that made the resolver
//     skip /etc/hosts or fall back from an unreadable resolv.conf to
//     localhost:53 (net ignores those open errors), and starvation that
//     only makes things slow (a timeout is a timeout).
//   - Remote TLS alerts are *net.OpError{Op: "remote error"}, not
//     tls.AlertError (that one is for QUIC); both are recognised.
//
// Everything is decided on types (errors.As/Is), never on error text.

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
		return fmt.Sprintf("no answer within %s (caller's deadline)", human.Duration(pd.Sub(t.start)))
	}
	return "no answer within " + human.Duration(t.budget)
}

// classify turns an error from a duo_api_golang call into a classified error.
func classify(stage failmode.Stage, err error, tm timing) *failmode.Error {
	fe := func(class failmode.Class, detail string) *failmode.Error {
		return &failmode.Error{Class: class, Stage: stage, Detail: detail, Err: err}
	}
	if detail, ok := localProblem(err); ok {
		return fe(failmode.Local, detail)
	}
	if detail, ok := certProblem(err); ok {
		return fe(failmode.Untrusted, detail)
	}
	var pe *ProxyRefusedError
	if errors.As(err, &pe) {
		return fe(failmode.Misconfigured, pe.Error())
	}
	var se *StatusError
	if errors.As(err, &se) {
		return classifyStatus(stage, se, err)
	}
	if perr := tm.parent.Err(); errors.Is(perr, context.Canceled) {
		// The caller gave up (client gone, shutdown): says nothing about Duo.
		err = withCause(err, perr)
		return fe(failmode.Local, "canceled by caller")
	}
	if errors.Is(err, ErrResponseTooLarge) {
		return fe(transient(stage), "response too large")
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
		return fe(transient(stage), "connect timeout after "+human.Duration(tm.phase))
	case errors.As(err, &netErr) && netErr.Timeout():
		return fe(transient(stage), "no answer within "+human.Duration(tm.phase))
	}
	if detail, ok := netProblem(err); ok {
		return fe(transient(stage), detail)
	}
	// Not evidence about Duo: an error nobody recognises must never open a
	// safe section.
	return fe(failmode.Local, "unclassified error")
}

// localErrnos are the errnos that say this process is short of something,
// or that local policy refused its own socket: evidence about ldapgate,
// never about Duo.
var localErrnos = []syscall.Errno{
	syscall.EMFILE,        // per-process descriptor limit
	syscall.ENFILE,        // system-wide descriptor limit
	syscall.ENOMEM,        // kernel memory
	syscall.ENOBUFS,       // socket buffers
	syscall.EADDRNOTAVAIL, // no free local port or address to connect from
	syscall.EPERM,         // local firewall, seccomp or LSM refused the socket
	syscall.EACCES,
}

// localProblem names a local resource or policy failure anywhere in err's
// chain.
func localProblem(err error) (string, bool) {
	for _, errno := range localErrnos {
		if errors.Is(err, errno) {
			return "local error: " + errno.Error(), true
		}
	}
	return "", false
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

// netProblem names a transport failure that is evidence about Duo or the
// path to it. A *net.OpError it does not recognise is not such evidence.
func netProblem(err error) (string, bool) {
	var (
		record tls.RecordHeaderError
		alert  tls.AlertError
		opErr  *net.OpError
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &record):
		return "not a TLS server", true
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		// The HTTPS proxy itself cannot be reached: the path to Duo is down.
		return "HTTPS proxy unreachable: " + opErr.Err.Error(), true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return "connection reset", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server", true
	case errors.As(err, &alert), errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports the server's alert as OpError "remote error".
		return "TLS handshake failed", true
	}
	return "", false
}
