package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// gaugeFuncs is a gauge with one label whose series are read from functions
// at scrape time, one per label value. Unlike one prometheus.GaugeFunc per
// value, a function can be replaced or removed without re-registering.
type gaugeFuncs struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	fs   map[string]func() float64
}

func newGaugeFuncs(desc *prometheus.Desc) *gaugeFuncs {
	return &gaugeFuncs{desc: desc, fs: make(map[string]func() float64)}
}

func (g *gaugeFuncs) set(label string, f func() float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f == nil {
		delete(g.fs, label)
		return
	}
	g.fs[label] = f
}

// Describe implements prometheus.Collector.
func (g *gaugeFuncs) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector. The functions are called outside
// the lock, so a slow one cannot hold up set.
func (g *gaugeFuncs) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	labels := make([]string, 0, len(g.fs))
	fs := make([]func() float64, 0, len(g.fs))
	for l := range g.fs {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		fs = append(fs, g.fs[l])
	}
	g.mu.Unlock()
	for i, f := range fs {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, f(), labels[i])
	}
}
