// Command ldapgate is an LDAP proxy that adds a Duo second factor to LDAP
// simple binds, and fails the way its administrator chose when Duo is down.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		var es exitStatus
		if !errors.As(err, &es) {
			fmt.Fprintln(os.Stderr, "ldapgate:", err)
		}
		os.Exit(exitCode(err))
	}
}
