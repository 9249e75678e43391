// Command ldapgate is an LDAP proxy that adds a Duo second factor to LDAP
// simple binds, and fails the way its administrator chose when Duo is down.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var es exitStatus
		if !errors.As(err, &es) {
			fmt.Fprintln(os.Stderr, "ldapgate:", err)
		}
		os.Exit(exitCode(err))
	}
}

// run is the whole program: the command line args (without the program
// name), what it prints, and ctx, whose end stops a serving program. Tests
// start it in-process; only main exits.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}
