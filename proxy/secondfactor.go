package proxy

import (
	"context"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// SecondFactor verifies the second factor of a user whose password the
// directory accepted.
//
// Verify returns Duo's verdict when Duo answered (Allowed false means the
// user was refused), or an error. Errors are *failmode.Error when the
// implementation could classify them; any other error is treated as an
// unknown outcome and denied.
type SecondFactor interface {
	Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error)
}

// Recorder receives one BindEvent per bind decision: the auth event log,
// metrics. It must not block.
type Recorder interface {
	RecordBind(BindEvent)
}

// Stage is the step at which a bind was decided.
type Stage string

const (
	StagePrimary   Stage = "primary"   // the password step (directory)
	StageSecondary Stage = "secondary" // the second-factor step
)

// BindEvent describes one bind decision. It never holds a password or a
// passcode.
type BindEvent struct {
	Time     time.Time
	Server   string
	ClientIP string
	// BindName is the name as the client typed it. It is never an identity:
	// only DN is.
	BindName string
	// DN is the entry the directory authenticated, as the directory spells
	// it; "" when the bind never got that far (or was anonymous).
	DN       string
	Username string // the name sent (or that would be sent) to Duo
	Stage    Stage
	Factor   string // auto, push, phone, passcode; "" when Duo was not asked
	Status   failmode.Status
	// Rule is the failmode rule for second-factor decisions, or a primary
	// outcome: "invalid_credentials", "directory_unavailable"...
	Rule     string
	Failmode bool
	// Cause is the second-factor outcome a decision after Duo rests on
	// (zero before it): the class and detail, as values.
	Cause    failmode.Outcome
	Msg      string
	Duration time.Duration
}

// Rules of BindEvents decided before (or without) the second factor. The
// second-factor rules are failmode's.
const (
	RuleInvalidCredentials   = "invalid_credentials"   // the directory refused the password, or no such user
	RuleDirectoryUnavailable = "directory_unavailable" // the directory (or the lookup account) failed
	RuleEmptyPassword        = "empty_password"        // unauthenticated bind refused
	RuleDirectoryRefused     = "directory_refused"     // the directory refused the bind with a code other than invalidCredentials
	RuleDirectoryBusy        = "directory_busy"        // every password-check connection to the directory was in use
	RuleAnonymous            = "anonymous"             // anonymous bind allowed by allow_anonymous
	RuleAnonymousRefused     = "anonymous_refused"     // anonymous bind refused
	RuleTLSRequired          = "tls_required"          // bind on a plaintext connection where TLS is required
	RuleLookupFailed         = "lookup_failed"         // the entry could not be identified
	RuleIdentityMismatch     = "identity_mismatch"     // the directory authenticated someone other than the entry found
	RuleNoUsername           = "no_username"           // the entry has no username attribute for Duo
	RuleUnsupportedBind      = "unsupported_bind"      // SASL, LDAPv2, an unknown authentication choice or a malformed bind
)

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(BindEvent)

// RecordBind calls f.
func (f RecorderFunc) RecordBind(e BindEvent) { f(e) }
