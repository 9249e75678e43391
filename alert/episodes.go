package alert

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
)

// Episodes turns failmode decisions into alerts once per outage episode, not
// once per bind: the first failmode decision on a server raises one
// KindFailmode event; the rest are counted until Duo recovers
// (DuoStateChanged), which raises one summary per server.
//
// It implements failmode.Recorder and is safe for concurrent use. The notifier
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

var _ failmode.Recorder = (*Episodes)(nil)

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

// RecordBind implements failmode.Recorder. Events that are not failmode
// decisions are ignored. The first failmode decision on a server in an
// episode raises "failmode safe: allowing binds without second factor
// (<cause>)" (or "failmode secure: denying binds (<cause>)"); the user's DN
// and name are left out of the alert (the auth log has them).
func (e *Episodes) RecordBind(ev failmode.BindEvent) {
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
		msg = fmt.Sprintf("failmode secure: denying binds (%s)", ev.Cause.CauseText())
	} else {
		msg = fmt.Sprintf("failmode safe: allowing binds without second factor (%s)", ev.Cause.CauseText())
	}
	e.n.Notify(Event{Time: ep.started, Kind: KindFailmode, Server: ev.Server, To: ep.mode, Msg: msg})
}

// DuoStateChanged is told every change of a Duo integration's state, with
// the sections that use it. An episode ends when Duo is back to serving
// (ok or degraded) from a state in which binds were decided without it
// (unreachable, misconfigured): each of those sections that had failmode
// decisions gets one summary. Episodes owns the whole episode, start to end.
func (e *Episodes) DuoStateChanged(sections []string, from, to duostate.State) {
	if !to.Serving() || from.Serving() {
		return
	}
	for _, s := range sections {
		e.endServer(s, "duo "+string(to))
	}
}

// endServer ends the episode on one server; it does nothing when server
// has none.
func (e *Episodes) endServer(server, reason string) {
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
func modeOf(rule failmode.Rule) string {
	if rule == failmode.RuleFailmodeDeny {
		return string(failmode.Secure)
	}
	return string(failmode.Safe)
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
