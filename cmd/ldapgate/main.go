// Command ldapgate is an LDAP proxy that adds a Duo second factor to LDAP
// simple binds, and fails the way its administrator chose when Duo is down.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ldapgate/ldapgate/internal/app"
)

func main() {
	// SIGHUP is a reload request from the first instant: it never kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.RunReloadable(ctx, hup, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !app.Silent(err) {
			fmt.Fprintln(os.Stderr, "ldapgate:", err)
		}
		os.Exit(app.ExitCode(err))
	}
}
