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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !app.Silent(err) {
			fmt.Fprintln(os.Stderr, "ldapgate:", err)
		}
		os.Exit(app.ExitCode(err))
	}
}
