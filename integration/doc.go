// Package integration holds ldapgate's end-to-end tests: a real OpenLDAP
// slapd on loopback, the project's Duo Auth API simulator, and ldapgate,
// driven by go-ldap and the OpenLDAP command-line clients.
//
// Most tests run the program in this process (app.Run, every listener on
// port 0, the addresses read from its log) against one slapd shared by the
// package. Tests that need ldapgate as a process of its own (its /proc
// entry, a descriptor limit, signals, the CLI, the demo) run the
// race-enabled binary, built on first use; tests that write to the
// directory, stop it or configure it specially get a slapd of their own.
// See harness_test.go.
package integration
