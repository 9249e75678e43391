package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/demo"
)

// newDemoCommand runs the whole product on loopback with sample data: the
// first thing a new administrator should try.
func newDemoCommand() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo [--base-port N] [--listen HOST]",
		Short: "Run a sample directory, a Duo simulator and ldapgate on loopback, with a guided tour",
		Long: `demo starts, in one process: a small LDAP directory with sample people, the
Duo Auth API simulator (NOT Duo) and ldapgate itself with two server sections,
vpn (failmode secure) and wiki (failmode safe), plus the health listener. It
prints commands to paste into another terminal, each with the outcome to
expect, and runs until Ctrl-C.

Ports: the directory on --base-port, vpn +1, wiki +2, health +3, the Duo
simulator +4 and its control API +5.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Out = c.OutOrStdout()
			opts.Log = slog.New(slog.NewTextHandler(c.ErrOrStderr(), nil))
			opts.Self = os.Args[0]
			return demo.Run(c.Context(), opts, func(ctx context.Context, cfg *config.Config) error {
				return serve(ctx, cfg, newLogger(c.ErrOrStderr(), cfg.Log))
			})
		},
	}
	cmd.PersistentFlags().IntVar(&opts.BasePort, "base-port", demo.DefaultBasePort, "first of the six consecutive ports the demo uses")
	cmd.PersistentFlags().StringVar(&opts.Listen, "listen", demo.DefaultListen, "loopback address every part of the demo listens on")
	cmd.AddCommand(newDemoOutageCommand(&opts))
	return cmd
}

func newDemoOutageCommand(opts *demo.Options) *cobra.Command {
	var help strings.Builder
	for _, o := range demo.Outages {
		fmt.Fprintf(&help, "  %-13s %s\n", o.Name, o.Effect)
	}
	help.WriteString("  status        print the simulator's state\n")
	return &cobra.Command{
		Use:   "outage on|off|degrade|misconfigure|hang|status [--base-port N]",
		Short: "Make the running demo's Duo unreachable, degraded or misconfigured, and back",
		Long:  "outage drives the demo's Duo simulator through its control API:\n\n" + help.String(),
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("want one of %s, or status", strings.Join(demo.OutageNames(), ", "))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			out := c.OutOrStdout()
			if args[0] == "status" {
				o, fault, err := demo.CurrentOutage(c.Context(), *opts)
				if err != nil {
					return err
				}
				if o.Name == "" {
					_, err = fmt.Fprintf(out, "Duo simulator fault: %s (set outside the tour)\n", fault)
					return err
				}
				_, err = fmt.Fprintf(out, "%s: %s\n", o.Name, o.Effect)
				return err
			}
			o, ok := demo.LookupOutage(args[0])
			if !ok {
				return usageError{fmt.Errorf("unknown outage %q: want one of %s, or status", args[0], strings.Join(demo.OutageNames(), ", "))}
			}
			if err := demo.SetOutage(c.Context(), *opts, o); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s: %s\n", o.Name, o.Effect)
			if o.Fault == "" {
				if err := demo.WaitDuoSeen(c.Context(), *opts, 20*time.Second); err != nil {
					fmt.Fprintf(out, "ldapgate has not reported Duo healthy yet (%v); the next binds may still be decided as during the outage.\n", err)
				}
			}
			return nil
		},
	}
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}
