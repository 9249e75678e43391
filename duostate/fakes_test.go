package duostate

import (
	"context"
	"sync"
	"testing"
	"time"

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
	f.tr = New(cfg, f.checker)
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

func refused() error {
	return &failmode.Error{Class: failmode.Unreachable, Stage: failmode.StageCheck, Detail: "connection refused"}
}
