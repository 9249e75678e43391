package loadgen

import (
	"slices"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest sample with at least p% of the samples at or below
// it. It is 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	// rank = ceil(p/100 * n), computed in integers so that 90% of 10 is
	// exactly 9 whatever the float rounding.
	rank := int((p*float64(n) + 99.999999) / 100)
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summary is the latency distribution of a Result.
type Summary struct {
	P50, P90, P99, Max time.Duration
}

// Summarize sorts samples (in place) and returns their percentiles.
func Summarize(samples []time.Duration) Summary {
	slices.Sort(samples)
	if len(samples) == 0 {
		return Summary{}
	}
	return Summary{
		P50: Percentile(samples, 50),
		P90: Percentile(samples, 90),
		P99: Percentile(samples, 99),
		Max: samples[len(samples)-1],
	}
}
