// Command benchrun measures ldapgate against the directory it fronts:
// direct slapd, slapd relaying through back-ldap (what any LDAP proxy
// costs), and ldapgate (a separate process built from this tree), in
// interleaved rounds on loopback, and writes BENCHMARKS.md and a chart.
//
//	go run ./internal/benchrun --ldapgate bin/ldapgate [--quick]
//
// `make bench` and `make bench-quick` run it. It exits 1 when any scenario
// had errors. It is a measuring instrument, not part of the ldapgate
// binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// sizes are the knobs of one mode.
type sizes struct {
	Mode     string
	Rounds   int
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	// OutageWarmup covers the binds that wait for Duo's timeout before
	// ldapgate marks it unreachable.
	OutageWarmup time.Duration
	Storm        int           // fresh connections, each one gated bind
	StormWindow  time.Duration // they arrive within this
	StormPush    time.Duration // each push takes this long
	Pending      int           // pushes left waiting
}

var (
	quickSizes = sizes{Mode: "quick", Rounds: 2, Conns: 4, Warmup: 300 * time.Millisecond, Duration: time.Second,
		OutageWarmup: 1500 * time.Millisecond, Storm: 100, StormWindow: time.Second, StormPush: 2 * time.Second, Pending: 200}
	// 10,000 pending pushes fit under the box's hard limit of 20,000
	// descriptors per process because one costs ldapgate one: its client's
	// connection (the directory connection is released while it waits,
	// the Duo call shares an HTTP/2 connection).
	fullSizes = sizes{Mode: "full", Rounds: 3, Conns: 16, Warmup: 2 * time.Second, Duration: 10 * time.Second,
		OutageWarmup: 3 * time.Second, Storm: 1000, StormWindow: time.Second, StormPush: 2 * time.Second, Pending: 10000}
)

func main() {
	var (
		binary = flag.String("ldapgate", "bin/ldapgate", "the ldapgate binary to measure")
		quick  = flag.Bool("quick", false, "small counts and short durations (make bench-quick)")
		out    = flag.String("out", "BENCHMARKS.md", "the report to write")
		chart  = flag.String("chart", "benchmarks.png", "the chart to write (PNG)")
		only   = flag.String("only", "", "run only this scenario (by name), e.g. pending or storm")
	)
	flag.Parse()
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := run(ctx, *binary, sz, *only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
	if err := rep.write(*out, *chart); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
	fmt.Printf("benchrun: wrote %s and %s\n", *out, *chart)
	if n := rep.errors(); n > 0 {
		fmt.Fprintf(os.Stderr, "benchrun: %d errors; see %s\n", n, *out)
		os.Exit(1)
	}
}
