package alert

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/proxy"
)

// Episodes turns failmode decisions into alerts once per outage episode, not
// once per bind: the first failmode decision on a server raises one
// KindFailmode event; the rest are counted until the wiring ends the episode
// (Duo recovered), which raises one summary per server.
//
// It implements proxy.Recorder and is safe for concurrent use. The notifier
// is called outside Episodes' lock and must not block.
type Episodes struct {
	n   Notifier
	now func() time.Time

	mu      sync.Mutex
	servers map[string]*episode
}

// episode is one server's failmode episode so far.
type episode struct {
	started         time.Time
	mode            string // safe | secure
	allowed, denied uint64
}

var _ proxy.Recorder = (*Episodes)(nil)

// NewEpisodes returns Episodes that alert through n. now may be nil
// (time.Now).
func NewEpisodes(n Notifier, now func() time.Time) *Episodes {
	if n == nil {
		n = Nop()
	}
	if now == nil {
		now = time.Now
	}
	return &Episodes{n: n, now: now, servers: make(map[string]*episode)}
}

// RecordBind implements proxy.Recorder. Events that are not failmode
// decisions are ignored. The first failmode decision on a server in an
// episode raises "failmode safe: allowing binds without second factor
// (<cause>)" (or "failmode secure: denying binds (<cause>)"); the user's DN
// and name are left out of the alert (the auth log has them).
func (e *Episodes) RecordBind(ev proxy.BindEvent) {
	if !ev.Failmode {
		return
	}
	allowed := ev.Status == failmode.StatusAllow
	e.mu.Lock()
	ep := e.servers[ev.Server]
	first := ep == nil
	if first {
		ep = &episode{started: e.now(), mode: modeOf(ev.Rule)}
		e.servers[ev.Server] = ep
	}
	if allowed {
		ep.allowed++
	} else {
		ep.denied++
	}
	e.mu.Unlock()
	if !first {
		return
	}
	var msg string
	if ep.mode == string(failmode.Secure) {
		msg = fmt.Sprintf("failmode secure: denying binds (%s)", cause(ev.Msg))
	} else {
		msg = fmt.Sprintf("failmode safe: allowing binds without second factor (%s)", cause(ev.Msg))
	}
	e.n.Notify(Event{Time: ep.started, Kind: KindFailmode, Server: ev.Server, To: ep.mode, Msg: msg})
}

// EndEpisode ends the episode on every server that had failmode decisions:
// each gets one summary event ("failmode episode ended: 17 binds allowed
// without second factor, 3 denied (duo ok; lasted 4m12s)") and its counts
// are reset. reason says why it ended. Servers are reported in name order.
func (e *Episodes) EndEpisode(reason string) {
	e.mu.Lock()
	servers := make([]string, 0, len(e.servers))
	for s := range e.servers {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	eps := make([]*episode, len(servers))
	for i, s := range servers {
		eps[i] = e.servers[s]
	}
	clear(e.servers)
	e.mu.Unlock()
	for i, s := range servers {
		e.summarise(s, eps[i], reason)
	}
}

// EndServer ends the episode on one server only (for wiring where servers
// use different Duo integrations); it does nothing when server has none.
func (e *Episodes) EndServer(server, reason string) {
	e.mu.Lock()
	ep := e.servers[server]
	delete(e.servers, server)
	e.mu.Unlock()
	if ep != nil {
		e.summarise(server, ep, reason)
	}
}

func (e *Episodes) summarise(server string, ep *episode, reason string) {
	now := e.now()
	var details []string
	if reason != "" {
		details = append(details, reason)
	}
	details = append(details, "lasted "+now.Sub(ep.started).Round(time.Second).String())
	msg := fmt.Sprintf("failmode episode ended: %d %s allowed without second factor, %d denied (%s)",
		ep.allowed, plural(ep.allowed, "bind", "binds"), ep.denied, strings.Join(details, "; "))
	e.n.Notify(Event{Time: now, Kind: KindFailmode, Server: server, From: ep.mode, Msg: msg})
}

// Active returns the servers in a failmode episode, in name order.
func (e *Episodes) Active() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.servers))
	for s := range e.servers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// modeOf is the failmode a rule belongs to: secure_group is a safe section
// refusing a privileged user.
func modeOf(rule string) string {
	if failmode.Rule(rule) == failmode.RuleFailmodeDeny {
		return string(failmode.Secure)
	}
	return string(failmode.Safe)
}

// cause extracts the Duo cause from a failmode reason, "failmode safe:
// allowed without second factor (duo unreachable: connection refused)" →
// "duo unreachable: connection refused"; a reason without one is kept whole.
func cause(reason string) string {
	if strings.HasSuffix(reason, ")") {
		depth := 0
		for i := len(reason) - 1; i >= 0; i-- {
			switch reason[i] {
			case ')':
				depth++
			case '(':
				depth--
			}
			if depth == 0 {
				if c := strings.TrimSpace(reason[i+1 : len(reason)-1]); c != "" && i > 0 {
					return c
				}
				break
			}
		}
	}
	if reason == "" {
		return "duo unreachable"
	}
	return reason
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
