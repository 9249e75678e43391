package metrics

import (
	"slices"
	"sync/atomic"
)

// The reason label values of ldapgate_connections_refused_total and
// ldapgate_connections_dropped_total (besides "other"). They are gldap's
// ConnEvent reasons, spelled the same ("proxy_protocol": proxy's
// ReasonProxyProtocol).
var (
	refusedReasons = []string{"max_connections", "per_ip", "proxy_protocol"}
	droppedReasons = []string{"idle", "write_timeout", "request_timeout", "buffer_budget", "protocol_error", "internal_error"}
)

// ReasonOther is the reason label of a refusal or drop whose reason is not
// a known one.
const ReasonOther = "other"

// Conns counts one server section's TCP client connections: those open
// now (ldapgate_connections, once passed to ConnectionsFunc), and those
// refused or dropped, by reason. Its methods are cheap and never block: they
// are called from the accept loop and the connections' goroutines.
type Conns struct {
	m      *Metrics
	server string
	open   atomic.Int64
}

// Conns returns the connection counters of server, creating them (and its
// refused and dropped series, at 0) on first use.
func (m *Metrics) Conns(server string) *Conns {
	m.connsMu.Lock()
	defer m.connsMu.Unlock()
	if c, ok := m.conns[server]; ok {
		return c
	}
	c := &Conns{m: m, server: server}
	for _, r := range refusedReasons {
		m.connRefused.WithLabelValues(server, r)
	}
	for _, r := range droppedReasons {
		m.connDropped.WithLabelValues(server, r)
	}
	m.conns[server] = c
	return c
}

// Opened counts a connection accepted to be served.
func (c *Conns) Opened() { c.open.Add(1) }

// Closed counts a served connection closed. A reason from droppedReasons
// (or any other non-empty reason but "stopping", as "other") counts it as
// dropped too; "" (the client ended it) and "stopping" (shutdown) don't.
func (c *Conns) Closed(reason string) {
	c.open.Add(-1)
	switch {
	case reason == "" || reason == "stopping":
	case slices.Contains(droppedReasons, reason):
		c.m.connDropped.WithLabelValues(c.server, reason).Inc()
	default:
		c.m.connDropped.WithLabelValues(c.server, ReasonOther).Inc()
	}
}

// Refused counts a connection refused when accepted.
func (c *Conns) Refused(reason string) {
	if !slices.Contains(refusedReasons, reason) {
		reason = ReasonOther
	}
	c.m.connRefused.WithLabelValues(c.server, reason).Inc()
}

// Open is the number of connections open now, for ConnectionsFunc.
func (c *Conns) Open() float64 { return float64(c.open.Load()) }
