package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/config"
)

// newReloadCommand asks the running process, over admin.socket, to read its
// configuration file again (as SIGHUP does) and prints what changed, or the
// problems that kept the running configuration (exit status 1).
func newReloadCommand() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the running ldapgate read its configuration file again and reopen its logs (as SIGHUP does)",
		Long: `reload asks the running ldapgate, over admin.socket, to read and validate its
configuration file. A valid file takes effect at once without dropping a
connection; a file with problems changes nothing, and its problems are printed
(each naming its key path) with exit status 1. The auth log is reopened either way.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path := socket
			if path == "" {
				var err error
				if path, err = config.AdminSocket(configPath); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(c.Context(), admin.ReloadTimeout+5*time.Second)
			defer cancel()
			resp, err := admin.Call(ctx, path, admin.Request{Op: admin.OpReload})
			out := c.OutOrStdout()
			if err != nil {
				if !errors.Is(err, admin.ErrRefused) {
					return err
				}
				if resp.Reload == nil || len(resp.Reload.Problems) == 0 {
					return errors.New(resp.Error)
				}
				errOut := c.ErrOrStderr()
				fmt.Fprintf(errOut, "configuration not reloaded; the running configuration stays. %d problem(s):\n", len(resp.Reload.Problems))
				for _, p := range resp.Reload.Problems {
					fmt.Fprintln(errOut, "  "+p)
				}
				return exitStatus(1)
			}
			if resp.Reload != nil {
				_, err = fmt.Fprintln(out, resp.Reload.Changes)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "/etc/ldapgate/config.yaml", "configuration file (to find admin.socket)")
	cmd.Flags().StringVar(&socket, "socket", "", "admin socket path (overrides the configuration)")
	return cmd
}
