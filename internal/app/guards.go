package app

import (
	"fmt"

	"github.com/ldapgate/ldapgate/alert"
	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/guard"
	"github.com/ldapgate/ldapgate/internal/human"
	"github.com/ldapgate/ldapgate/proxy"
	"github.com/ldapgate/ldapgate/store"
)

// newGuards builds a section's abuse guards (README "Abuse resistance"):
// its throttle, its integration's push budgets (shared by the sections
// that share the integration) and, when bind_cache_ttl is set, its bind
// cache.
func (a *app) newGuards(sc *config.Server, in *integration) (proxy.Guards, *guard.Cache, error) {
	th := sc.Throttle
	g := proxy.Guards{
		Throttle: guard.NewThrottle(a.guardStore(), sc.Name,
			store.Budget{N: th.PerUserAddress, Window: th.PerUserAddressWindow},
			store.Budget{N: th.PerAddress, Window: th.PerAddressWindow}),
		Budget:  in.pushes,
		OnAlert: func(al proxy.GuardAlert) { a.guardAlert(al, sc.Duo) },
	}
	var cache *guard.Cache
	if sc.BindCacheTTL > 0 {
		var err error
		if cache, err = guard.NewCache(a.guardStore(), sc.Name, sc.BindCacheTTL); err != nil {
			return proxy.Guards{}, nil, err
		}
		g.Cache = cache
	}
	return g, cache, nil
}

// guardAlert tells operators of a spent push budget or a fraud report.
func (a *app) guardAlert(al proxy.GuardAlert, dc config.Duo) {
	e := alert.Event{Kind: alert.KindPushBudget, Server: al.Server, User: al.Username, ClientIP: al.ClientIP,
		Msg: fmt.Sprintf("push budget spent for user %s on %s (client %s): %d pushes per %s; binds refused without a push (push fatigue?)",
			al.Username, al.Server, al.ClientIP, dc.MaxPushes, human.Duration(dc.PushWindow))}
	if al.Fraud {
		e.Kind = alert.KindPushFraud
		e.Msg = fmt.Sprintf("user %s reported a push from %s (client %s) as fraud; pushes blocked for %s",
			al.Username, al.Server, al.ClientIP, human.Duration(dc.PushWindow))
	}
	a.alert(e)
}

// clearBindCache forgets every remembered bind of a section: a reload
// retires the cache of every section it replaces (each reload's sections
// get new caches; see build).
func (s *section) clearBindCache() {
	if s.cache != nil {
		s.cache.Clear()
	}
}
