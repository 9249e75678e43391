package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ldapgate/ldapgate/authlog"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/proxy"
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
// directory alike: without it a client announcing a 2 GiB message makes the
// BER decoder reserve that much memory.
const maxPDU = 16 << 20

// serve wires the packages together and runs until ctx is cancelled.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ber.MaxPacketLengthBytes = maxPDU
	events, err := authlog.Open(cfg.AuthLog)
	if err != nil {
		return err
	}
	defer events.Close()

	dirs := make(map[string]*proxy.Directory, len(cfg.Directories))
	for name, dc := range cfg.Directories {
		d, err := newDirectory(dc, log)
		if err != nil {
			return fmt.Errorf("directories.%s: %w", name, err)
		}
		defer d.Close()
		dirs[name] = d
	}

	servers := make([]*proxy.Server, 0, len(cfg.Servers))
	for i, sc := range cfg.Servers {
		srv, err := newServer(sc, dirs[strings.ToLower(sc.Directory)], events, log)
		if err != nil {
			return fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
		}
		servers = append(servers, srv)
	}

	g, ctx := errgroup.WithContext(ctx)
	for _, srv := range servers {
		g.Go(func() error { return srv.ListenAndServe(ctx) })
	}
	log.Info("ldapgate started", "version", Version(), "servers", len(servers))
	err = g.Wait()
	log.Info("ldapgate stopped")
	return err
}

func newDirectory(dc *config.Directory, log *slog.Logger) (*proxy.Directory, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if dc.CAFile != "" {
		pool, err := loadPool(dc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	return proxy.NewDirectory(proxy.DirectoryConfig{
		Name:              dc.Name,
		URLs:              dc.URLs,
		Timeout:           dc.Timeout,
		StartTLS:          dc.StartTLS,
		TLS:               tlsCfg,
		BindDN:            dc.BindDN,
		BindPassword:      dc.BindPassword.Reveal(),
		BaseDN:            dc.BaseDN,
		UsernameAttribute: dc.UsernameAttribute,
		UserFilter:        dc.ExpandUserFilter,
		GroupFilter:       dc.ExpandGroupFilter,
	}, log)
}

func newServer(sc *config.Server, dir *proxy.Directory, rec proxy.Recorder, log *slog.Logger) (*proxy.Server, error) {
	mode, err := failmode.ParseMode(sc.Failmode)
	if err != nil {
		return nil, err
	}
	factor, err := failmode.ParseFactor(sc.Factor)
	if err != nil {
		return nil, err
	}
	duo, err := newDuoClient(sc.Duo)
	if err != nil {
		return nil, fmt.Errorf("duo: %w", err)
	}
	var tlsCfg *tls.Config
	if sc.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLS.CertFile, sc.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	policy := failmode.Policy{Mode: mode}
	return proxy.New(proxy.Config{
		Name:              sc.Name,
		Listen:            sc.Listen,
		Policy:            func() failmode.Policy { return policy },
		SecureGroups:      sc.SecureGroups,
		ExemptDNs:         sc.ExemptDNs,
		ExemptPrimaryBind: sc.ExemptPrimaryBind,
		Factor:            factor,
		PasscodeDelimiter: sc.Delimiter(),
		AllowAnonymous:    sc.AllowAnonymous,
		IdleTimeout:       sc.IdleTimeout,
		TLS:               tlsCfg,
		RequireTLS:        sc.TLS.Require,
	}, dir, duo, rec, log)
}

func newDuoClient(dc config.Duo) (*duoclient.Client, error) {
	var roots *x509.CertPool
	if dc.CAFile != "" {
		var err error
		if roots, err = duoclient.LoadRootCAs(dc.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	return duoclient.New(duoclient.Config{
		APIHost:        dc.APIHost,
		IntegrationKey: dc.IntegrationKey,
		SecretKey:      dc.SecretKey.Reveal(),
		RootCAs:        roots,
		Timeout:        dc.Timeout,
		PushTimeout:    dc.PushTimeout,
		UserAgent:      "ldapgate/" + Version(),
	})
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
