package duostate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/config"
	"github.com/ldapgate/ldapgate/failmode"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeChecker is a Checker made of a function.
type fakeChecker struct {
	check func(context.Context) error
}

func (f fakeChecker) Check(ctx context.Context) error { return f.check(ctx) }

// switchChecker returns whatever error it was last set to.
type switchChecker struct {
	mu  sync.Mutex
	err error
	n   int
}

func (s *switchChecker) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return s.err
}

func (s *switchChecker) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// fakeVerifier is a second factor made of a function.
type fakeVerifier struct {
	verify func(context.Context, failmode.Attempt) (failmode.Verdict, error)
}

func (f fakeVerifier) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	return f.verify(ctx, a)
}

// changes records OnChange calls.
type changes struct {
	mu  sync.Mutex
	all []Change
}

func (c *changes) add(ch Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
}

func (c *changes) list() []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Change(nil), c.all...)
}

// testProbeTimeout is the probe deadline of the Trackers tests make, as
// wire.go passes duo.timeout.
const testProbeTimeout = 10 * time.Second

// fixture is a Tracker on a fake clock with a settable checker, recording its
// changes.
type fixture struct {
	clock   *fakeClock
	checker *switchChecker
	changes *changes
	tr      *Tracker
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), checker: &switchChecker{}, changes: &changes{}}
	cfg.Now = f.clock.Now
	cfg.OnChange = f.changes.add
	if cfg.Integration == "" {
		cfg.Integration = "api-test.duosecurity.com/DIXXXXXXXXXXXXXXXXXX"
	}
	f.tr = New(withConfigDefaults(cfg), f.checker)
	return f
}

// wantChanges checks the changes recorded so far, as "from→to" strings.
func (f *fixture) wantChanges(t *testing.T, want ...string) []Change {
	t.Helper()
	got := f.changes.list()
	var s []string
	for _, c := range got {
		s = append(s, string(c.From)+"→"+string(c.To))
	}
	if len(s) != len(want) {
		t.Fatalf("changes %v, want %v (%+v)", s, want, got)
	}
	for i := range s {
		if s[i] != want[i] {
			t.Fatalf("changes %v, want %v (%+v)", s, want, got)
		}
	}
	return got
}

func (f *fixture) wantState(t *testing.T, want State) Status {
	t.Helper()
	st := f.tr.Status()
	if st.State != want {
		t.Fatalf("state %s, want %s (%+v)", st.State, want, st)
	}
	return st
}

// refused is a probe whose connection was refused, as duoclient reports it:
// decisive.
func refused() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "connection refused",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

// noSuchHost is a probe whose API host does not resolve: decisive.
func noSuchHost() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "dns lookup failed",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api-test.duosecurity.com", IsNotFound: true}}}
}

// dnsTimeout is a probe whose DNS lookup timed out: one piece of evidence.
func dnsTimeout() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "dns lookup failed",
		Err: &net.DNSError{Err: "i/o timeout", Name: "api-test.duosecurity.com", IsTimeout: true, IsNotFound: true}}
}

// noAnswer is a probe cut off at its deadline, as duoclient reports it: one
// piece of evidence.
func noAnswer() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "no answer within 10s",
		Err: fmt.Errorf("%w: Get \"https://api-test.duosecurity.com/auth/v2/check\": %w", context.DeadlineExceeded, context.DeadlineExceeded)}
}

// readTimeout is a probe whose read timed out in the transport (a net.Error
// with Timeout): one piece of evidence.
func readTimeout() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "no answer within 10s",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}}
}

// reset is a probe whose connection was reset: one piece of evidence.
func reset() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "connection reset",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
}

// http503 is a probe Duo answered with a 5xx: one piece of evidence.
func http503() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "HTTP 503"}
}

// refusedText says "connection refused" in its text only: classification is
// by types, so it is one piece of evidence, not decisive.
func refusedText() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "connection refused",
		Err: errors.New("dial tcp 192.0.2.1:443: connect: connection refused")}
}

// scriptedNext is a second factor that returns what it was last set to and
// counts its calls. When entered is non-nil it is sent to as each call
// starts; when hold is non-nil each call waits for it to be closed.
type scriptedNext struct {
	mu      sync.Mutex
	v       failmode.Verdict
	err     error
	calls   atomic.Int64
	entered chan struct{}
	hold    chan struct{}
}

func (s *scriptedNext) Verify(ctx context.Context, a failmode.Attempt) (failmode.Verdict, error) {
	s.calls.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.hold != nil {
		<-s.hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.err
}

func (s *scriptedNext) set(v failmode.Verdict, err error) {
	s.mu.Lock()
	s.v, s.err = v, err
	s.mu.Unlock()
}

// Results of a second-factor call, as duoclient returns them.
var (
	pushDenied = failmode.Verdict{Message: "Login request denied."}
	approved   = failmode.Verdict{Allowed: true, Message: "Success. Logging you in..."}
)

func preauthUnreachable() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StagePreauth, Detail: "HTTP 503"}
}

// withConfigDefaults fills the zero fields of cfg with config's defaults,
// as the wiring does from a validated file.
func withConfigDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if cfg.UnreachableAfter == 0 {
		cfg.UnreachableAfter = config.DefaultDuoUnreachableAfter
	}
	def(&cfg.DegradedLatency, config.DefaultDuoDegradedLatency)
	def(&cfg.Window, config.DuoWindow)
	def(&cfg.ProbeInterval, config.DefaultDuoProbeInterval)
	def(&cfg.FastProbeInterval, config.DuoFastProbeInterval)
	def(&cfg.ProbeTimeout, testProbeTimeout)
	return cfg
}

// newTracker is New with config's defaults for the fields cfg leaves zero.
func newTracker(cfg Config, c Checker) *Tracker { return New(withConfigDefaults(cfg), c) }
