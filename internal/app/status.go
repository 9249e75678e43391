package app

import (
	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/health"
)

// healthSections is the health listener's view of every section, read live.
func (a *app) healthSections() []health.Section {
	sections := a.state().sections
	out := make([]health.Section, 0, len(sections))
	for _, s := range sections {
		st := s.duo.tracker.Status()
		sec := health.Section{
			Name:             s.cfg.Name,
			Failmode:         s.cfg.Failmode,
			DuoIntegration:   st.Integration,
			DuoState:         st.State,
			DuoSince:         st.Since,
			DuoLastError:     st.LastError,
			Directory:        s.dir.client.Name(),
			DirectoryUp:      s.dir.client.Up(),
			DirectoryProblem: s.dir.client.Problem(),
			DirectoryURLs:    directoryURLs(s.dir.client),
			SecureGroups:     s.proxy.SecureGroupsProblem(),
			Listening:        s.proxy.Ready(),
			// The count ldapgate_connections reports: TCP connections,
			// from accept to close.
			Connections: int64(a.metrics.Conns(s.cfg.Name).Open()),
			Binds:       a.binds.Snapshot(s.cfg.Name),
			StateStore:  a.stateStoreCondition(),
		}
		if until := a.primaryOnly.Until(s.cfg.Name); !until.IsZero() {
			sec.PrimaryOnlyUntil = &until
		}
		out = append(out, sec)
	}
	return out
}

// directoryURLs is each URL of d and its state, for /status.
func directoryURLs(d *directory.Client) []health.DirectoryURL {
	urls := d.URLs()
	out := make([]health.DirectoryURL, len(urls))
	for i, u := range urls {
		out[i] = health.DirectoryURL{URL: u.URL, Up: u.Up, Since: u.Since.UTC(), Checked: u.Checked.UTC(), Error: u.Err}
	}
	return out
}
