// Package integration holds ldapgate's end-to-end tests: a real OpenLDAP
// slapd on loopback, the project's Duo Auth API simulator, and the built
// ldapgate binary, driven by go-ldap and the OpenLDAP command-line clients.
package integration
