package health

import (
	"sync"
	"sync/atomic"

	"github.com/ldapgate/ldapgate/failmode"
)

// BindCounter counts bind decisions per server section and outcome (the
// BindEvent's Rule: a failmode rule or a primary outcome) for /status. It
// implements failmode.Recorder; after the first bind of an outcome, recording
// is a read lock and an atomic add.
type BindCounter struct {
	mu sync.RWMutex
	m  map[string]map[string]*atomic.Uint64
}

var _ failmode.Recorder = (*BindCounter)(nil)

// NewBindCounter returns an empty BindCounter.
func NewBindCounter() *BindCounter {
	return &BindCounter{m: make(map[string]map[string]*atomic.Uint64)}
}

// RecordBind implements failmode.Recorder. Only the server name and rule are
// kept; an empty rule counts as "unknown".
func (c *BindCounter) RecordBind(e failmode.BindEvent) {
	outcome := string(e.Rule)
	if outcome == "" {
		outcome = "unknown"
	}
	c.mu.RLock()
	n := c.m[e.Server][outcome]
	c.mu.RUnlock()
	if n == nil {
		c.mu.Lock()
		byOutcome := c.m[e.Server]
		if byOutcome == nil {
			byOutcome = make(map[string]*atomic.Uint64)
			c.m[e.Server] = byOutcome
		}
		if n = byOutcome[outcome]; n == nil {
			n = new(atomic.Uint64)
			byOutcome[outcome] = n
		}
		c.mu.Unlock()
	}
	n.Add(1)
}

// Snapshot returns server's counts by outcome: a fresh map (empty, not nil,
// for a server with no binds yet).
func (c *BindCounter) Snapshot(server string) map[string]uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]uint64, len(c.m[server]))
	for k, n := range c.m[server] {
		out[k] = n.Load()
	}
	return out
}
