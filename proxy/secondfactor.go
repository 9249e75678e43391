package proxy

import (
	"context"

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
