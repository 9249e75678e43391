package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
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
	"github.com/ldapgate/ldapgate/internal/certfile"
	"github.com/ldapgate/ldapgate/metrics"
	"github.com/ldapgate/ldapgate/primaryonly"
	"github.com/ldapgate/ldapgate/proxy"
	"github.com/ldapgate/ldapgate/store"
)

// app is the assembled program: every long-lived part and what connects them.
type app struct {
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
	recorder failmode.Recorder

	// authSyslog ships the auth events off the box; nil when
	// auth_syslog is off (authsyslog.go).
	authSyslog *authlog.Syslog

	// guards is the state behind the abuse guards (guards.go).
	guards *store.Local
	// shared is the state store a fleet shares; nil with the embedded
	// one (sharedstate.go).
	shared *shared

	primaryOnly *primaryonly.Switch

	// st is what runs now: the configuration and the parts built from it.
	// A reload replaces it as a whole (reload.go); readers load it.
	st atomic.Pointer[state]
	// run is how parts are started and stopped while serving (serve.go).
	run runner
}

// state is one configuration and the parts that serve it. It is never
// changed once stored: a reload stores a new one, reusing the parts whose
// configuration did not change.
type state struct {
	cfg          *config.Config
	dirs         map[string]*dirPart     // by directory name
	integrations map[string]*integration // by failmode.Integration
	sections     []*section
	// certs are the certificate pairs this state's parts use (sections'
	// tls, directories' client certificates); see reloadCertificates.
	certs []*certfile.Reloader
}

// state is what runs now.
func (a *app) state() *state { return a.st.Load() }

// dirPart is one directory client and the configuration it was built from.
type dirPart struct {
	cfg    *config.Directory
	client *directory.Client
	certs  []*certfile.Reloader // its client certificate, if any
	stop   context.CancelFunc   // ends its probe loop; nil before it runs
}

// integration is one Duo integration, shared by the sections that use it.
type integration struct {
	cfg     config.Duo
	client  *duoclient.Client
	tracker *duostate.Tracker
	gate    *duostate.Gate
	// pushes are its users' push and passcode budgets.
	pushes *guard.Pushes
	stop   context.CancelFunc // ends its tracker; nil before it runs
}

// section is one server section: its configuration, its parts and its
// listener. Sections of successive states share the listener (and stop,
// done) while the section keeps its listen address.
type section struct {
	cfg *config.Server
	duo *integration
	dir *dirPart
	// listener is the proxy configuration the listener was started with
	// (proxy.ListenerChanges compares a reload's with it).
	listener proxy.Config
	proxy    *proxy.Server
	stop     context.CancelFunc // stops the listener gracefully; nil before it runs
	done     chan struct{}      // closed when the listener stopped
	// glass is the section's break-glass wiring (breakglass.go).
	glass glass
	// cache is the section's bind cache; nil when bind_cache_ttl is 0.
	cache *guard.Cache
}

// assemble builds the program from cfg. Its result is not named: the
// deferred clean-up must close the app it built, not a nil one.
func assemble(cfg *config.Config, log *slog.Logger) (_ *app, err error) {
	a := &app{log: log, nofile: descriptorLimit()}
	a.st.Store(&state{cfg: &config.Config{}})
	var p *plan
	defer func() {
		if err != nil {
			if p != nil {
				p.discard()
			}
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
	if err = a.openAuthSyslog(cfg.AuthSyslog); err != nil {
		return nil, err
	}
	a.episodes = alert.NewEpisodes(alert.NotifierFunc(a.alert), nil)
	a.recorder = recorders{a.events, a.authSyslogRecorder(), a.metrics, a.binds, a.episodes, breakGlassAlerts{a}}
	a.primaryOnly = primaryonly.New(sectionModes(cfg), nil, a.primaryOnlyChanged)
	if a.guards, err = store.Open(store.Options{MaxKeys: config.GuardMaxKeys}); err != nil {
		return nil, err
	}
	if a.shared, err = a.openShared(cfg); err != nil {
		return nil, err
	}

	if p, err = a.build(cfg); err != nil {
		return nil, err
	}
	a.commit(p)
	return a, nil
}

// sectionModes is every section's failmode, for the primary-only switch.
func sectionModes(cfg *config.Config) map[string]failmode.Mode {
	modes := map[string]failmode.Mode{}
	for _, sc := range cfg.Servers {
		modes[sc.Name] = sc.Mode()
	}
	return modes
}

// integrationKey names a Duo integration: sections with the same key share
// its client and health state.
func integrationKey(dc config.Duo) string { return failmode.Integration(dc.APIHost, dc.IntegrationKey) }

// newIntegration builds the client and health state of a Duo integration.
// config.Validate guarantees that sections sharing one agree on its
// settings.
func (a *app) newIntegration(dc config.Duo) (*integration, error) {
	in := &integration{cfg: dc}
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
	in.pushes = guard.NewPushes(a.guardStore(), id, dc.MaxPushes, dc.MaxPasscodeAttempts, dc.PushWindow)
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

// proxyConfig is a section's configuration as proxy takes it; a
// certificate pair it follows is added to certs.
func (a *app) proxyConfig(sc *config.Server, cfg *config.Config, certs *[]*certfile.Reloader) (proxy.Config, error) {
	mode, factor := sc.Mode(), sc.DefaultFactor()
	var tlsCfg *tls.Config
	if sc.TLS.CertFile != "" {
		// The pair is re-read when its files change and on
		// reloadCertificates; established sessions keep theirs.
		pair, err := certfile.New(sc.TLS.CertFile, sc.TLS.KeyFile, config.CertCheckInterval, a.log.With("server", sc.Name))
		if err != nil {
			return proxy.Config{}, fmt.Errorf("tls: %w", err)
		}
		*certs = append(*certs, pair)
		tlsCfg = &tls.Config{GetCertificate: pair.GetCertificate, MinVersion: sc.TLS.MinTLSVersion()}
	}
	name, sw := sc.Name, a.primaryOnly
	return proxy.Config{
		Name:              sc.Name,
		Listen:            sc.Listen,
		LDAPSListen:       sc.LDAPSListen,
		Policy:            func() failmode.Policy { return failmode.Policy{Mode: mode, PrimaryOnly: sw.Active(name)} },
		SecureGroups:      sc.SecureGroups,
		ExemptDNs:         sc.ExemptDNs,
		ExemptPrimaryBind: sc.ExemptPrimaryBind,
		Factor:            factor,
		PasscodeDelimiter: sc.Delimiter(),
		AllowAnonymous:    sc.AllowAnonymous,
		IdleTimeout:       sc.IdleTimeout,
		MaxConnections:    sc.EffectiveMaxConnections(a.nofile, len(cfg.Servers)),
		// What clients can make the section hold (README "Limits").
		MaxConnectionsPerIP:  sc.MaxConnectionsPerIP,
		MaxPendingRequests:   sc.MaxPendingRequests,
		MaxRequestSize:       sc.MaxRequestSize,
		MaxBufferedBytes:     sc.MaxBufferedBytes(),
		WriteTimeout:         sc.WriteTimeout,
		RequestTimeout:       sc.RequestTimeout,
		OnConnEvent:          connEvents(a.metrics.Conns(sc.Name)),
		TLS:                  tlsCfg,
		RequireTLS:           sc.TLS.Require,
		ShutdownTimeout:      cfg.ShutdownTimeout,
		ReleaseUpstreamAfter: config.ReleaseUpstreamAfter,
		ProxyProtocol:        proxyProtocol(sc.ProxyProtocol),
	}, nil
}

// proxyProtocol is a section's proxy_protocol as the proxy takes it; nil
// when the section has none.
func proxyProtocol(pp *config.ProxyProtocol) *proxy.ProxyProtocol {
	if pp == nil {
		return nil
	}
	return &proxy.ProxyProtocol{Trusted: pp.Prefixes(), HeaderTimeout: pp.HeaderTimeout}
}

// logLimits logs the limits a section's listener starts with.
func (a *app) logLimits(sc *config.Server, pc proxy.Config) {
	a.log.Info("limits", "server", sc.Name,
		"max_connections", pc.MaxConnections, "max_connections_derived", sc.MaxConnections == 0, "nofile", a.nofile,
		"max_connections_per_ip", sc.MaxConnectionsPerIP, "max_pending_requests", sc.MaxPendingRequests,
		"max_request_size", sc.MaxRequestSize, "idle_timeout", sc.IdleTimeout,
		"write_timeout", sc.WriteTimeout, "request_timeout", sc.RequestTimeout)
}

// newDirectory builds the client of one directory; a client certificate
// it follows is added to certs (nil: not kept, as for check --online).
func (a *app) newDirectory(dc *config.Directory, certs *[]*certfile.Reloader) (*directory.Client, error) {
	// Verification is always on: there is no key to turn it off.
	tlsCfg := &tls.Config{MinVersion: config.MinTLSVersion}
	if dc.CAFile != "" {
		pool, err := config.CertPool(dc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	if dc.CertFile != "" {
		// The client certificate for directories that demand mutual TLS,
		// followed like a section's certificate.
		pair, err := certfile.New(dc.CertFile, dc.KeyFile, config.CertCheckInterval, a.log.With("directory", dc.Name))
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		if certs != nil {
			*certs = append(*certs, pair)
		}
		tlsCfg.GetClientCertificate = pair.GetClientCertificate
	}
	return directory.New(directory.Config{
		Name:              dc.Name,
		URLs:              dc.URLs,
		Timeout:           dc.Timeout,
		StartTLS:          dc.StartTLS,
		TLS:               tlsCfg,
		ServerName:        dc.TLSServerName,
		BindDN:            dc.BindDN,
		BindPassword:      dc.BindPassword.Reveal(),
		BaseDN:            dc.BaseDN,
		UsernameAttribute: dc.UsernameAttribute,
		UserFilter:        dc.ExpandUserFilter,
		GroupFilter:       dc.ExpandGroupFilter,
		NestedGroups:      dc.NestedGroups,
		MaxGroupDepth:     config.MaxGroupNesting,
		MaxConnections:    dc.MaxConnections,
		MaxIdle:           config.DirectoryIdleConnections,
		LookupConnections: dc.LookupConnections,
		LookupInFlight:    dc.LookupInFlight,
	}, a.log)
}

// reloadCertificates reads every certificate pair in use again now (the
// SIGHUP path; changed files are also picked up on their own). A pair
// that fails keeps the previous one in use; the error names its files.
func (a *app) reloadCertificates() error {
	var errs []error
	for _, c := range a.state().certs {
		if err := c.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close closes what the running state holds and what reloads retired.
func (a *app) close() {
	if st := a.state(); st != nil {
		for _, d := range st.dirs {
			d.client.Close()
		}
		for _, in := range st.integrations {
			in.client.Close()
		}
		for _, s := range st.sections {
			s.glass.close()
		}
	}
	a.run.closeRetired()
	if a.events != nil {
		a.events.Close()
	}
	if a.guards != nil {
		_ = a.guards.Close()
	}
	if a.shared != nil {
		_ = a.shared.redis.Close()
	}
}

// recorders fans one bind event out to every consumer.
type recorders []failmode.Recorder

func (rs recorders) RecordBind(e failmode.BindEvent) {
	for _, r := range rs {
		r.RecordBind(e)
	}
}

// probeDirectory runs d's probe on its probe_interval: each section on d
// re-reads its secure groups with every probe, and what the probe found
// goes to the metrics, the log and the alerts (directoryProbed).
func (a *app) probeDirectory(ctx context.Context, d *dirPart) {
	last := d.client.URLs()
	d.client.Probe(ctx, d.cfg.ProbeInterval,
		func(pctx context.Context) {
			for _, s := range a.state().sections {
				if s.dir.client == d.client {
					_ = s.proxy.CheckSecureGroups(pctx)
				}
			}
		},
		func(up, changed bool, err error) { last = a.directoryProbed(d.client, last, up, changed, err) })
}
