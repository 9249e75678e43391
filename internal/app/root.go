package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/config"
)

// version is set at build time with
// -ldflags "-X github.com/ldapgate/ldapgate/internal/app.version=...".
var version = "dev"

// Version returns the build's version, falling back to module information.
func Version() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

// exitStatus ends the program with a given status and nothing more to
// say: the command already printed why (ldapgate try exits with the LDAP
// result code, as ldapwhoami does).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the process exit status for an error Run returned: the
// status an exitStatus carries, 2 for a usage error, 1 for anything else.
func ExitCode(err error) int {
	var ue usageError
	var es exitStatus
	switch {
	case errors.As(err, &es):
		return int(es)
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// Silent reports whether err, returned by Run, was already explained to the
// user (an exitStatus): main then prints nothing more.
func Silent(err error) bool {
	var es exitStatus
	return errors.As(err, &es)
}

// Run is the whole program: the command line args (without the program
// name), what it prints, and ctx, whose end stops a serving program. Tests
// start it in-process; only main exits.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return RunReloadable(ctx, nil, args, stdout, stderr)
}

// RunReloadable is Run for a process that turns SIGHUP into values on
// reload: a serving program reloads its configuration and reopens its log
// files on each (main passes its signal channel; tests reload through the
// admin socket instead).
func RunReloadable(ctx context.Context, reload <-chan os.Signal, args []string, stdout, stderr io.Writer) error {
	root := newRootCommand(reload)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func newRootCommand(reload <-chan os.Signal) *cobra.Command {
	root := &cobra.Command{
		Use:           "ldapgate",
		Short:         "LDAP proxy that adds Duo multi-factor authentication to simple binds",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(reload), newReloadCommand(), newCheckCommand(), newVersionCommand(), newPrimaryOnlyCommand(),
		newDemoCommand(), newDuoSimCommand(), newTryCommand(), newStatusCommand(), newBreakGlassCommand(),
		newImportCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "ldapgate", Version())
			return err
		},
	}
}

// newLogger builds the operational logger (stderr) from the config.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
