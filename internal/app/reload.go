package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/admin"
	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/certfile"
	"github.com/ldapgate/ldapgate/proxy"
	"github.com/ldapgate/ldapgate/store"
)

// plan is a configuration turned into parts: those reused from the running
// state and those built for it, and what has to start, change and stop for
// it to run. Nothing in it runs until commit.
type plan struct {
	next *state
	// built are the parts made for next; discard closes them.
	built []func()
	// start are the sections that need a listener of their own.
	start []*section
	// reconfigure are the sections that keep their listener, with the
	// settings it gets.
	reconfigure []reconfigure
	// stop are the sections of the running state whose listener goes away
	// (removed, or moved to another address).
	stop    []*section
	changes changes
	// restart names the settings that take effect only at the next start.
	restart []string
}

// reconfigure is a section that keeps its listener and the proxy
// configuration commit gives it.
type reconfigure struct {
	s   *section
	cfg proxy.Config
}

// changes is what a reload changed, by kind, for the log and the notice.
type changes struct {
	sectionsAdded, sectionsRemoved, sectionsChanged, sectionsMoved []string
	dirsAdded, dirsRemoved, dirsChanged                            []string
	duoAdded, duoRemoved, duoChanged, duoKept                      []string
}

// String is "sections added: wiki; directories changed: corp; ..." or
// "no changes".
func (c changes) String() string {
	var parts []string
	for _, f := range []struct {
		what  string
		names []string
	}{
		{"sections added", c.sectionsAdded}, {"sections removed", c.sectionsRemoved},
		{"sections changed", c.sectionsChanged}, {"sections moved", c.sectionsMoved},
		{"directories added", c.dirsAdded}, {"directories removed", c.dirsRemoved}, {"directories changed", c.dirsChanged},
		{"duo integrations added", c.duoAdded}, {"duo integrations removed", c.duoRemoved},
		{"duo integrations changed", c.duoChanged},
	} {
		if len(f.names) > 0 {
			slices.Sort(f.names)
			parts = append(parts, f.what+": "+strings.Join(f.names, ", "))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}

// discard closes the parts built for a plan that will not run.
func (p *plan) discard() {
	for _, f := range p.built {
		f()
	}
}

// build turns cfg into a plan against the running state: a directory or
// Duo integration whose configuration is unchanged is reused as it is (a
// Duo integration keeps its health state); a section that keeps its listen
// address keeps its listener and its connections.
func (a *app) build(cfg *config.Config) (p *plan, err error) {
	old := a.state()
	p = &plan{next: &state{cfg: cfg, dirs: map[string]*dirPart{}, integrations: map[string]*integration{}}}
	defer func() {
		if err != nil {
			p.discard()
		}
	}()
	ch := &p.changes

	for _, name := range slices.Sorted(maps.Keys(cfg.Directories)) {
		dc := cfg.Directories[name]
		od, had := old.dirs[name]
		if had && reflect.DeepEqual(*od.cfg, *dc) {
			p.next.dirs[name] = od
			p.next.certs = append(p.next.certs, od.certs...)
			continue
		}
		var certs []*certfile.Reloader
		d, err := a.newDirectory(dc, &certs)
		if err != nil {
			return nil, fmt.Errorf("directories.%s: %w", name, err)
		}
		p.built = append(p.built, d.Close)
		p.next.dirs[name] = &dirPart{cfg: dc, client: d, certs: certs}
		p.next.certs = append(p.next.certs, certs...)
		if had {
			ch.dirsChanged = append(ch.dirsChanged, name)
		} else {
			ch.dirsAdded = append(ch.dirsAdded, name)
		}
	}
	for name := range old.dirs {
		if _, ok := cfg.Directories[name]; !ok {
			ch.dirsRemoved = append(ch.dirsRemoved, name)
		}
	}

	for i, sc := range cfg.Servers {
		key := integrationKey(sc.Duo)
		if _, done := p.next.integrations[key]; done {
			continue
		}
		oi, had := old.integrations[key]
		if had && sameDuo(oi.cfg, sc.Duo) {
			p.next.integrations[key] = oi
			ch.duoKept = append(ch.duoKept, key)
			continue
		}
		in, err := a.newIntegration(sc.Duo)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s).duo: %w", i, sc.Name, err)
		}
		p.built = append(p.built, func() { in.client.Close() })
		p.next.integrations[key] = in
		if had {
			ch.duoChanged = append(ch.duoChanged, key)
		} else {
			ch.duoAdded = append(ch.duoAdded, key)
		}
	}
	for key := range old.integrations {
		if _, ok := p.next.integrations[key]; !ok {
			ch.duoRemoved = append(ch.duoRemoved, key)
		}
	}

	running := map[string]*section{}
	stores := map[string]*store.Local{} // break-glass records open now, by file
	for _, s := range old.sections {
		running[s.cfg.Name] = s
		if s.glass.store != nil {
			stores[s.cfg.BreakGlass.UsedFile()] = s.glass.store
		}
	}
	for i, sc := range cfg.Servers {
		in := p.next.integrations[integrationKey(sc.Duo)]
		dir := p.next.dirs[strings.ToLower(sc.Directory)]
		pc, err := a.proxyConfig(sc, cfg, &p.next.certs)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
		}
		g, opened, err := a.openBreakGlass(sc, in, stores)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s).%w", i, sc.Name, err)
		}
		if opened {
			p.built = append(p.built, g.close)
			stores[sc.BreakGlass.UsedFile()] = g.store
		}
		pc.BreakGlass, pc.DuoUnreachable = g.codes, g.unreachable
		// Guards are built anew: the throttles' and budgets' counts live in
		// the store and carry over; the bind cache starts empty, so no bind
		// remembered under the old settings is taken under the new ones.
		guards, cache, err := a.newGuards(sc, in)
		if err != nil {
			return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
		}
		pc.Guards = guards
		s := &section{cfg: sc, duo: in, dir: dir, glass: g, cache: cache}
		was, had := running[sc.Name]
		delete(running, sc.Name)
		if had && was.cfg.Listen == sc.Listen && was.cfg.LDAPSListen == sc.LDAPSListen {
			// The listener stays, with the settings it started with.
			if sc.LDAPSListen != "" && (was.cfg.TLS.CertFile != sc.TLS.CertFile || was.cfg.TLS.KeyFile != sc.TLS.KeyFile ||
				was.cfg.TLS.MinVersion != sc.TLS.MinVersion) {
				// The LDAPS listener follows the files it started with.
				p.restart = append(p.restart, fmt.Sprintf("servers[%d] (%s).tls (for ldaps_listen)", i, sc.Name))
			}
			if sc.MaxConnections == 0 && was.cfg.MaxConnections == 0 {
				pc.MaxConnections = was.listener.MaxConnections // derived once, at its start
			}
			for _, f := range proxy.ListenerChanges(was.listener, pc) {
				p.restart = append(p.restart, fmt.Sprintf("servers[%d] (%s).%s", i, sc.Name, f))
			}
			// What Reconfigure will check, checked now, before anything runs.
			if _, err := proxy.New(pc, dir.client, in.gate, a.recorder, a.log); err != nil {
				return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
			}
			s.listener, s.proxy, s.stop, s.done = was.listener, was.proxy, was.stop, was.done
			p.reconfigure = append(p.reconfigure, reconfigure{s, pc})
			if !reflect.DeepEqual(*was.cfg, *sc) || was.duo != in || was.dir != dir || old.cfg.ShutdownTimeout != cfg.ShutdownTimeout {
				ch.sectionsChanged = append(ch.sectionsChanged, sc.Name)
			}
		} else {
			srv, err := proxy.New(pc, dir.client, in.gate, a.recorder, a.log)
			if err != nil {
				return nil, fmt.Errorf("servers[%d] (%s): %w", i, sc.Name, err)
			}
			s.listener, s.proxy, s.done = pc, srv, make(chan struct{})
			p.start = append(p.start, s)
			if had {
				p.stop = append(p.stop, was)
				ch.sectionsMoved = append(ch.sectionsMoved, fmt.Sprintf("%s (%s -> %s)", sc.Name,
					listenString(was.cfg), listenString(sc)))
			} else {
				ch.sectionsAdded = append(ch.sectionsAdded, sc.Name)
			}
		}
		p.next.sections = append(p.next.sections, s)
	}
	for _, was := range old.sections {
		if _, gone := running[was.cfg.Name]; gone {
			p.stop = append(p.stop, was)
			ch.sectionsRemoved = append(ch.sectionsRemoved, was.cfg.Name)
		}
	}
	if len(old.sections) > 0 {
		p.restart = append(p.restart, restartOnly(old.cfg, cfg)...)
	}
	return p, nil
}

// sameDuo reports whether two configurations of one integration build the
// same client and health state.
func sameDuo(a, b config.Duo) bool {
	a.SecretKeyFile, b.SecretKeyFile = "", "" // the key it held is compared
	return a == b
}

// restartOnly names the settings outside the sections that a running
// process keeps until it is restarted.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for _, f := range []struct {
		key  string
		same bool
	}{
		{"log", a.Log == b.Log},
		{"auth_log", a.AuthLog == b.AuthLog},
		{"auth_syslog", a.AuthSyslog == b.AuthSyslog},
		{"health", a.Health == b.Health},
		{"admin.socket", a.Admin == b.Admin},
		{"alerts", a.Alerts == b.Alerts},
		{"state", a.State == b.State},
	} {
		if !f.same {
			out = append(out, f.key)
		}
	}
	return out
}

// commit makes a plan's state the running one and starts the background
// parts it built (trackers, directory probes); listeners are started and
// stopped by the caller. It runs before serving too, when nothing runs yet
// (the runner then starts the parts once serving begins).
func (a *app) commit(p *plan) {
	old := a.state()
	for _, r := range p.reconfigure {
		if err := r.s.proxy.Reconfigure(a.run.ctx(), r.cfg, r.s.dir.client, r.s.duo.gate, a.recorder, a.log); err != nil {
			// checked by build; nothing to do but say so
			a.log.Error("section not reconfigured", "server", r.s.cfg.Name, "err", err)
		}
	}
	a.st.Store(p.next)
	a.primaryOnly.SetSections(sectionModes(p.next.cfg))
	for _, s := range p.next.sections {
		a.metrics.ConnectionsFunc(s.cfg.Name, a.metrics.Conns(s.cfg.Name).Open)
		if a.primaryOnly.Until(s.cfg.Name).IsZero() {
			a.metrics.SetPrimaryOnlyUntil(s.cfg.Name, time.Time{})
		}
	}
	for name, d := range p.next.dirs {
		if old.dirs[name] != d {
			a.metrics.SetDirectoryUp(name, d.client.Up())
			for _, u := range d.client.URLs() {
				a.metrics.SetDirectoryURLUp(name, u.URL, u.Up)
			}
			a.run.startDirectory(a, d)
		}
	}
	for key, in := range p.next.integrations {
		if old.integrations[key] != in {
			a.metrics.SetDuoState(in.client.Integration(), in.tracker.Status().State)
			a.run.startIntegration(in)
		}
	}
	// What the new state no longer uses stops now and is closed once the
	// operations that may still use it had their shutdown_timeout.
	grace := p.next.cfg.ShutdownTimeout
	for name, d := range old.dirs {
		if p.next.dirs[name] != d {
			a.run.retire(d.stop, d.client.Close, grace)
		}
	}
	for key, in := range old.integrations {
		if p.next.integrations[key] != in {
			a.run.retire(in.stop, func() { in.client.Close() }, grace)
		}
	}
	for _, s := range old.sections {
		s.clearBindCache() // its successor has a cache of its own
	}
	kept := map[*store.Local]bool{}
	for _, s := range p.next.sections {
		kept[s.glass.store] = true
	}
	for _, s := range old.sections {
		if st := s.glass.store; st != nil && !kept[st] {
			a.run.retire(nil, func() { st.Close() }, grace)
		}
	}
}

// Reload reads the configuration file again, as SIGHUP does, and makes it
// the running one, or keeps the running one when the file has problems
// (which the result lists, each naming its key path). Either way it reopens
// the auth log first (log rotation). One reload runs at a time; each ends
// in one log line and one auth-log notice, and a refused one is alerted.
func (a *app) Reload(ctx context.Context) (admin.ReloadResult, error) {
	a.run.reloadMu.Lock()
	defer a.run.reloadMu.Unlock()
	if a.run.stopped {
		return admin.ReloadResult{}, errors.New("configuration not reloaded: ldapgate is stopping")
	}
	if err := a.events.Reopen(); err != nil {
		a.log.Error("auth log not reopened: still writing to the file it had", "err", err)
	}
	// Certificates are re-read whether or not the file changed (each
	// failure is logged and keeps the pair in use).
	_ = a.reloadCertificates()
	path := a.run.path
	if path == "" {
		return admin.ReloadResult{}, errors.New("configuration not reloaded: this process was not started from a configuration file")
	}
	p, err := a.apply(ctx, path)
	if err == nil {
		msg := "configuration reloaded: " + p.changes.String()
		if len(p.restart) > 0 {
			msg += "; not applied until restart: " + strings.Join(p.restart, ", ")
		}
		a.log.Info(msg, "config", path)
		a.notice("reload", "", msg)
		return admin.ReloadResult{Changes: msg}, nil
	}
	problems := problemsOf(err)
	msg := fmt.Sprintf("configuration not reloaded, the running one stays: %s: %s", path, strings.Join(problems, "; "))
	a.alert(alert.Event{Kind: "reload", Msg: msg})
	return admin.ReloadResult{Problems: problems}, errors.New(msg)
}

// apply reads the file at path and makes it the running configuration:
// new listeners first (a failure to listen changes nothing), then the new
// state, then the listeners that go away stop gracefully.
func (a *app) apply(ctx context.Context, path string) (*plan, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	p, err := a.build(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range p.start {
		// read before the first bind, not at the next probe
		_ = s.proxy.CheckSecureGroups(ctx)
	}
	if err := a.run.startSections(ctx, a, p.start); err != nil {
		p.discard()
		return nil, err
	}
	a.commit(p)
	for _, s := range p.stop {
		s.stop()
	}
	return p, nil
}

// problemsOf is each configuration problem of err (naming its key path),
// or err itself when it is not a validation error.
func problemsOf(err error) []string {
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	out := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		out[i] = p.Error()
	}
	return out
}

// runner starts and stops the parts of a serving program: the section
// listeners, Duo trackers and directory probes, also those a reload adds,
// and closes what a reload retired.
type runner struct {
	path     string     // the configuration file; "" when it cannot be reloaded
	reloadMu sync.Mutex // one reload at a time
	stopped  bool       // under reloadMu: the program stops, no reload starts

	mu       sync.Mutex
	ldap     context.Context // sections run under it; nil before serving
	bg       context.Context // trackers and probes
	fatal    chan error      // a listener that failed after it started
	sections sync.WaitGroup
	parts    sync.WaitGroup
	retired  []func()
}

// stopReloads waits for a reload in progress and refuses the next ones, so
// that nothing starts once the program waits for its parts to end.
func (r *runner) stopReloads() {
	r.reloadMu.Lock()
	r.stopped = true
	r.reloadMu.Unlock()
}

// ctx bounds the work a reload does on the running sections.
func (r *runner) ctx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bg == nil {
		return context.Background()
	}
	return r.bg
}

// startSections starts each section's listener and returns once all
// listen, or stops those it started and returns the first failure.
func (r *runner) startSections(ctx context.Context, a *app, secs []*section) error {
	for i, s := range secs {
		if err := r.startSection(ctx, a, s); err != nil {
			for _, started := range secs[:i] {
				started.stop()
				<-started.done
			}
			return fmt.Errorf("server %s: %w", s.cfg.Name, err)
		}
	}
	return nil
}

// startSection runs s's listener and waits until it listens or fails.
func (r *runner) startSection(ctx context.Context, a *app, s *section) error {
	r.mu.Lock()
	lctx, fatal := r.ldap, r.fatal
	r.mu.Unlock()
	a.logLimits(s.cfg, s.listener)
	sctx, stop := context.WithCancel(lctx)
	s.stop = stop
	var err error
	r.sections.Go(func() {
		err = s.proxy.ListenAndServe(sctx)
		close(s.done)
		if err != nil && sctx.Err() == nil {
			select {
			case fatal <- err:
			default:
			}
		}
	})
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !s.proxy.Ready() {
		select {
		case <-s.done:
			stop()
			return err
		case <-ctx.Done():
			stop()
			<-s.done
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func (r *runner) startIntegration(in *integration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bg == nil {
		return // started when serving begins
	}
	ctx, stop := context.WithCancel(r.bg)
	in.stop = stop
	r.parts.Go(func() { in.tracker.Run(ctx) })
}

func (r *runner) startDirectory(a *app, d *dirPart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bg == nil {
		return
	}
	ctx, stop := context.WithCancel(r.bg)
	d.stop = stop
	r.parts.Go(func() { a.probeDirectory(ctx, d) })
}

// retire stops a part now (stop may be nil) and closes it after grace, or
// when the program ends, whichever comes first.
func (r *runner) retire(stop context.CancelFunc, closeFn func(), grace time.Duration) {
	if stop != nil {
		stop()
	}
	once := sync.OnceFunc(closeFn)
	time.AfterFunc(grace, once)
	r.mu.Lock()
	r.retired = append(r.retired, once)
	r.mu.Unlock()
}

func (r *runner) closeRetired() {
	r.mu.Lock()
	retired := r.retired
	r.retired = nil
	r.mu.Unlock()
	for _, f := range retired {
		f()
	}
}

// listenString is a section's listen addresses, for the reload's notice.
func listenString(sc *config.Server) string {
	switch {
	case sc.LDAPSListen == "":
		return sc.Listen
	case sc.Listen == "":
		return "ldaps " + sc.LDAPSListen
	}
	return sc.Listen + " + ldaps " + sc.LDAPSListen
}
