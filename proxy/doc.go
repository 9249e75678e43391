// Package proxy is ldapgate's only code that speaks LDAP. It listens as an
// LDAP server (gldap), relays every client to its own connection on the real
// directory (go-ldap), and gates simple binds with a second factor.
//
// A bind is a short pipeline (bind.go): parse, refuse the unauthenticated,
// split a passcode off the password, resolve the name to a DN, bind to the
// directory, look up the user, plan (exemptions), ask the second factor,
// decide (package failmode), respond. A wrong password stops the pipeline
// before the second factor: it never sends a push.
//
// Everything else (search, compare, modify, add, delete, modify DN, extended
// operations) is relayed unchanged on the client's upstream connection once
// a bind succeeded (relay.go).
package proxy
