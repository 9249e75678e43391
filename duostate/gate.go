package duostate

import (
	"context"
	"errors"

	"github.com/ldapgate/ldapgate/failmode"
)

// ErrKnownDown is wrapped by every error the Gate returns without asking
// Duo: the tracker already knew Duo was unreachable or misconfigured.
var ErrKnownDown = errors.New("duostate: duo known to be down")

// Gate is a second factor that answers at once while its Tracker knows Duo is
// down, and otherwise hands the attempt to the next second factor. It
// satisfies the proxy's SecondFactor interface.
type Gate struct {
	t    *Tracker
	next interface {
		Verify(context.Context, failmode.Attempt) (failmode.Verdict, error)
	}
}

// NewGate puts a Gate in front of next (a duoclient.Client whose Observe hook
// feeds t).
func NewGate(t *Tracker, next interface {
	Verify(context.Context, failmode.Attempt) (failmode.Verdict, error)
}) *Gate {
	return &Gate{t: t, next: next}
}

// Verify returns next's answer while the integration is OK or Degraded: the
// Gate adds one atomic load and reports nothing (the Observe hook does).
// While Unreachable or Misconfigured it returns at once, without calling
// next, a *failmode.Error at StagePreauth wrapping ErrKnownDown: class
// Unreachable (the failmode decides), or Misconfigured or Untrusted (denied,
// never fails open), with the Detail "known <state> since <RFC3339>: <cause>"
// (failmode prefixes the class, so the reason reads "duo unreachable: known
// unreachable since ...").
func (g *Gate) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	if down := g.t.down.Load(); down != nil {
		e := *down // callers own what they get
		return failmode.Verdict{}, &e
	}
	return g.next.Verify(ctx, a)
}
