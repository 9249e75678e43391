package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/breakglass"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/internal/certfile"
	"github.com/ldapgate/ldapgate/primaryonly"
	"github.com/ldapgate/ldapgate/store"
)

// shared is the state store a fleet shares (state.backend: redis): the
// guards' state and the break-glass uses go to it through Fallbacks that
// share one Health, and the primary-only switch is kept in step with it.
type shared struct {
	redis  *store.Redis
	health *store.Health
	// guards is the guards' store: a.guards behind the Fallback.
	guards store.Store
}

// openShared connects the shared state store when the configuration asks
// for one (nil otherwise). It does not wait for Redis: an unreachable
// one is found by the first probe and handled as documented.
func (a *app) openShared(cfg *config.Config) (*shared, error) {
	sc := cfg.State
	if !sc.Shared() {
		return nil, nil
	}
	var tlsCfg *tls.Config
	if sc.TLS != (config.StateTLS{}) {
		tlsCfg = &tls.Config{MinVersion: config.MinTLSVersion}
		if sc.TLS.CAFile != "" {
			pool, err := config.CertPool(sc.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("state.tls.ca_file: %w", err)
			}
			tlsCfg.RootCAs = pool
		}
		if sc.TLS.CertFile != "" {
			pair, err := certfile.New(sc.TLS.CertFile, sc.TLS.KeyFile, config.CertCheckInterval, a.log.With("state", "redis"))
			if err != nil {
				return nil, fmt.Errorf("state.tls.cert_file: %w", err)
			}
			tlsCfg.GetClientCertificate = pair.GetClientCertificate
		}
	}
	r, err := store.OpenRedis(store.RedisOptions{URL: sc.URL, Password: sc.Password.Reveal(), TLS: tlsCfg,
		Timeout: sc.Timeout, Prefix: sc.Prefix})
	if err != nil {
		return nil, fmt.Errorf("state.url: %w", err)
	}
	sh := &shared{redis: r}
	sh.health = store.NewHealth(r.Ping, config.StateProbeInterval, a.stateStoreChanged)
	sh.guards = store.NewFallback(r, a.guards, sh.health, config.MaxBindCacheTTL)
	return sh, nil
}

// guardStore is the store the guards use: the shared one behind its
// fallback, or the embedded one.
func (a *app) guardStore() store.Store {
	if a.shared != nil {
		return a.shared.guards
	}
	return a.guards
}

// glassUses is what a section's break-glass keeper records its uses in:
// its own file (local), and with a shared store that store first, so
// that a code used on one instance is refused on every other.
func (a *app) glassUses(local *store.Local) breakglass.Uses {
	if a.shared == nil {
		return local
	}
	return store.NewFallback(a.shared.redis, local, a.shared.health, config.MaxBindCacheTTL)
}

// stateStoreCondition is /status's and /readyz's state_store: "" with
// the embedded store.
func (a *app) stateStoreCondition() string {
	if a.shared == nil {
		return ""
	}
	problem, since := a.shared.health.Problem()
	if problem == "" {
		return "redis ok"
	}
	return fmt.Sprintf("%s (since %s): budgets and throttles per instance; break-glass codes and the bind cache refused",
		problem, since.UTC().Format(time.RFC3339))
}

// stateStoreChanged alerts every change of the shared store's health.
func (a *app) stateStoreChanged(ch store.HealthChange) {
	msg := "shared state store reachable again: budgets, throttles, the bind cache and break-glass codes are shared again"
	if !ch.Up {
		msg = fmt.Sprintf("shared state store unavailable (%v): push budgets and throttles now count per instance; break-glass codes and the bind cache are refused until it is back", ch.Err)
	}
	a.alert(alert.Event{Time: ch.At, Kind: alert.KindStateStore, Msg: msg})
}

// runShared runs the shared store's probe and the primary-only switch's
// sync until ctx is done; nothing without a shared store.
func (a *app) runShared(ctx context.Context) {
	if a.shared == nil {
		return
	}
	a.shared.health.Check(ctx)
	go a.shared.health.Run(ctx)
	reported := false
	a.primaryOnly.Sync(ctx, switchRecord{a.shared.redis}, config.StateSyncInterval, config.StateClockSkew, func(err error) {
		if store.IsUnavailable(err) {
			a.shared.health.Fail(err)
			if !reported { // Health alerts the outage; say once what it costs here
				a.log.Warn("primary-only mode not shared while the state store is unavailable", "err", err)
			}
			reported = true
			return
		}
		reported = false
		a.log.Warn("primary-only mode: shared state not applied", "err", err)
	})
}

// switchRecord is the primary-only switch's record in Redis.
type switchRecord struct{ r *store.Redis }

func switchName(server string) string { return "primary-only:" + server }

func (s switchRecord) Read(ctx context.Context, servers []string) (map[string]primaryonly.State, error) {
	names := make([]string, len(servers))
	for i, n := range servers {
		names[i] = switchName(n)
	}
	got, err := s.r.ReadStamped(ctx, names)
	if err != nil {
		return nil, err
	}
	out := map[string]primaryonly.State{}
	for _, n := range servers {
		if v, ok := got[switchName(n)]; ok {
			out[n] = primaryonly.State{Until: v.Until, Changed: v.Changed}
		}
	}
	return out, nil
}

func (s switchRecord) Write(ctx context.Context, server string, st primaryonly.State, ttl time.Duration) error {
	_, err := s.r.WriteStamped(ctx, switchName(server), store.Stamped{Until: st.Until, Changed: st.Changed}, ttl)
	return err
}
