package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/config"
)

func newCheckCommand() *cobra.Command {
	var path, format string
	var online, strict bool
	cmd := &cobra.Command{
		Use:   "check --config FILE [--online] [--strict] [--format text|json]",
		Short: "Validate a configuration file and audit it; every problem is named by its key path",
		Long: `Validate a configuration file; every problem is named by its key path.

Then audit it: findings are what a valid file should not do (a safe section
without secure_groups, exempt_primary_bind, cleartext hops, secret files
others can read...), each with a stable ID, a severity and its key. They do
not fail the check unless --strict; list reviewed IDs under check.accept in
the file to silence them.

With --online, also prove that every outside party answers: each directory
URL is dialled (TLS details shown) and bound with the lookup account, each
secure group is read, and each Duo integration gets a signed /auth/v2/check
with its clock compared to this machine's.

The exit status is 1 when the file is invalid, an online check failed, or
(--strict) there are findings. --format json prints one object for CI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format must be text or json, not %q", format)}
			}
			rep := checkReport{File: path, Problems: []problem{}, Findings: []config.Finding{}}
			cfg, err := config.Load(path)
			var ve *config.ValidationError
			switch {
			case errors.As(err, &ve):
				for _, p := range ve.Problems {
					rep.Problems = append(rep.Problems, problem{Path: p.Path, Message: p.Msg})
				}
			case err != nil:
				return err // unreadable or unparsable: nothing to report on
			default:
				rep.Valid = true
				rep.Directories, rep.Servers = len(cfg.Directories), len(cfg.Servers)
				rep.Findings = append(rep.Findings, cfg.Audit()...)
				if online {
					rep.Online = checkOnline(cmd.Context(), cfg)
				}
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := rep.writeText(out, err); err != nil {
				return err
			}
			if !rep.Valid || rep.onlineFailed() || (strict && len(rep.Findings) > 0) {
				return exitStatus(1) // said already
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/ldapgate/config.yaml", "configuration file")
	cmd.Flags().BoolVar(&online, "online", false, "also connect to every directory URL and Duo integration")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail when the audit has findings")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// checkReport is what check found, as --format json prints it.
type checkReport struct {
	File        string           `json:"file"`
	Valid       bool             `json:"valid"`
	Directories int              `json:"directories"`
	Servers     int              `json:"servers"`
	Problems    []problem        `json:"problems"`
	Findings    []config.Finding `json:"findings"`
	Online      []onlineResult   `json:"online,omitempty"`
}

type problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (r checkReport) onlineFailed() bool {
	for _, o := range r.Online {
		if !o.OK {
			return true
		}
	}
	return false
}

func (r checkReport) writeText(w io.Writer, loadErr error) error {
	if !r.Valid {
		_, err := fmt.Fprintln(w, loadErr)
		return err
	}
	if _, err := fmt.Fprintf(w, "%s: ok (%d directories, %d server sections)\n", r.File, r.Directories, r.Servers); err != nil {
		return err
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "finding: %s\n", f)
	}
	for _, o := range r.Online {
		fmt.Fprintln(w, o)
	}
	return nil
}
