package failmode

import (
	"errors"
	"fmt"
)

// Class names what happened when the second factor was asked.
//
// The zero value is Unknown, which every decision treats as a denial, so a
// forgotten classification can never let anyone in.
type Class int

const (
	// Unknown is an outcome nobody classified. It is always denied.
	Unknown Class = iota
	// Allowed means Duo approved the login (or preauth said the user bypasses 2FA).
	Allowed
	// Denied means Duo answered and said no: the user rejected the push,
	// typed a wrong passcode, is locked out or not enrolled.
	Denied
	// Unreachable means Duo could not be reached before authentication began:
	// DNS, refused or reset connections, connect/TLS timeouts, no answer within
	// the timeout, HTTP 5xx or an unparseable body at preauth. Only this class
	// invokes failmode.
	Unreachable
	// Degraded means Duo answered preauth but authentication did not complete
	// (auth timed out, failed in transport or with 5xx), or Duo rate-limits us.
	// Failmode is not invoked: the bind is denied.
	Degraded
	// Misconfigured means Duo rejected our request: bad integration or secret
	// key, bad signature, clock skew, HTTP 400/401/403. Never fails open.
	Misconfigured
	// Untrusted means Duo's TLS certificate did not verify. Never fails open:
	// an interception is indistinguishable from an outage.
	Untrusted
	// Local means ldapgate itself failed, not Duo: it ran out of descriptors,
	// memory or buffers (EMFILE, ENFILE, ENOMEM, ENOBUFS), the client went
	// away and cancelled the call, the code panicked, or the error was one
	// nobody recognised. It is evidence about this process, never about Duo:
	// the bind is denied, failmode is never invoked, and the shared Duo state
	// does not move.
	Local
	// Rejected means Duo answered and refused this one request as invalid
	// (HTTP 400, FAIL 400xx: for example a factor the user has no device
	// for). The bind is denied; it says nothing about the integration, whose
	// state does not move.
	Rejected
)

var classNames = [...]string{
	Unknown:       "unknown",
	Allowed:       "allowed",
	Denied:        "denied",
	Unreachable:   "unreachable",
	Degraded:      "degraded",
	Misconfigured: "misconfigured",
	Untrusted:     "untrusted",
	Local:         "local_error",
	Rejected:      "rejected",
}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return fmt.Sprintf("class(%d)", int(c))
	}
	return classNames[c]
}

// Classes lists every class, in declaration order; used by metrics and tests.
func Classes() []Class {
	return []Class{Unknown, Allowed, Denied, Unreachable, Degraded, Misconfigured, Untrusted, Local, Rejected}
}

// Stage is the step of the second-factor exchange an outcome belongs to.
type Stage int

const (
	// StagePreauth is the first call: is the user known, enrolled, bypassed?
	StagePreauth Stage = iota
	// StageAuth is the second call: push, phone or passcode.
	StageAuth
	// StageCheck is a health probe outside any bind.
	StageCheck
)

func (s Stage) String() string {
	switch s {
	case StagePreauth:
		return "preauth"
	case StageAuth:
		return "auth"
	case StageCheck:
		return "check"
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// Error is a second-factor failure that has been classified. The client that
// talks to Duo returns it; callers recover it with errors.As.
type Error struct {
	Class Class
	Stage Stage
	// Detail is a short, operator-facing cause ("connection refused",
	// "HTTP 503", "no answer within 10s"). It never holds a secret.
	Detail string
	// Err is the underlying error, for logs.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("duo %s %s", e.Stage, e.Class)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Outcome is what the second factor produced for one bind.
type Outcome struct {
	Class  Class
	Stage  Stage
	Detail string
	// Bypass is true when Duo allowed the user at preauth without asking
	// for a second factor (Class is Allowed).
	Bypass bool
}

// OutcomeOf turns the result of a second-factor call into an Outcome:
// a classified error keeps its class; an unclassified error is Unknown (and
// so denied); no error means the verdict stands, its message as the detail.
func OutcomeOf(v Verdict, err error) Outcome {
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return Outcome{Class: fe.Class, Stage: fe.Stage, Detail: fe.Detail}
		}
		return Outcome{Class: Unknown, Detail: "unclassified error"}
	}
	if v.Allowed {
		return Outcome{Class: Allowed, Bypass: v.Bypass, Detail: v.Message}
	}
	return Outcome{Class: Denied, Detail: v.Message}
}
