// Package failmode is the vocabulary and the decision logic of ldapgate.
//
// A bind whose password the directory accepted still needs a second factor.
// This package decides, without any network access, whether such a bind may
// succeed: it names what the second factor said or failed to say (a Class),
// holds the section's Policy (failmode safe or secure, primary-only mode), and
// turns both, with what is known about the user (a Subject), into a Decision.
//
// The caller acts on the Decision: it writes the LDAP response, logs and counts.
// Anything this package does not recognise is denied.
package failmode
