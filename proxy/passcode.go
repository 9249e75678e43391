package proxy

import (
	"strings"

	"github.com/ldapgate/ldapgate/failmode"
)

// splitPasscode separates a second-factor choice appended to a password.
//
// With delimiter ",", "secret,123456" is password "secret" and passcode
// "123456" (6 to 8 digits); "secret,push" and "secret,phone" choose a factor.
// The split happens at the last delimiter only, and only when what follows it
// is one of those forms: a password that contains the delimiter ("pa,ss") is
// left whole. A password that itself ends in delimiter+digits must be
// followed by an explicit factor ("pa,123456,push"). The whole string is
// never retried as a password after a failed split, so one attempt costs one
// directory bind (and at most one lockout count).
func splitPasscode(password, delimiter string, def failmode.Factor) (pw, passcode string, factor failmode.Factor) {
	if delimiter == "" {
		return password, "", def
	}
	i := strings.LastIndex(password, delimiter)
	if i < 0 {
		return password, "", def
	}
	head, tail := password[:i], password[i+len(delimiter):]
	switch {
	case tail == string(failmode.FactorPush):
		return head, "", failmode.FactorPush
	case tail == string(failmode.FactorPhone):
		return head, "", failmode.FactorPhone
	case isPasscode(tail):
		return head, tail, failmode.FactorPasscode
	}
	return password, "", def
}

func isPasscode(s string) bool {
	if len(s) < 6 || len(s) > 8 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
