// Package loadgen drives LDAP load for the benchmarks (internal/benchrun):
// a fixed number of workers running one operation in a loop for a fixed
// duration after a warm-up, or a burst of one-shot operations spread over
// a window, and the statistics of what they measured — throughput,
// latency percentiles and errors counted by LDAP result code.
//
// It measures; it asserts nothing. It is not part of the ldapgate binary.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Result is what a run measured. Only operations that started after the
// warm-up and ended before the deadline are counted.
type Result struct {
	Ops     int           // operations that succeeded
	Elapsed time.Duration // the measured window
	// Samples are the latencies of the successful operations.
	Samples []time.Duration
	// Errors counts the failed operations by Classify.
	Errors map[string]int
}

// Throughput is successful operations per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// ErrorCount is the number of failed operations.
func (r Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Summary is the latency distribution of the successful operations.
func (r Result) Summary() Summary { return Summarize(r.Samples) }

// Merge adds the results of several runs (rounds of one scenario):
// operations, errors and measured time add up, samples are pooled.
func Merge(rs ...Result) Result {
	m := Result{Errors: map[string]int{}}
	for _, r := range rs {
		m.Ops += r.Ops
		m.Elapsed += r.Elapsed
		m.Samples = append(m.Samples, r.Samples...)
		for k, v := range r.Errors {
			m.Errors[k] += v
		}
	}
	return m
}

// Classify names an operation's error for Result.Errors: "<code> <name>"
// for an LDAP result (go-ldap's 200 "Network Error" and its other local
// codes included), "other" for anything else.
func Classify(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		name, ok := ldap.LDAPResultCodeMap[le.ResultCode]
		if !ok {
			name = "Unknown"
		}
		return fmt.Sprintf("%d %s", le.ResultCode, name)
	}
	return "other"
}

// Worker is one connection's operation, called in a loop; Close ends it.
type Worker interface {
	Do(ctx context.Context) error
	Close()
}

// Spec is a fixed-duration run.
type Spec struct {
	Conns    int           // concurrent workers
	Warmup   time.Duration // run but not counted
	Duration time.Duration // counted
	// Open makes worker i (e.g. dials and binds a connection). A failure
	// is counted as an error of the run and the worker does not run.
	Open func(ctx context.Context, i int) (Worker, error)
}

// Run opens Conns workers, runs them for Warmup+Duration and returns what
// happened in the Duration window.
func Run(ctx context.Context, s Spec) Result {
	type local struct {
		ops     int
		samples []time.Duration
		errs    map[string]int
	}
	locals := make([]local, s.Conns)
	workers := make([]Worker, s.Conns)
	openErrs := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range s.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Open(ctx, i)
			if err != nil {
				mu.Lock()
				openErrs[Classify(err)]++
				mu.Unlock()
				return
			}
			workers[i] = w
		}()
	}
	wg.Wait()

	begin := time.Now()
	measureFrom := begin.Add(s.Warmup)
	end := measureFrom.Add(s.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	for i, w := range workers {
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &locals[i]
			l.errs = map[string]int{}
			for runCtx.Err() == nil {
				start := time.Now()
				err := w.Do(runCtx)
				stop := time.Now()
				if start.Before(measureFrom) || stop.After(end) {
					continue
				}
				if err != nil {
					l.errs[Classify(err)]++
					continue
				}
				l.ops++
				l.samples = append(l.samples, stop.Sub(start))
			}
		}()
	}
	wg.Wait()
	for _, w := range workers {
		if w != nil {
			w.Close()
		}
	}
	r := Result{Elapsed: s.Duration, Errors: openErrs}
	for _, l := range locals {
		r.Ops += l.ops
		r.Samples = append(r.Samples, l.samples...)
		for k, v := range l.errs {
			r.Errors[k] += v
		}
	}
	return r
}

// Burst starts n one-shot operations evenly spread over window (the i-th
// starts at i*window/n) and waits for all of them. Elapsed is the time
// from the first start to the last end; every operation counts.
func Burst(ctx context.Context, n int, window time.Duration, op func(ctx context.Context, i int) error) Result {
	samples := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	begin := time.Now()
	var lastEnd time.Time
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d := time.Duration(int64(window) * int64(i) / int64(n)); d > 0 {
				t := time.NewTimer(time.Until(begin.Add(d)))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					errs[i] = ctx.Err()
					return
				}
			}
			start := time.Now()
			errs[i] = op(ctx, i)
			stop := time.Now()
			samples[i] = stop.Sub(start)
			mu.Lock()
			if stop.After(lastEnd) {
				lastEnd = stop
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := Result{Errors: map[string]int{}, Elapsed: lastEnd.Sub(begin)}
	for i, err := range errs {
		if err != nil {
			r.Errors[Classify(err)]++
			continue
		}
		r.Ops++
		r.Samples = append(r.Samples, samples[i])
	}
	return r
}

// Dial connects to an LDAP URL with SO_LINGER 0, so that closing the
// connection resets it instead of leaving it in TIME_WAIT: a benchmark
// opening thousands of connections a second on loopback would otherwise
// run out of ephemeral ports, which measures the kernel, not the server.
func Dial(url string, timeout time.Duration) (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: timeout, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		})
		return errors.Join(err, serr)
	}}
	return ldap.DialURL(url, ldap.DialWithDialer(d))
}
