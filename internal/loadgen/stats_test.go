package loadgen

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// series returns 1ms, 2ms, ..., n ms.
func series(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = ms(i + 1)
	}
	return s
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"no samples", nil, 50, 0},
		{"one sample", []time.Duration{ms(7)}, 99, ms(7)},
		{"median of 10", series(10), 50, ms(5)},
		{"p90 of 10 is the 9th", series(10), 90, ms(9)},
		{"p99 of 10 is the largest", series(10), 99, ms(10)},
		{"p99 of 1000 is the 990th", series(1000), 99, ms(990)},
		{"p99 of 1001 is the 991st", series(1001), 99, ms(991)},
		{"p100 is the largest", series(3), 100, ms(3)},
		{"p0 is the smallest", series(3), 0, ms(1)},
		{"p50 of 2 is the lower", series(2), 50, ms(1)},
		{"p51 of 2 is the upper", series(2), 51, ms(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.samples, tt.p); got != tt.want {
				t.Errorf("Percentile(%d samples, %v) = %v, want %v", len(tt.samples), tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSortsFirst(t *testing.T) {
	s := []time.Duration{ms(30), ms(10), ms(20), ms(40)}
	got := Summarize(s)
	want := Summary{P50: ms(20), P90: ms(40), P99: ms(40), Max: ms(40)}
	if got != want {
		t.Fatalf("Summarize = %+v, want %+v", got, want)
	}
}

func TestMergeAddsCountsAndSamples(t *testing.T) {
	a := Result{Ops: 2, Elapsed: time.Second, Samples: []time.Duration{ms(1), ms(2)}, Errors: map[string]int{"x": 1}}
	b := Result{Ops: 3, Elapsed: 2 * time.Second, Samples: []time.Duration{ms(3), ms(4), ms(5)}, Errors: map[string]int{"x": 2, "y": 1}}
	m := Merge(a, b)
	if m.Ops != 5 || m.Elapsed != 3*time.Second || len(m.Samples) != 5 || m.Errors["x"] != 3 || m.Errors["y"] != 1 {
		t.Fatalf("Merge = %+v", m)
	}
	if got := m.Throughput(); got < 1.66 || got > 1.67 {
		t.Fatalf("throughput of 5 ops in 3s = %v", got)
	}
	if m.ErrorCount() != 4 {
		t.Fatalf("ErrorCount = %d, want 4", m.ErrorCount())
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"result code", ldap.NewError(ldap.LDAPResultInvalidCredentials, errors.New("nope")), "49 Invalid Credentials"},
		{"wrapped result code", fmt.Errorf("bind: %w", ldap.NewError(ldap.LDAPResultBusy, errors.New("busy"))), "51 Busy"},
		{"network", ldap.NewError(ldap.ErrorNetwork, errors.New("reset")), "200 Network Error"},
		{"not an LDAP error", errors.New("boom"), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify = %q, want %q", got, tt.want)
			}
		})
	}
}
