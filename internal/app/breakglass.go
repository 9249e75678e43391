package app

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/breakglass"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
	"github.com/ldapgate/ldapgate/proxy"
	"github.com/ldapgate/ldapgate/store"
)

// kdf and kdfMax are the argon2id costs of new codes and the most a
// stored one may ask for (config's bounds).
var (
	kdf    = breakglass.Params{Time: config.BreakGlassKDFTime, MemoryKiB: config.BreakGlassKDFMemoryKiB, Threads: config.BreakGlassKDFThreads}
	kdfMax = breakglass.Params{Time: config.BreakGlassMaxKDFTime, MemoryKiB: config.BreakGlassMaxKDFMemoryKiB, Threads: config.BreakGlassMaxKDFThreads}
)

// glass is one section's break-glass wiring: nil fields when it has none.
type glass struct {
	codes       proxy.BreakGlass
	unreachable func() bool
	store       *store.Local
}

// close releases the section's record of uses, if it has one.
func (g glass) close() {
	if g.store != nil {
		g.store.Close()
	}
}

// openBreakGlass builds the section's keeper of break-glass codes, its
// record of uses (a store beside the codes file) and the Duo state it reads.
// A record already open for the same file (a running section, across a
// reload) is reused: it is locked, and opened once per process. opened
// reports whether the store is new (the caller closes it if it is not
// kept).
func (a *app) openBreakGlass(sc *config.Server, in *integration, open map[string]*store.Local) (g glass, opened bool, err error) {
	bg := sc.BreakGlass
	if !bg.Enabled() {
		return glass{}, false, nil
	}
	st := open[bg.UsedFile()]
	if st == nil {
		if st, err = store.Open(store.Options{MaxKeys: config.BreakGlassStoreMaxKeys, UsedFile: bg.UsedFile()}); err != nil {
			return glass{}, false, fmt.Errorf("break_glass: %w", err)
		}
		opened = true
	}
	k, err := breakglass.New(breakglass.Options{Section: sc.Name, Users: bg.Users, CodesFile: bg.CodesFile,
		MaxParams: kdfMax, Checks: config.BreakGlassChecks, Log: a.log}, a.glassUses(st))
	if err != nil {
		if opened {
			st.Close()
		}
		return glass{}, false, fmt.Errorf("break_glass.codes_file: %w", err)
	}
	tracker := in.tracker
	return glass{codes: k, store: st,
		unreachable: func() bool { return tracker.Status().State == duostate.Unreachable }}, opened, nil
}

// breakGlassAlerts raises an alert for every bind a break-glass code let
// in: the operational log, an auth-log notice and the webhook. The alert
// names the section and client address; the user is in the bind's own
// auth-log record (alerts carry no DN).
type breakGlassAlerts struct{ a *app }

func (b breakGlassAlerts) RecordBind(e failmode.BindEvent) {
	if e.Rule != failmode.RuleBreakGlass {
		return
	}
	b.a.alert(alert.Event{Time: e.Time, Kind: alert.KindBreakGlass, Server: e.Server,
		Msg: fmt.Sprintf("break-glass code used on %s from %s: a user got in without second factor while duo is unreachable (the auth log names them)", e.Server, e.ClientIP)})
}

func newBreakGlassCommand() *cobra.Command {
	var configPath, server, user string
	cmd := &cobra.Command{
		Use:   "break-glass",
		Short: "Issue, list and revoke one-time codes for use while Duo is unreachable",
		Long: `Break-glass codes let the users listed in a section's break_glass.users in on
their password and a one-time code while that section's Duo is unreachable and the
section would deny them. Codes are printed once, stored only as salted argon2id
hashes in break_glass.codes_file, and work once each. A running ldapgate sees new
codes and revocations at once.`,
	}
	cmd.PersistentFlags().StringVarP(&configPath, "config", "c", "/etc/ldapgate/config.yaml", "configuration file")
	section := func() (*config.Server, error) {
		cfg, err := config.Load(configPath)
		if err != nil {
			return nil, err
		}
		for _, s := range cfg.Servers {
			if s.Name == server {
				if !s.BreakGlass.Enabled() {
					return nil, fmt.Errorf("server %q has no break_glass.users", server)
				}
				return s, nil
			}
		}
		return nil, fmt.Errorf("no server section named %q", server)
	}

	var count int
	issue := &cobra.Command{
		Use:   "issue --server NAME --user DN [--count 10]",
		Short: "Print new codes for a listed user (replacing the user's earlier codes)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if count < 1 || count > config.MaxBreakGlassCount {
				return usageError{fmt.Errorf("--count %d is out of range; allowed 1 to %d", count, config.MaxBreakGlassCount)}
			}
			s, err := section()
			if err != nil {
				return err
			}
			if !listed(s.BreakGlass.Users, user) {
				return fmt.Errorf("%q is not in servers (%s).break_glass.users; add it there first", user, s.Name)
			}
			codes, err := breakglass.Issue(s.BreakGlass.CodesFile, s.Name, user, count, kdf, kdfMax, time.Now())
			if err != nil {
				return err
			}
			for _, code := range codes {
				if _, err := fmt.Fprintln(c.OutOrStdout(), code); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.ErrOrStderr(), "%d codes for %s on %s; each works once, only while Duo is unreachable. They are not shown again; earlier codes of this user on %s no longer work.\n",
				len(codes), user, s.Name, s.Name)
			return nil
		},
	}
	issue.Flags().IntVar(&count, "count", config.DefaultBreakGlassCount, "how many codes")
	issue.Flags().StringVar(&user, "user", "", "the user's DN (one of break_glass.users)")

	list := &cobra.Command{
		Use:   "list --server NAME",
		Short: "Show each user's remaining codes and when they were issued (never the codes)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := section()
			if err != nil {
				return err
			}
			sums, err := breakglass.List(s.BreakGlass.CodesFile, kdfMax)
			if err != nil {
				return err
			}
			return printBreakGlass(c.OutOrStdout(), s, sums)
		},
	}

	var all bool
	revoke := &cobra.Command{
		Use:   "revoke --server NAME (--user DN | --all)",
		Short: "Revoke a user's codes, or every code of the section",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if all == (user != "") {
				return usageError{fmt.Errorf("give --user DN or --all")}
			}
			s, err := section()
			if err != nil {
				return err
			}
			n, err := breakglass.Revoke(s.BreakGlass.CodesFile, s.Name, user, kdfMax)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.OutOrStdout(), "revoked %d codes on %s\n", n, s.Name)
			return err
		},
	}
	revoke.Flags().StringVar(&user, "user", "", "the user's DN")
	revoke.Flags().BoolVar(&all, "all", false, "every user of the section")

	for _, sub := range []*cobra.Command{issue, list, revoke} {
		sub.Flags().StringVar(&server, "server", "", "server section name")
		_ = sub.MarkFlagRequired("server")
	}
	_ = issue.MarkFlagRequired("user")
	cmd.AddCommand(issue, list, revoke)
	return cmd
}

func listed(users []string, user string) bool {
	for _, u := range users {
		if dn.Equal(u, user) {
			return true
		}
	}
	return false
}

// printBreakGlass prints one line per listed user, with those who have no
// codes left, and users with codes who are no longer listed.
func printBreakGlass(w io.Writer, s *config.Server, sums []breakglass.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tREMAINING\tISSUED\tLISTED")
	shown := map[int]bool{}
	for _, u := range s.BreakGlass.Users {
		remaining, issued := 0, "-"
		for i, sum := range sums {
			if sum.Section == s.Name && dn.Equal(sum.User, u) {
				shown[i] = true
				remaining, issued = sum.Remaining, sum.Issued.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\tyes\n", u, remaining, issued)
	}
	for i, sum := range sums {
		if sum.Section == s.Name && !shown[i] {
			fmt.Fprintf(tw, "%s\t%d\t%s\tno (codes do not work)\n", sum.User, sum.Remaining, sum.Issued.UTC().Format(time.RFC3339))
		}
	}
	return tw.Flush()
}
