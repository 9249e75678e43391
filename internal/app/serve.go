package app

import (
	"context"
	"log/slog"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/health"
)

func newServeCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run every server section until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, newLogger(cmd.ErrOrStderr(), cfg.Log))
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/ldapgate/config.yaml", "configuration file")
	return cmd
}

// maxPDU bounds the size of one LDAP message, from clients and from the
// directory alike: without it a message announcing a 2 GiB length makes the
// BER decoder reserve that much memory.
const maxPDU = 16 << 20

// serve assembles the program (wire.go) and runs every part until ctx is
// cancelled or one part fails.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ber.MaxPacketLengthBytes = maxPDU
	for _, f := range cfg.Audit() {
		log.Warn("configuration finding (ldapgate check)", "id", f.ID, "severity", f.Severity, "key", f.Path, "finding", f.Message)
	}
	a, err := assemble(cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	started := time.Now()

	g, ctx := errgroup.WithContext(ctx)
	// The LDAP listeners outlive the signal by the lame-duck delay, while
	// /readyz already answers 503, so load balancers drain first.
	ldapCtx, stopLDAP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLDAP()
	g.Go(func() error {
		<-ctx.Done()
		if d := cfg.Health.LameDuck; d > 0 && cfg.Health.Listen != "" {
			log.Info("draining before stop", "lame_duck", d.String())
			select {
			case <-time.After(d):
			case <-ldapCtx.Done():
			}
		}
		stopLDAP()
		return nil
	})
	for _, srv := range a.servers {
		g.Go(func() error { return srv.ListenAndServe(ldapCtx) })
	}
	for _, in := range a.integrations {
		g.Go(func() error { in.tracker.Run(ctx); return nil })
	}
	for _, d := range a.dirs {
		g.Go(func() error { a.probeDirectory(ctx, d); return nil })
	}
	for _, c := range a.certs {
		// Changed certificate files are picked up even while no
		// handshake looks at them (a bad pair is logged at once).
		g.Go(func() error { c.Run(ctx); return nil })
	}
	g.Go(func() error { a.primaryOnly.Run(ctx); return nil })
	if a.webhook != nil {
		g.Go(func() error { a.webhook.Run(ctx); return nil })
	}
	if cfg.Admin.Socket != "" {
		status := func() health.Status { return health.NewStatus(Version(), started, time.Now(), a.healthSections()) }
		g.Go(func() error {
			return admin.NewServer(cfg.Admin.Socket, a.primaryOnly, log).WithStatus(status).Serve(ctx)
		})
	}
	if cfg.Health.Listen != "" {
		hs := health.New(cfg.Health.Listen, Version(), started, a.healthSections, a.metrics.Handler(), log)
		hs.LameDuck = cfg.Health.LameDuck
		g.Go(func() error { return hs.ListenAndServe(ctx) })
	}
	log.Info("ldapgate started", "version", Version(), "servers", len(a.servers), "duo_integrations", len(a.integrations))
	err = g.Wait()
	log.Info("ldapgate stopped")
	return err
}
