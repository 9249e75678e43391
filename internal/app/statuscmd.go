package app

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/health"
	"github.com/ldapgate/ldapgate/internal/human"
)

// newStatusCommand prints what /status says, for people, asked of the
// running process over admin.socket.
func newStatusCommand() *cobra.Command {
	var configPath, socket string
	var servers []string
	cmd := &cobra.Command{
		Use:   "status [--server NAME ...]",
		Short: "Show the running ldapgate's state: per section readiness, Duo, directory URLs, primary-only",
		Long: `status asks the running ldapgate, over its admin socket, what /status says and
prints it for people: per section, whether it is ready and why not, the Duo
integration's state, the directory and each of its URLs up or down, and
primary-only mode. It exits non-zero when the socket cannot be reached.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			resp, err := callAdmin(c.Context(), configPath, socket, admin.Request{Op: admin.OpProgramStatus, Servers: servers})
			if err != nil {
				return err
			}
			if resp.Status == nil {
				return errors.New("the admin socket's answer carries no status")
			}
			return printStatus(c.OutOrStdout(), *resp.Status, time.Now())
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "/etc/ldapgate/config.yaml", "configuration file (to find admin.socket)")
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket path (overrides the configuration)")
	cmd.Flags().StringSliceVar(&servers, "server", nil, "server section name (repeatable); default: all")
	return cmd
}

// printStatus writes st for people; now dates the "since" durations.
func printStatus(w io.Writer, st health.Status, now time.Time) error {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.RFC3339), human.Duration(now.Sub(t).Round(time.Second)))
	}
	fmt.Fprintf(w, "ldapgate %s, up %s (started %s)\n", st.Version,
		human.Duration((time.Duration(st.UptimeSeconds) * time.Second).Round(time.Second)), st.Started.Local().Format(time.RFC3339))
	if len(st.Sections) == 0 {
		fmt.Fprintln(w, "\nno server sections")
	}
	for _, sec := range st.Sections {
		ready, why := health.Ready(sec)
		fmt.Fprintln(w)
		if ready {
			fmt.Fprintf(w, "%s: ready\n", sec.Name)
		} else {
			fmt.Fprintf(w, "%s: NOT READY: %s\n", sec.Name, why)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  failmode\t%s\n", sec.Failmode)
		duo := fmt.Sprintf("%s since %s, integration %s", sec.DuoState, ago(sec.DuoSince), sec.DuoIntegration)
		if sec.DuoLastError != "" {
			duo += "; last error: " + sec.DuoLastError
		}
		fmt.Fprintf(tw, "  duo\t%s\n", duo)
		po := "off"
		if sec.PrimaryOnlyUntil != nil {
			po = fmt.Sprintf("ON until %s (%s left)", sec.PrimaryOnlyUntil.Local().Format(time.RFC3339),
				human.Duration(sec.PrimaryOnlyUntil.Sub(now).Round(time.Second)))
		}
		fmt.Fprintf(tw, "  primary-only\t%s\n", po)
		dir := sec.Directory + ": up"
		if !sec.DirectoryUp {
			dir = sec.Directory + ": DOWN: " + cmp.Or(sec.DirectoryProblem, "unreachable")
		}
		fmt.Fprintf(tw, "  directory\t%s\n", dir)
		for _, u := range sec.DirectoryURLs {
			state := "up since " + ago(u.Since)
			if !u.Up {
				state = "DOWN since " + ago(u.Since) + ": " + u.Error
			}
			fmt.Fprintf(tw, "\t%s\t%s\n", u.URL, state)
		}
		if sec.SecureGroups != "" {
			fmt.Fprintf(tw, "  secure groups\t%s\n", sec.SecureGroups)
		}
		listening := "yes"
		if !sec.Listening {
			listening = "NO"
		}
		fmt.Fprintf(tw, "  listening\t%s\n", listening)
		fmt.Fprintf(tw, "  connections\t%d\n", sec.Connections)
		fmt.Fprintf(tw, "  binds\t%s\n", bindCounts(sec.Binds))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// bindCounts is "outcome=n ..." sorted by outcome, or "none".
func bindCounts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}
