package duostate

import "time"

// slots is how many buckets divide the window: the window slides in steps
// of Window/slots, and memory stays constant whatever the traffic.
const slots = 60

// window sums preauth latencies and counts degraded outcomes over the last
// Window, in slots buckets.
type window struct {
	width   time.Duration
	buckets [slots]bucket
	// lastDegraded describes the latest degraded outcome.
	lastDegraded string
}

type bucket struct {
	slot     int64 // absolute slot number (time / width); valid when used
	used     bool
	samples  int
	sum      time.Duration
	degraded int
}

func newWindow(span time.Duration) window {
	w := span / slots
	if w <= 0 {
		w = 1
	}
	return window{width: w}
}

func (w *window) slotOf(t time.Time) int64 { return t.UnixNano() / int64(w.width) }

// at returns the bucket for now, emptied if it last held an older slot.
func (w *window) at(now time.Time) *bucket {
	s := w.slotOf(now)
	b := &w.buckets[int(uint64(s)%slots)]
	if !b.used || b.slot != s {
		*b = bucket{slot: s, used: true}
	}
	return b
}

// addLatency records one preauth answer that took d.
func (w *window) addLatency(now time.Time, d time.Duration) {
	b := w.at(now)
	b.samples++
	b.sum += d
}

// addDegraded records one degraded outcome described by what.
func (w *window) addDegraded(now time.Time, what string) {
	w.at(now).degraded++
	w.lastDegraded = what
}

// summary fills the window part of a recent as of now.
func (w *window) summary(now time.Time, r *recent) {
	cur := w.slotOf(now)
	var sum time.Duration
	r.samples, r.degraded, r.mean, r.degradedDetail = 0, 0, 0, ""
	for i := range w.buckets {
		b := &w.buckets[i]
		if !b.used || b.slot > cur || b.slot <= cur-slots {
			continue
		}
		r.samples += b.samples
		sum += b.sum
		r.degraded += b.degraded
	}
	if r.samples > 0 {
		r.mean = sum / time.Duration(r.samples)
	}
	if r.degraded > 0 {
		r.degradedDetail = w.lastDegraded
	}
}
