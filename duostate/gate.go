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
// down (but for one trial bind at a time while Unreachable), and otherwise
// hands the attempt to the next second factor. It satisfies the proxy's
// SecondFactor interface.
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
//
// While Unreachable or Misconfigured it returns at once, without calling
// next, a *failmode.Error at StagePreauth wrapping ErrKnownDown: class
// Unreachable (the failmode decides), or Misconfigured or Untrusted (denied,
// never fails open), with the Detail "known <state> since <RFC3339>: <cause>"
// (failmode prefixes the class, so the reason reads "duo unreachable: known
// unreachable since ...").
//
// The exception is the trial: while Unreachable (never while
// Misconfigured), one bind at a time, FastProbeInterval after the previous
// trial started and ended, goes to next as usual and gets next's answer. If Duo
// answered its preauth (a Verdict, or an error at StageAuth), the Tracker
// leaves Unreachable.
func (g *Gate) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	down := g.t.down.Load()
	if down == nil {
		return g.next.Verify(ctx, a)
	}
	if down.Class == failmode.Unreachable && g.t.startTrial() {
		return g.trial(ctx, a)
	}
	e := *down // callers own what they get
	return failmode.Verdict{}, &e
}

// trial sends one bind to Duo while it is known unreachable and tells the
// Tracker whether Duo answered its preauth. A panic in next ends the trial
// as failed.
func (g *Gate) trial(ctx context.Context, a failmode.Attempt) (v failmode.Verdict, err error) {
	answered := false
	defer func() { g.t.endTrial(answered) }()
	v, err = g.next.Verify(ctx, a)
	answered = preauthAnswered(err)
	return v, err
}

// preauthAnswered reports whether the result of a second-factor call shows
// that Duo answered its preauth: no error (Duo gave a verdict), a classified
// error at the auth step (which only starts after a good preauth), or a
// preauth Duo itself refused as invalid (400) or rate-limited (429): an
// answer, however unwelcome, proves Duo reachable.
func preauthAnswered(err error) bool {
	if err == nil {
		return true
	}
	var fe *failmode.Error
	if !errors.As(err, &fe) {
		return false
	}
	switch {
	case fe.Stage == failmode.StageAuth:
		return true
	case fe.Stage == failmode.StagePreauth:
		return fe.Class == failmode.Rejected || fe.Class == failmode.Degraded
	}
	return false
}
