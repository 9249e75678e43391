package failmode

import "fmt"

// Mode is a section's failmode: what to do when Duo is unreachable.
type Mode string

const (
	// Secure (fail closed) denies binds while Duo is unreachable. The default.
	Secure Mode = "secure"
	// Safe (fail open) lets users in on their password alone while Duo is
	// unreachable, except members of secure groups.
	Safe Mode = "safe"
)

// ParseMode accepts "safe" or "secure"; the empty string means Secure.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Secure:
		return Secure, nil
	case Safe:
		return Safe, nil
	}
	return "", fmt.Errorf("failmode %q: must be safe or secure", s)
}

// Policy is what a server section decided about second factors.
type Policy struct {
	Mode Mode
	// PrimaryOnly is the emergency switch: while set, a Safe section lets
	// users in on their password without asking Duo. Secure sections and
	// secure-group members are not affected.
	PrimaryOnly bool
}

// Subject is what is known about the user behind a bind whose password the
// directory accepted.
type Subject struct {
	// ExemptDN: the bind DN is in (or under) one of the section's exempt DNs.
	ExemptDN bool
	// PrimaryBind: this is the first bind on the connection and the section
	// sets exempt_primary_bind.
	PrimaryBind bool
	// SecureGroup: the user is in one of the section's secure groups, or
	// membership could not be determined (unknown counts as privileged).
	SecureGroup bool
}
