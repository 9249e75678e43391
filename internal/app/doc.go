// Package app is the ldapgate program: the command line (Run), and the
// wiring that assembles config, the directory clients, the Duo clients and
// their state, the proxy sections, the observers and the admin, health and
// metrics listeners into one running gateway. It holds no rule of its own:
// every decision lives in the package that owns it. cmd/ldapgate only
// turns signals into a context and Run's error into an exit status, so
// tests start the whole program in-process with Run.
package app
