package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Fallback is a Store in front of a shared one (Redis) and a local one,
// routing each call by kind when the shared store cannot answer (an
// *UnavailableError, see IsUnavailable):
//
//   - budgets and blocks (Spend, Spent, Block, Reset) go to the local
//     store: limits hold per instance rather than across the fleet;
//   - the cache fails closed: Recall misses, Remember does nothing, and a
//     Forget that cannot reach the shared store is kept locally so that
//     the group's entries are forgotten before any of them is recalled
//     again;
//   - UseOnce fails closed: it returns the error (the caller denies). A
//     use the shared store accepts is recorded in the local store too,
//     and must be first in both: a use this instance saw stays refused
//     here even if the shared store lost it.
//
// While the shared store is down (Health), calls go straight to their
// fallback without trying it; Health's probe brings it back. Errors that
// are not unavailability (a bad argument, the caller's cancellation) are
// returned as they are.
type Fallback struct {
	shared Store
	local  Store
	health *Health
	// forgetFor is how long a Forget kept locally holds: the longest ttl
	// an entry can have.
	forgetFor time.Duration
}

var _ Store = (*Fallback)(nil)

// NewFallback returns a Fallback over shared and local, whose state is
// health (one Health per shared store, shared by its Fallbacks).
// forgetFor bounds the cache's ttls (config's longest bind_cache_ttl).
func NewFallback(shared, local Store, health *Health, forgetFor time.Duration) *Fallback {
	return &Fallback{shared: shared, local: local, health: health, forgetFor: max(forgetFor, time.Second)}
}

// tried calls the shared store when it is up and reports whether its
// answer stands; an unavailable answer marks it down.
func (f *Fallback) tried(err error) bool {
	if err == nil || !IsUnavailable(err) {
		return true
	}
	f.health.fail(err)
	return false
}

func (f *Fallback) Spend(ctx context.Context, key string, b Budget) (bool, error) {
	if f.health.Up() {
		if ok, err := f.shared.Spend(ctx, key, b); f.tried(err) {
			return ok, err
		}
	}
	return f.local.Spend(ctx, key, b)
}

func (f *Fallback) Spent(ctx context.Context, key string, b Budget) (bool, error) {
	if f.health.Up() {
		if spent, err := f.shared.Spent(ctx, key, b); f.tried(err) {
			return spent, err
		}
	}
	return f.local.Spent(ctx, key, b)
}

func (f *Fallback) Block(ctx context.Context, key string, d time.Duration) error {
	// Locally too: a fraud report still blocks this instance if the
	// shared store goes away before the block ends.
	lerr := f.local.Block(ctx, key, d)
	if f.health.Up() {
		if err := f.shared.Block(ctx, key, d); f.tried(err) {
			return errors.Join(err, lerr)
		}
	}
	return lerr
}

func (f *Fallback) Reset(ctx context.Context, key string) error {
	lerr := f.local.Reset(ctx, key)
	if f.health.Up() {
		if err := f.shared.Reset(ctx, key); f.tried(err) {
			return errors.Join(err, lerr)
		}
	}
	return lerr
}

// pendingKey marks, in the local store, a group whose Forget did not
// reach the shared store.
func pendingKey(group string) string { return "fallback-forget\x00" + group }

func (f *Fallback) Remember(ctx context.Context, group, key string, ttl time.Duration) error {
	if !f.health.Up() {
		return nil // not remembered: the next bind asks Duo again
	}
	if err := f.shared.Remember(ctx, group, key, ttl); f.tried(err) {
		return err
	}
	return nil
}

func (f *Fallback) Recall(ctx context.Context, group, key string) (bool, error) {
	if !f.health.Up() {
		return false, nil
	}
	pending, err := f.local.Spent(ctx, pendingKey(group), Budget{N: 1, Window: f.forgetFor})
	if err != nil {
		return false, err
	}
	if pending {
		// The Forget that could not be made: make it now, or miss.
		if err := f.shared.Forget(ctx, group); err != nil {
			f.tried(err)
			return false, nil
		}
		if err := f.local.Reset(ctx, pendingKey(group)); err != nil {
			return false, err
		}
		return false, nil
	}
	ok, err := f.shared.Recall(ctx, group, key)
	if !f.tried(err) {
		return false, nil
	}
	return ok, err
}

func (f *Fallback) Forget(ctx context.Context, group string) error {
	if f.health.Up() {
		err := f.shared.Forget(ctx, group)
		if f.tried(err) {
			return err
		}
	}
	return f.local.Block(ctx, pendingKey(group), f.forgetFor)
}

func (f *Fallback) UseOnce(ctx context.Context, key string) (bool, error) {
	if !f.health.Up() {
		return false, f.health.err()
	}
	first, err := f.shared.UseOnce(ctx, key)
	if err != nil {
		f.tried(err)
		return false, err
	}
	if !first {
		return false, nil
	}
	return f.local.UseOnce(ctx, key)
}

// Health is a shared store's reachability, shared by the Fallbacks in
// front of it: down from the first call it could not answer, up again
// when its probe (run by Run while it is down) succeeds. Every change is
// reported to onChange, in order.
type Health struct {
	probe    func(context.Context) error
	every    time.Duration
	onChange func(HealthChange)

	mu    sync.Mutex
	down  bool
	since time.Time
	cause error
	wake  chan struct{}
	emit  sync.Mutex
}

// HealthChange is a change of a shared store's reachability.
type HealthChange struct {
	Up  bool
	At  time.Time
	Err error // why it is down; nil when Up
}

// NewHealth returns the health of a shared store, up until a call or the
// probe fails. probe is tried every `every` while it is down; onChange
// may be nil and must not block.
func NewHealth(probe func(context.Context) error, every time.Duration, onChange func(HealthChange)) *Health {
	return &Health{probe: probe, every: every, onChange: onChange, since: time.Now(), wake: make(chan struct{}, 1)}
}

// Up reports whether calls go to the shared store.
func (h *Health) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down
}

// Problem is why the shared store is down ("" when it is up), and since
// when.
func (h *Health) Problem() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return "", h.since
	}
	return h.cause.Error(), h.since
}

func (h *Health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cause != nil {
		return h.cause
	}
	return &UnavailableError{Op: "use once", Err: errors.New("down")}
}

// Check probes the shared store now: at start, so that an unreachable
// one is known before the first bind.
func (h *Health) Check(ctx context.Context) {
	if err := h.probe(ctx); err != nil {
		h.fail(err)
	}
}

// Fail marks the shared store down: a call that bypasses the Fallbacks
// (the primary-only sync) found it unavailable.
func (h *Health) Fail(err error) { h.set(false, err) }

func (h *Health) fail(err error) { h.Fail(err) }

func (h *Health) set(up bool, err error) {
	h.mu.Lock()
	if up != h.down {
		if !up {
			h.cause = err // the latest reason while down
		}
		h.mu.Unlock()
		return
	}
	h.down, h.cause, h.since = !up, err, time.Now()
	ch := HealthChange{Up: up, At: h.since, Err: err}
	h.emit.Lock()
	h.mu.Unlock()
	defer h.emit.Unlock()
	if !up {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	if h.onChange != nil {
		h.onChange(ch)
	}
}

// Run probes the shared store every `every` while it is down, until ctx
// is done.
func (h *Health) Run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
		if h.Up() {
			continue
		}
		if err := h.probe(ctx); err != nil {
			if ctx.Err() == nil {
				h.fail(err)
			}
			continue
		}
		h.set(true, nil)
	}
}
