package app

import (
	"context"
	"log/slog"
	"os"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/health"
)

func newServeCommand(reload <-chan os.Signal) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run every server section until SIGINT or SIGTERM; SIGHUP reloads the configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			return serveFile(cmd.Context(), cfg, path, reload, newLogger(cmd.ErrOrStderr(), cfg.Log))
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/ldapgate/config.yaml", "configuration file")
	return cmd
}

// maxPDU bounds the size of one LDAP message, from clients and from the
// directory alike: without it a message announcing a 2 GiB length makes the
// BER decoder reserve that much memory.
const maxPDU = 16 << 20

// The bound is go-asn1-ber's, process-wide: set once, before any goroutine
// decodes (setting it per serve raced with the LDAP clients and servers
// already running, in-process tests among them).
func init() { ber.MaxPacketLengthBytes = maxPDU }

// serve assembles the program (wire.go) and runs every part until ctx is
// cancelled or one part fails. It cannot reload (see serveFile).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	return serveFile(ctx, cfg, "", nil, log)
}

// serveFile is serve for the configuration read from path: each value
// received on reload (SIGHUP), and the admin socket's reload op, read it
// again (reload.go).
func serveFile(ctx context.Context, cfg *config.Config, path string, reload <-chan os.Signal, log *slog.Logger) error {
	for _, f := range cfg.Audit() {
		log.Warn("configuration finding (ldapgate check)", "id", f.ID, "severity", f.Severity, "key", f.Path, "finding", f.Message)
	}
	a, err := assemble(cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	// The auth events' syslog sender outlives the listeners (deferred
	// calls run last first): the binds of the drain are shipped too.
	defer a.startAuthSyslog()()
	started := time.Now()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	// The LDAP listeners outlive the signal by the lame-duck delay, while
	// /readyz already answers 503, so load balancers drain first; then
	// each lets its operations in flight finish, up to shutdown_timeout.
	ldapCtx, stopLDAP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLDAP()
	a.run.mu.Lock()
	a.run.path, a.run.ldap, a.run.bg, a.run.fatal = path, ldapCtx, ctx, make(chan error, 1)
	a.run.mu.Unlock()
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
	g.Go(func() error {
		select {
		case err := <-a.run.fatal:
			return err
		case <-ldapCtx.Done():
			return nil
		}
	})
	st := a.state()
	if err := a.run.startSections(ctx, a, st.sections); err != nil {
		cancel()
		stopLDAP()
		_ = g.Wait()
		return err
	}
	for _, in := range st.integrations {
		a.run.startIntegration(in)
	}
	for _, d := range st.dirs {
		a.run.startDirectory(a, d)
	}
	for _, c := range st.certs {
		// Changed certificate files are picked up even while no
		// handshake looks at them (a bad pair is logged at once); pairs
		// a reload builds are checked at their handshakes and on SIGHUP.
		g.Go(func() error { c.Run(ctx); return nil })
	}
	g.Go(func() error {
		// the listeners, also those a reload added or is still stopping,
		// and the trackers and probes
		<-ldapCtx.Done()
		a.run.stopReloads()
		a.run.sections.Wait()
		<-ctx.Done()
		a.run.parts.Wait()
		return nil
	})
	g.Go(func() error { a.primaryOnly.Run(ctx); return nil })
	g.Go(func() error { a.runShared(ctx); return nil })
	if a.webhook != nil {
		g.Go(func() error { a.webhook.Run(ctx); return nil })
	}
	if reload != nil {
		g.Go(func() error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-reload:
					_, _ = a.Reload(ctx) // logged, noticed, alerted
				}
			}
		})
	}
	if cfg.Admin.Socket != "" {
		status := func() health.Status { return health.NewStatus(Version(), started, time.Now(), a.healthSections()) }
		as := admin.NewServer(cfg.Admin.Socket, a.primaryOnly, log).WithStatus(status)
		if path != "" {
			as.WithReloader(a)
		}
		g.Go(func() error { return as.Serve(ctx) })
	}
	if cfg.Health.Listen != "" {
		hs := health.New(cfg.Health.Listen, Version(), started, a.healthSections, a.metrics.Handler(), log)
		hs.LameDuck = cfg.Health.LameDuck
		g.Go(func() error { return hs.ListenAndServe(ctx) })
	}
	log.Info("ldapgate started", "version", Version(), "servers", len(st.sections), "duo_integrations", len(st.integrations))
	err = g.Wait()
	log.Info("ldapgate stopped")
	return err
}
