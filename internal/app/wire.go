package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/authlog"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/duoclient"
	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/guard"
	"github.com/ldapgate/ldapgate/health"
	"github.com/ldapgate/ldapgate/metrics"
	"github.com/ldapgate/ldapgate/primaryonly"
	"github.com/ldapgate/ldapgate/proxy"
	"github.com/ldapgate/ldapgate/store"
)

// app is the assembled program: every long-lived part and what connects them.
type app struct {
	cfg *config.Config
	log *slog.Logger
	// nofile is the descriptor limit, raised and read once at start; it
	// sizes the sections' derived max_connections.
	nofile uint64

	events   *authlog.Log
	metrics  *metrics.Metrics
	binds    *health.BindCounter
	webhook  *alert.Webhook // nil when alerts.webhook_url is empty
	notify   alert.Notifier
	episodes *alert.Episodes

	// guards is the state behind the abuse guards (guards.go).
	guards *store.Local

	primaryOnly  *primaryonly.Switch
	dirs         map[string]*directory.Client
	integrations map[string]*integration // by lowercased api_host/integration key
	servers      []*proxy.Server
	sections     []section
}

// integration is one Duo integration, shared by the sections that use it.
type integration struct {
	client  *duoclient.Client
	tracker *duostate.Tracker
	gate    *duostate.Gate
	// pushes are its users' push and passcode budgets.
	pushes *guard.Pushes
}

// section is what /status needs to know about a server section.
type section struct {
	cfg   *config.Server
	duo   *integration
	dir   *directory.Client
	proxy *proxy.Server
	// cache is the section's bind cache; nil when bind_cache_ttl is 0.
	cache *guard.Cache
}

func assemble(cfg *config.Config, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, nofile: descriptorLimit(), dirs: map[string]*directory.Client{}, integrations: map[string]*integration{}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.events, err = authlog.Open(cfg.AuthLog); err != nil {
		return nil, err
	}
	a.metrics = metrics.New(Version())
	a.binds = health.NewBindCounter()
	a.notify = alert.Nop()
	if cfg.Alerts.WebhookURL != "" {
		a.webhook = alert.NewWebhook(cfg.Alerts.WebhookURL, cfg.Alerts.Timeout, log)
		a.notify = a.webhook
		a.metrics.AlertsFunc(a.webhook.Delivered, a.webhook.Dropped, a.webhook.Failed)
	}
	a.episodes = alert.NewEpisodes(alert.NotifierFunc(a.alert), nil)

	modes := map[string]failmode.Mode{}
	for _, sc := range cfg.Servers {
		modes[sc.Name] = sc.Mode()
	}
	a.primaryOnly = primaryonly.New(modes, nil, a.primaryOnlyChanged)

	if a.guards, err = store.Open(store.Options{MaxKeys: config.GuardMaxKeys}); err != nil {
		return nil, err
	}

	for name, dc := range cfg.Directories {
		d, err := newDirectory(dc, log)
		if err != nil {
			return nil, fmt.Errorf("directories.%s: %w", name, err)
		}
		a.dirs[name] = d
		a.metrics.SetDirectoryUp(name, true)
	}

	recorder := recorders{a.events, a.metrics, a.binds, a.episodes}
	for i, sc := range cfg.Servers {
		in, err := a.integration(sc.Duo)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s).duo: %w", i, sc.Name, err)
		}
		dir := a.dirs[strings.ToLower(sc.Directory)]
		guards, cache, err := a.newGuards(sc, in)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
		}
		srv, err := a.newServer(sc, dir, in.gate, recorder, guards)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
		}
		a.servers = append(a.servers, srv)
		a.sections = append(a.sections, section{cfg: sc, duo: in, dir: dir, proxy: srv, cache: cache})
		a.metrics.ConnectionsFunc(sc.Name, a.metrics.Conns(sc.Name).Open)
		a.metrics.SetPrimaryOnlyUntil(sc.Name, time.Time{})
	}
	return a, nil
}

// integration returns the shared client and health state of a Duo
// integration, creating them on first use. config.Validate guarantees that
// sections sharing one agree on its settings.
func (a *app) integration(dc config.Duo) (*integration, error) {
	key := failmode.Integration(dc.APIHost, dc.IntegrationKey)
	if in, ok := a.integrations[key]; ok {
		return in, nil
	}
	in := &integration{}
	// Every call to Duo feeds the health state and the metrics.
	client, err := newDuoClient(dc, func(stage failmode.Stage, d time.Duration, class failmode.Class) {
		in.tracker.Observe(stage, d, class)
		a.metrics.ObserveDuo(in.client.Integration(), stage, d, class)
	})
	if err != nil {
		return nil, err
	}
	id := client.Integration()
	in.client = client
	in.tracker = duostate.New(duostate.Config{
		Integration:       id,
		UnreachableAfter:  dc.UnreachableAfter,
		DegradedLatency:   dc.DegradedLatency,
		ProbeInterval:     dc.ProbeInterval,
		Window:            config.DuoWindow,
		FastProbeInterval: config.DuoFastProbeInterval,
		// The probe gets the deadline preauth gets: a Duo slow enough to
		// fail a probe fails logins too, and no faster one looks down.
		ProbeTimeout: dc.Timeout,
		OnChange:     a.duoStateChanged,
	}, client)
	in.gate = duostate.NewGate(in.tracker, client)
	in.pushes = guard.NewPushes(a.guards, id, dc.MaxPushes, dc.MaxPasscodeAttempts, dc.PushWindow)
	a.integrations[key] = in
	a.metrics.SetDuoState(id, duostate.OK)
	return in, nil
}

// newDuoClient builds the client of one Duo integration; observe (nil for
// none) hears of every call.
func newDuoClient(dc config.Duo, observe func(failmode.Stage, time.Duration, failmode.Class)) (*duoclient.Client, error) {
	var roots *x509.CertPool
	if dc.CAFile != "" {
		var err error
		if roots, err = config.CertPool(dc.CAFile); err != nil {
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
		Observe:        observe,
	})
}

func (a *app) newServer(sc *config.Server, dir *directory.Client, sf proxy.SecondFactor, rec failmode.Recorder, guards proxy.Guards) (*proxy.Server, error) {
	mode, factor := sc.Mode(), sc.DefaultFactor()
	var tlsCfg *tls.Config
	if sc.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLS.CertFile, sc.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	name, sw := sc.Name, a.primaryOnly
	maxConns := sc.EffectiveMaxConnections(a.nofile, len(a.cfg.Servers))
	a.log.Info("limits", "server", sc.Name,
		"max_connections", maxConns, "max_connections_derived", sc.MaxConnections == 0, "nofile", a.nofile,
		"max_connections_per_ip", sc.MaxConnectionsPerIP, "max_pending_requests", sc.MaxPendingRequests,
		"max_request_size", sc.MaxRequestSize, "idle_timeout", sc.IdleTimeout,
		"write_timeout", sc.WriteTimeout, "request_timeout", sc.RequestTimeout)
	return proxy.New(proxy.Config{
		Name:              sc.Name,
		Listen:            sc.Listen,
		Policy:            func() failmode.Policy { return failmode.Policy{Mode: mode, PrimaryOnly: sw.Active(name)} },
		SecureGroups:      sc.SecureGroups,
		ExemptDNs:         sc.ExemptDNs,
		ExemptPrimaryBind: sc.ExemptPrimaryBind,
		Factor:            factor,
		PasscodeDelimiter: sc.Delimiter(),
		AllowAnonymous:    sc.AllowAnonymous,
		IdleTimeout:       sc.IdleTimeout,
		MaxConnections:    maxConns,
		// What clients can make the section hold (README "Limits").
		MaxConnectionsPerIP: sc.MaxConnectionsPerIP,
		MaxPendingRequests:  sc.MaxPendingRequests,
		MaxRequestSize:      sc.MaxRequestSize,
		MaxBufferedBytes:    sc.MaxBufferedBytes(),
		WriteTimeout:        sc.WriteTimeout,
		RequestTimeout:      sc.RequestTimeout,
		OnConnEvent:         connEvents(a.metrics.Conns(sc.Name)),
		TLS:                 tlsCfg,
		RequireTLS:          sc.TLS.Require,
		Guards:              guards,
	}, dir, sf, rec, a.log)
}

func newDirectory(dc *config.Directory, log *slog.Logger) (*directory.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if dc.CAFile != "" {
		pool, err := config.CertPool(dc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	return directory.New(directory.Config{
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
		NestedGroups:      dc.NestedGroups,
		MaxGroupDepth:     config.MaxGroupNesting,
		MaxConnections:    dc.MaxConnections,
	}, log)
}

func (a *app) close() {
	for _, d := range a.dirs {
		d.Close()
	}
	for _, in := range a.integrations {
		in.client.Close()
	}
	if a.events != nil {
		a.events.Close()
	}
	if a.guards != nil {
		_ = a.guards.Close()
	}
}

// recorders fans one bind event out to every consumer.
type recorders []failmode.Recorder

func (rs recorders) RecordBind(e failmode.BindEvent) {
	for _, r := range rs {
		r.RecordBind(e)
	}
}

// probeDirectory runs d's probe: each section on d re-reads its secure
// groups with every probe, and the one "up" answer goes to the log (on a
// change) and to ldapgate_directory_up.
func (a *app) probeDirectory(ctx context.Context, d *directory.Client) {
	d.Probe(ctx, config.DirectoryProbeInterval,
		func(pctx context.Context) {
			for _, s := range a.sections {
				if s.dir == d {
					_ = s.proxy.CheckSecureGroups(pctx)
				}
			}
		},
		func(up, changed bool, err error) {
			switch {
			case changed && up:
				a.log.Info("directory usable again", "directory", d.Name())
			case changed:
				a.log.Error("directory not usable", "directory", d.Name(), "problem", d.Problem(), "err", err)
			}
			a.metrics.SetDirectoryUp(d.Name(), up)
		})
}
