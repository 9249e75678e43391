package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuthSyslogFunc exposes the auth syslog sender's counters and state
// (authlog.Syslog's Sent, Dropped and Connected) as
// ldapgate_auth_syslog_{sent,dropped}_total and ldapgate_auth_syslog_connected,
// read at each scrape. Call it once, when auth_syslog is on; later calls
// are ignored.
func (m *Metrics) AuthSyslogFunc(sent, dropped func() uint64, connected func() bool) {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "auth_syslog_sent_total",
			Help: "Auth events written to the auth_syslog server."}, func() float64 { return float64(sent()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "auth_syslog_dropped_total",
			Help: "Auth events not shipped to the auth_syslog server: its queue was full, or ldapgate stopped first."}, func() float64 { return float64(dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "auth_syslog_connected",
			Help: "1 while ldapgate holds a connection to the auth_syslog server, else 0."}, func() float64 {
			if connected() {
				return 1
			}
			return 0
		}),
	} {
		// An AlreadyRegisteredError is a later call: ignored.
		_ = m.reg.Register(c)
	}
}
