package failmode

import (
	"context"
	"fmt"
)

// Factor is how the user proves the second factor when no passcode is typed.
type Factor string

const (
	FactorAuto     Factor = "auto"     // Duo picks: push if possible, else phone
	FactorPush     Factor = "push"     // Duo Push to the user's device
	FactorPhone    Factor = "phone"    // a phone call
	FactorPasscode Factor = "passcode" // a code appended to the password
)

// ParseFactor accepts the factors a section may configure as its default;
// the empty string means FactorAuto. A passcode is never a default: it comes
// from the password.
func ParseFactor(s string) (Factor, error) {
	switch Factor(s) {
	case "", FactorAuto:
		return FactorAuto, nil
	case FactorPush, FactorPhone:
		return Factor(s), nil
	}
	return "", fmt.Errorf("factor %q: must be auto, push or phone", s)
}

// Attempt is one request for a second factor, after the password was verified.
type Attempt struct {
	// Username is the name Duo knows the user by (the entry's username attribute).
	Username string
	// ClientIP is the LDAP client's address, sent to Duo so IP policies apply.
	ClientIP string
	// Factor is the factor to use; FactorPasscode requires Passcode.
	Factor Factor
	// Passcode is the one-time code the user appended to the password. It is a
	// secret: never log it.
	Passcode string
	// Server is the section the bind came to, shown to the user with the
	// push (with ClientIP) so that they see who asks.
	Server string
	// Admit, when set, is asked once Duo's preauth wants a second factor and
	// before the push, phone call or passcode is sent (factor is the one
	// about to be sent: push, phone, auto or passcode). An error stops the
	// attempt there: nothing more is sent to Duo. It is how a caller's
	// budget counts only what reaches the user.
	Admit func(ctx context.Context, factor Factor) error
}

// Verdict is Duo's answer when it answered. Allowed false means Duo said no.
type Verdict struct {
	Allowed bool
	// Bypass is true when preauth allowed the user without a second factor
	// (Duo's bypass status); Allowed is then true as well.
	Bypass bool
	// Message is Duo's status message ("Login request denied."), safe to log.
	Message string
	// Fraud is true when the user reported the request as fraudulent (Duo's
	// auth status "fraud"); Allowed is then false.
	Fraud bool
}
