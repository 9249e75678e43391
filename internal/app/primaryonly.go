package app

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/internal/human"
	"github.com/ldapgate/ldapgate/primaryonly"
)

// newPrimaryOnlyCommand is the emergency switch's CLI. It talks to the
// running process over admin.socket; nothing else can change it at run time.
func newPrimaryOnlyCommand() *cobra.Command {
	var configPath, socket string
	var servers []string
	var forDur time.Duration
	cmd := &cobra.Command{
		Use:   "primary-only",
		Short: "Let failmode=safe sections accept passwords alone for a while (emergency switch)",
		Long: `Primary-only mode lets users of failmode=safe sections in on their directory
password alone, without Duo, for a bounded time (default 1h, at most 4h). It never
applies to failmode=secure sections or to members of secure_groups, expires by
itself, and does not survive a restart of ldapgate. Every bind it allows is logged.`,
	}
	cmd.PersistentFlags().StringVarP(&configPath, "config", "c", "/etc/ldapgate/config.yaml", "configuration file (to find admin.socket)")
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "admin socket path (overrides the configuration)")
	call := func(c *cobra.Command, req admin.Request) error {
		resp, err := callAdmin(c.Context(), configPath, socket, req)
		if err != nil {
			return err
		}
		return printPrimaryOnly(c.OutOrStdout(), resp.PrimaryOnly)
	}
	enable := &cobra.Command{
		Use:   "enable [--server NAME ...] [--for 1h]",
		Short: "Enable primary-only mode on safe sections (all of them by default)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if forDur > primaryonly.MaxDuration {
				return usageError{fmt.Errorf("refused: %s exceeds the %s maximum", human.Duration(forDur), human.Duration(primaryonly.MaxDuration))}
			}
			return call(c, admin.Request{Op: admin.OpEnable, Servers: servers, For: forDur.String()})
		},
	}
	enable.Flags().StringSliceVar(&servers, "server", nil, "server section name (repeatable); default: every safe section")
	enable.Flags().DurationVar(&forDur, "for", primaryonly.DefaultDuration, "how long, at most 4h")
	disable := &cobra.Command{
		Use:   "disable [--server NAME ...]",
		Short: "Disable primary-only mode (on every section by default)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return call(c, admin.Request{Op: admin.OpDisable, Servers: servers})
		},
	}
	disable.Flags().StringSliceVar(&servers, "server", nil, "server section name (repeatable); default: all")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show primary-only mode per section",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return call(c, admin.Request{Op: admin.OpStatus})
		},
	}
	cmd.AddCommand(enable, disable, status)
	return cmd
}

func printPrimaryOnly(w io.Writer, entries []primaryonly.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tFAILMODE\tPRIMARY-ONLY")
	for _, e := range entries {
		state := "off"
		if !e.Until.IsZero() {
			state = fmt.Sprintf("on until %s (%s left)", e.Until.Local().Format(time.RFC3339),
				human.Duration(time.Until(e.Until).Round(time.Second)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Server, e.Failmode, state)
	}
	return tw.Flush()
}
