package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ldapgate/ldapgate/duostate"
	"github.com/ldapgate/ldapgate/failmode"
)

const namespace = "ldapgate"

// DuoBuckets are the buckets of ldapgate_duo_request_duration_seconds: from
// a fast preauth on a good link (10ms) to a push the user answers at the last
// moment (60s).
var DuoBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60}

// Metrics holds ldapgate's collectors and the private registry they are
// registered on. Its methods are safe for concurrent use and never block on
// I/O, so RecordBind and ObserveDuo may be called on the bind path.
type Metrics struct {
	reg *prometheus.Registry

	binds            *prometheus.CounterVec
	failmode         *prometheus.CounterVec
	duoDuration      *prometheus.HistogramVec
	duoErrors        *prometheus.CounterVec
	duoState         *prometheus.GaugeVec
	directoryUp      *prometheus.GaugeVec
	directoryURLUp   *prometheus.GaugeVec
	primaryOnlyUntil *prometheus.GaugeVec
	connections      *gaugeFuncs
	connRefused      *prometheus.CounterVec
	connDropped      *prometheus.CounterVec

	connsMu sync.Mutex
	conns   map[string]*Conns // by server section, see Conns

	alertsOnce sync.Once
}

var _ failmode.Recorder = (*Metrics)(nil)

// New creates the metrics on a fresh registry, together with the Go runtime
// and process collectors and ldapgate_build_info{version,goversion} 1.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		binds: counterVec("binds_total",
			"Bind decisions by server section and outcome (failmode rule or primary outcome).",
			"server", "outcome"),
		failmode: counterVec("failmode_decisions_total",
			"Binds decided by failmode because Duo was unreachable, by server section, failmode (safe|secure) and decision (allow|deny).",
			"server", "failmode", "decision"),
		duoDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "duo_request_duration_seconds",
			Help:    "Duration of HTTP calls to Duo by endpoint (preauth, auth, check).",
			Buckets: DuoBuckets,
		}, []string{"endpoint"}),
		duoErrors: counterVec("duo_errors_total",
			"Calls to Duo that ended in an error, by class (unreachable, degraded, misconfigured, untrusted, rejected, local_error, unknown).",
			"class"),
		duoState: gaugeVec("duo_state",
			"1 for the current health state of a Duo integration (api_host/ikey), 0 for the others.",
			"integration", "state"),
		directoryUp: gaugeVec("directory_up",
			"1 when the directory answered its latest check, else 0.",
			"directory"),
		directoryURLUp: gaugeVec("directory_url_up",
			"1 when the directory URL (scheme://host:port) serves: it answered its latest check and accepts the lookup account, else 0.",
			"directory", "url"),
		primaryOnlyUntil: gaugeVec("primary_only_until_seconds",
			"Unix time at which primary-only mode (no second factor in safe sections) ends; 0 when off.",
			"server"),
		connections: newGaugeFuncs(prometheus.NewDesc(
			namespace+"_connections",
			"TCP client connections open on the server section's listeners, from accept to close (refused ones excluded).",
			[]string{"server"}, nil)),
		connRefused: counterVec("connections_refused_total",
			"Client connections refused when accepted, by server section and reason (max_connections, per_ip).",
			"server", "reason"),
		connDropped: counterVec("connections_dropped_total",
			"Client connections ldapgate closed, by server section and reason (idle, write_timeout, request_timeout, buffer_budget, protocol_error, internal_error, other).",
			"server", "reason"),
		conns: map[string]*Conns{},
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; labelled with the build's version and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.binds, m.failmode, m.duoDuration, m.duoErrors, m.duoState,
		m.directoryUp, m.directoryURLUp, m.primaryOnlyUntil, m.connections, m.connRefused, m.connDropped,
	)
	return m
}

// counterVec is a counter named ldapgate_<name> with the given labels.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

// gaugeVec is a gauge named ldapgate_<name> with the given labels.
func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

// Registry returns the private registry, for tests and for registering
// further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails is reported in the scrape's errors and logged by
// promhttp, and the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
	})
}

// RecordBind implements failmode.Recorder: it counts the bind under its
// outcome and, for failmode decisions, under failmode and decision. Only the
// server section name, the rule and the derived failmode words become label
// values; the event's DN, username and client address are never used.
func (m *Metrics) RecordBind(e failmode.BindEvent) {
	m.binds.WithLabelValues(e.Server, Outcome(e.Rule)).Inc()
	if e.Failmode {
		mode, decision := FailmodeDecision(e)
		m.failmode.WithLabelValues(e.Server, mode, decision).Inc()
	}
}

// ObserveDuo records one HTTP call to Duo: its duration by endpoint and, when
// it ended in an error (any class but allowed and denied), the error's class.
// It fits duoclient's Config.Observe hook once integration is bound:
//
//	Observe: func(st failmode.Stage, d time.Duration, c failmode.Class) { m.ObserveDuo(integ, st, d, c) }
//
// integration is accepted so callers need not change if the metrics gain a
// per-integration label; today the state gauge carries it.
func (m *Metrics) ObserveDuo(integration string, stage failmode.Stage, d time.Duration, class failmode.Class) {
	_ = integration
	m.duoDuration.WithLabelValues(endpointLabel(stage)).Observe(d.Seconds())
	switch class {
	case failmode.Allowed, failmode.Denied:
		return
	}
	m.duoErrors.WithLabelValues(classLabel(class)).Inc()
}

// SetDuoState sets ldapgate_duo_state for integration: 1 for state, 0 for
// every other state duostate knows.
func (m *Metrics) SetDuoState(integration string, state duostate.State) {
	for _, s := range duostate.States() {
		if s != state {
			m.duoState.WithLabelValues(integration, string(s)).Set(0)
		}
	}
	m.duoState.WithLabelValues(integration, string(state)).Set(1)
}

// SetDirectoryUp records whether the named directory answers.
func (m *Metrics) SetDirectoryUp(directory string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.directoryUp.WithLabelValues(directory).Set(v)
}

// ConnectionsFunc makes ldapgate_connections{server} report f() at each
// scrape. f must be cheap and must not block (an atomic load). Calling it
// again for the same server replaces f; a nil f removes the series.
func (m *Metrics) ConnectionsFunc(server string, f func() float64) {
	m.connections.set(server, f)
}

// SetPrimaryOnlyUntil records when primary-only mode ends for server; the
// zero time means it is off (the gauge reads 0).
func (m *Metrics) SetPrimaryOnlyUntil(server string, until time.Time) {
	v := 0.0
	if !until.IsZero() {
		v = float64(until.UnixNano()) / 1e9
	}
	m.primaryOnlyUntil.WithLabelValues(server).Set(v)
}

// AlertsFunc exposes the alert webhook's counters (alert.Webhook's
// Delivered, Dropped and Failed) as
// ldapgate_alerts_{delivered,dropped,failed}_total, read at each scrape. Call
// it at most once; later calls are ignored. A nil func leaves its counter out.
func (m *Metrics) AlertsFunc(delivered, dropped, failed func() uint64) {
	m.alertsOnce.Do(func() {
		for _, a := range []struct {
			name, help string
			f          func() uint64
		}{
			{"delivered", "Operator alerts the webhook accepted (2xx).", delivered},
			{"dropped", "Operator alerts dropped because the alert queue was full.", dropped},
			{"failed", "Operator alerts given up on after every retry failed.", failed},
		} {
			if a.f == nil {
				continue
			}
			f := a.f
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: namespace, Name: "alerts_" + a.name + "_total", Help: a.help,
			}, func() float64 { return float64(f()) }))
		}
	})
}
