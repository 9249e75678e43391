package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/duosim"
	"github.com/ldapgate/ldapgate/internal/loadgen"
	"github.com/ldapgate/ldapgate/internal/sampledata"
	"github.com/ldapgate/ldapgate/internal/slapdtest"
)

const dialTimeout = 10 * time.Second

// The targets, in the order reports show them. Ratios are to direct.
const (
	direct   = "slapd"
	relay    = "slapd back-ldap"
	ldapgate = "ldapgate"
)

// bench is everything a scenario needs.
type bench struct {
	sz      sizes
	users   []benchUser
	next    atomic.Int64 // the next user a gated bind takes
	sim     *duosim.Sim
	gate    *gate
	urls    map[string]string // target → URL (the gate section for ldapgate)
	safeURL string
}

func (b *bench) user() benchUser {
	return b.users[int(b.next.Add(1))%len(b.users)]
}

func run(ctx context.Context, binary string, sz sizes, only string) (*report, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("ldapgate binary: %w (run make build)", err)
	}
	rep := newReport(sz)
	b := &bench{sz: sz, users: benchUsers(sz.Storm + sz.Pending + 200)}
	rep.SlapdVersion = slapdVersion()

	dir, stopDir, err := slapdtest.Launch(slapdtest.WithExtraLDIF(benchLDIF(b.users)))
	if err != nil {
		return nil, err
	}
	defer stopDir()
	rel, stopRel, err := slapdtest.Launch(slapdtest.WithBackLDAP(dir.URL))
	if err != nil {
		return nil, err
	}
	defer stopRel()
	b.sim, err = duosim.New(duosim.Options{Users: duoUsers(b.users)})
	if err != nil {
		return nil, err
	}
	defer b.sim.Close()
	tmp, err := os.MkdirTemp("", "benchrun-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cfg, err := writeGateConfig(tmp, dir.URL, b.sim, sz.Storm+sz.Pending+1000)
	if err != nil {
		return nil, err
	}
	b.gate, err = startGate(ctx, binary, cfg, gateSections)
	if err != nil {
		return nil, err
	}
	defer b.gate.stop()
	if err := waitReady(ctx, b.gate, 30*time.Second); err != nil {
		return nil, err
	}
	b.urls = map[string]string{direct: dir.URL, relay: rel.URL, ldapgate: b.gate.url("gate")}
	pids := map[string]int{procDirect: dir.PID(), procRelay: rel.PID(), procGate: b.gate.cmd.Process.Pid, procLoad: os.Getpid()}
	b.safeURL = b.gate.url("safe")

	want := func(name string) bool { return only == "" || only == name }
	for round := 1; round <= sz.Rounds; round++ {
		for _, sc := range b.scenarios() {
			if !want(sc.name) {
				continue
			}
			for _, t := range sc.targets {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				fmt.Fprintf(os.Stderr, "benchrun: round %d/%d %s → %s\n", round, sz.Rounds, sc.name, t)
				var r loadgen.Result
				var err error
				use := measureCPU(pids, func() { r, err = sc.run(ctx, t) })
				if err != nil {
					return nil, fmt.Errorf("%s against %s: %w", sc.name, t, err)
				}
				rep.add(sc, t, r)
				rep.addCPU(sc.name, t, use)
			}
		}
	}
	if want("storm") {
		for _, t := range []string{direct, relay, ldapgate} {
			fmt.Fprintf(os.Stderr, "benchrun: storm of %d → %s\n", sz.Storm, t)
			var r loadgen.Result
			use := measureCPU(pids, func() { r = b.storm(ctx, t) })
			rep.add(stormScenario, t, r)
			rep.addCPU(stormScenario.name, t, use)
		}
	}
	if want("pending") {
		fmt.Fprintf(os.Stderr, "benchrun: %d pending pushes\n", sz.Pending)
		p, err := b.pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("pending: %w", err)
		}
		rep.Pending = p
	}
	return rep, nil
}

func slapdVersion() string {
	path, err := slapdtest.FindSlapd()
	if err != nil {
		return "unknown"
	}
	out, _ := exec.Command(path, "-VV").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	line = strings.TrimPrefix(strings.TrimSpace(line), "@(#) $OpenLDAP: ")
	line, _, _ = strings.Cut(line, " (")
	return line
}

// scenario is a fixed-duration measurement against some targets.
type scenario struct {
	name, what string
	targets    []string
	// baseline names the scenario whose direct-slapd result the ratios
	// are taken to, when it has none of its own.
	baseline string
	run      func(ctx context.Context, target string) (loadgen.Result, error)
}

var stormScenario = scenario{name: "storm", targets: []string{direct, relay, ldapgate},
	what: "fresh connections arriving within one second, each one bind (gated, with a push that takes the storm's push delay, through ldapgate)"}

var all = []string{direct, relay, ldapgate}

func (b *bench) scenarios() []scenario {
	app, _ := sampledata.LookupService("app")
	exempt := func(ctx context.Context, c *ldap.Conn) error { return c.Bind(app.DN(), app.Password) }
	return []scenario{
		{name: "exempt-bind", targets: all, what: "the exempt app account binds again and again on its connection",
			run: b.fixed(false, exempt)},
		{name: "exempt-bind-fresh", targets: all, what: "a new connection per bind of the exempt app account (dial, bind, close)",
			run: b.fixed(true, exempt)},
		{name: "bind-search", targets: all, what: "the exempt app account binds, then reads one entry (base search)",
			run: b.fixed(false, func(ctx context.Context, c *ldap.Conn) error {
				if err := exempt(ctx, c); err != nil {
					return err
				}
				_, err := c.Search(ldap.NewSearchRequest(app.DN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
					"(objectClass=*)", []string{"cn", "description"}, nil))
				return err
			})},
		{name: "gated-bind", targets: append(all[:len(all):len(all)], duoAlone),
			what: "a person binds on the connection; through ldapgate that is a password check and a Duo push the simulator approves at once. " +
				"The last row is the two Duo calls alone (preauth, auth), made with ldapgate's own Duo client, with no LDAP",
			run: func(ctx context.Context, target string) (loadgen.Result, error) {
				if target == duoAlone {
					return b.duoCalls(ctx, b.sz.Conns)
				}
				return b.fixed(false, b.personBind)(ctx, target)
			}},
		{name: "gated-bind-latency", targets: append(all[:len(all):len(all)], duoAlone),
			what: "the same on one connection, one bind at a time: the latency of a gated bind when nothing queues, which the issue's ≤ 1 ms added at p50 is about",
			run: func(ctx context.Context, target string) (loadgen.Result, error) {
				if target == duoAlone {
					return b.duoCalls(ctx, 1)
				}
				return b.fixedAt(ctx, b.urls[target], 1, b.sz.Warmup, false, b.personBind), nil
			}},
		{name: "outage-refuse", targets: []string{ldapgate}, baseline: "gated-bind",
			what: "a person binds in the fail-safe section while Duo refuses connections: the decision without Duo, on 4 connections (a steady load)",
			run:  b.outage(duosim.FaultRefuse)},
		{name: "outage-hang", targets: []string{ldapgate}, baseline: "gated-bind",
			what: "the same while Duo is blackholed (accepts, never answers)",
			run:  b.outage(duosim.FaultHang)},
	}
}

func (b *bench) personBind(ctx context.Context, c *ldap.Conn) error {
	u := b.user()
	return c.Bind(u.DN(), u.Password)
}

// connWorker runs op on one connection, or on a new one each time.
type connWorker struct {
	url   string
	fresh bool
	conn  *ldap.Conn
	op    func(context.Context, *ldap.Conn) error
}

func (w *connWorker) Do(ctx context.Context) error {
	if !w.fresh {
		return w.op(ctx, w.conn)
	}
	c, err := loadgen.Dial(w.url, dialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return w.op(ctx, c)
}

func (w *connWorker) Close() {
	if w.conn != nil {
		w.conn.Close()
	}
}

func (b *bench) fixed(fresh bool, op func(context.Context, *ldap.Conn) error) func(context.Context, string) (loadgen.Result, error) {
	return func(ctx context.Context, target string) (loadgen.Result, error) {
		return b.fixedAt(ctx, b.urls[target], b.sz.Conns, b.sz.Warmup, fresh, op), nil
	}
}

func (b *bench) fixedAt(ctx context.Context, url string, conns int, warmup time.Duration, fresh bool, op func(context.Context, *ldap.Conn) error) loadgen.Result {
	return loadgen.Run(ctx, loadgen.Spec{
		Conns: conns, Warmup: warmup, Duration: b.sz.Duration,
		Open: func(ctx context.Context, i int) (loadgen.Worker, error) {
			w := &connWorker{url: url, fresh: fresh, op: op}
			if !fresh {
				c, err := loadgen.Dial(url, dialTimeout)
				if err != nil {
					return nil, err
				}
				w.conn = c
			}
			return w, nil
		},
	})
}

// outage measures person binds in the fail-safe section with Duo in fault
// f, then clears it and waits until ldapgate says Duo is back.
func (b *bench) outage(f duosim.Fault) func(context.Context, string) (loadgen.Result, error) {
	return func(ctx context.Context, _ string) (loadgen.Result, error) {
		if err := b.sim.SetFault(f); err != nil {
			return loadgen.Result{}, err
		}
		r := b.fixedAt(ctx, b.safeURL, steadyConns, b.sz.OutageWarmup, false, b.personBind)
		if err := b.sim.SetFault(duosim.FaultNone); err != nil {
			return r, err
		}
		return r, waitReady(ctx, b.gate, 30*time.Second)
	}
}

// storm opens sz.Storm fresh connections within sz.StormWindow, each a
// person's bind, every one a different person.
func (b *bench) storm(ctx context.Context, target string) loadgen.Result {
	if target == ldapgate {
		b.sim.SetPushDelay(b.sz.StormPush)
		defer b.sim.SetPushDelay(0)
	}
	url := b.urls[target]
	return loadgen.Burst(ctx, b.sz.Storm, b.sz.StormWindow, func(ctx context.Context, i int) error {
		c, err := loadgen.Dial(url, dialTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		u := b.users[i]
		return c.Bind(u.DN(), u.Password)
	})
}

// steadyConns is how many connections the latency probes use, in both
// modes (the exempt binds while pushes wait, the decisions during an
// outage): a steady load, not one that saturates the box, whose p99 would
// then be its queue (direct slapd's own p99 at 16 connections is over
// 10 ms here).
const steadyConns = 4

// pendingResult is what sz.Pending pushes waiting at once cost ldapgate.
type pendingResult struct {
	Want, Reached int
	TookToReach   time.Duration
	Before        procStats
	During        procStats
	// Exempt binds of the app account on their own connections, before
	// and while the pushes wait.
	ExemptBefore, ExemptDuring loadgen.Result
	// Early counts gated binds answered while they should have waited.
	Early map[string]int
}

func (b *bench) pending(ctx context.Context) (*pendingResult, error) {
	app, _ := sampledata.LookupService("app")
	exempt := func(ctx context.Context, c *ldap.Conn) error { return c.Bind(app.DN(), app.Password) }
	p := &pendingResult{Want: b.sz.Pending, Early: map[string]int{}}
	var err error
	if p.Before, err = b.gate.stats(); err != nil {
		return nil, err
	}
	p.ExemptBefore = b.fixedAt(ctx, b.urls[ldapgate], steadyConns, b.sz.Warmup, false, exempt)

	b.sim.SetPushDelay(time.Hour)
	defer b.sim.SetPushDelay(0)
	authBefore := b.sim.Calls().Auth
	pctx, release := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*ldap.Conn
	early := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if pctx.Err() != nil {
			return // released: its end is ours
		}
		if err == nil {
			p.Early["answered (allowed) while it should wait"]++
			return
		}
		p.Early[loadgen.Classify(err)]++
	}
	offset := b.sz.Storm // people the storm did not push
	begin := time.Now()
	// Arrive at 1,000 a second, so that what is measured is the waiting,
	// not a listen backlog.
	for i := range b.sz.Pending {
		if i%100 == 0 && i > 0 {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := loadgen.Dial(b.urls[ldapgate], dialTimeout)
			if err != nil {
				early(err)
				return
			}
			c.SetTimeout(time.Hour)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			u := b.users[offset+i]
			early(c.Bind(u.DN(), u.Password))
		}()
	}
	limit := time.Minute + time.Duration(b.sz.Pending)*10*time.Millisecond
	for {
		p.Reached = b.sim.Calls().Auth - authBefore
		if p.Reached >= p.Want || time.Since(begin) > limit || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.TookToReach = time.Since(begin)
	// Each bind gives up its directory connection once it has waited
	// config.ReleaseUpstreamAfter: measure what waiting costs after that.
	select {
	case <-time.After(config.ReleaseUpstreamAfter + 500*time.Millisecond):
	case <-ctx.Done():
	}
	if p.During, err = b.gate.stats(); err != nil {
		release()
		return nil, err
	}
	p.ExemptDuring = b.fixedAt(ctx, b.urls[ldapgate], steadyConns, b.sz.Warmup, false, exempt)
	if after, err := b.gate.stats(); err == nil && after.RSSKiB > p.During.RSSKiB {
		p.During.RSSKiB = after.RSSKiB
	}
	release()
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	answered := 0
	for _, n := range p.Early {
		answered += n
	}
	if missing := p.Want - p.Reached - answered; missing > 0 {
		p.Early[fmt.Sprintf("neither answered nor at Duo within %v", limit)] += missing
	}
	return p, nil
}
