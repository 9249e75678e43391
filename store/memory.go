package store

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// memory holds budgets, blocks and the cache, all kinds together in at
// most maxKeys entries.
//
// A budget is a token bucket (golang.org/x/time/rate): N events at once,
// then one more every Window/N. A block sits on the budget's entry. A
// cache entry is group → key → expiry.
//
// When a new key arrives and memory is full, expired entries are swept
// first (at most once per fullSweepEvery); if it is still full, the least
// recently used entry is evicted, whatever its kind. Every Spend, Spent,
// Recall and Remember of a key counts as a use of it, so the counters of
// clients that keep trying stay while the keys a flood of invented names
// or addresses left behind go first. Expired entries are also swept in
// passing, at most once per sweepEvery, so that memory shrinks back when
// the traffic stops.
type memory struct {
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	lru       *list.List               // of *entry; front is the most recently used
	entries   map[string]*list.Element // by entry id
	groups    map[string]map[string]*list.Element
	nextSweep time.Time
	lastFull  time.Time // the last sweep made because memory was full
}

// entry is one key: a budget (and its block) or a cache entry.
type entry struct {
	id string
	// A budget: lim is nil while the key holds only a block.
	lim          *rate.Limiter
	budget       Budget
	blockedUntil time.Time
	// A cache entry: group is set.
	group   string
	expires time.Time
}

const (
	// sweepEvery is how often expired entries are swept in passing.
	sweepEvery = time.Minute
	// fullSweepEvery bounds the sweeps a full memory makes before
	// evicting: a flood of new keys costs one sweep a second, not one a
	// key.
	fullSweepEvery = time.Second
	// maxIDBytes: a key part longer than this is held as its SHA-256, so
	// that the memory a key costs is bounded whatever a client typed.
	maxIDBytes = 128
)

var errUnimplemented = errors.New("store: not implemented yet")

// errInvalid is wrapped by the errors a caller's bad argument gets.
var errInvalid = errors.New("store: invalid argument")

func newMemory(maxKeys int) (*memory, error) {
	if maxKeys < 1 {
		return nil, fmt.Errorf("%w: MaxKeys %d is not positive", errInvalid, maxKeys)
	}
	return &memory{
		maxKeys: maxKeys,
		now:     time.Now,
		lru:     list.New(),
		entries: map[string]*list.Element{},
		groups:  map[string]map[string]*list.Element{},
	}, nil
}

// part is a key part as memory holds it: itself, or its hash when long.
func part(s string) string {
	if len(s) <= maxIDBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

func budgetID(key string) string { return "b:" + part(key) }

func cacheGroup(group string) string { return part(group) }

// cacheID keeps group and key apart whatever they contain: the group's
// length comes first.
func cacheID(group, key string) string {
	g := cacheGroup(group)
	return "c:" + strconv.Itoa(len(g)) + ":" + g + part(key)
}

func checkBudget(b Budget) error {
	if b.N < 1 || b.Window <= 0 || b.Window/time.Duration(b.N) <= 0 {
		return fmt.Errorf("%w: budget %d per %s", errInvalid, b.N, b.Window)
	}
	return nil
}

func live(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (m *memory) spend(ctx context.Context, key string, b Budget) (bool, error) {
	if err := live(ctx); err != nil {
		return false, err
	}
	if err := checkBudget(b); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepIfDue(now)
	e := m.budgetEntry(budgetID(key), now)
	if now.Before(e.blockedUntil) {
		return false, nil
	}
	e.limiter(b, now)
	return e.lim.AllowN(now, 1), nil
}

func (m *memory) spent(ctx context.Context, key string, b Budget) (bool, error) {
	if err := live(ctx); err != nil {
		return true, err
	}
	if err := checkBudget(b); err != nil {
		return true, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepIfDue(now)
	el, ok := m.entries[budgetID(key)]
	if !ok {
		return false, nil
	}
	m.lru.MoveToFront(el)
	e := el.Value.(*entry)
	if now.Before(e.blockedUntil) {
		return true, nil
	}
	if e.lim == nil {
		return false, nil
	}
	e.limiter(b, now)
	return e.lim.TokensAt(now) < 1, nil
}

func (m *memory) block(ctx context.Context, key string, d time.Duration) error {
	if err := live(ctx); err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("%w: block for %s", errInvalid, d)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepIfDue(now)
	e := m.budgetEntry(budgetID(key), now)
	if until := now.Add(d); until.After(e.blockedUntil) {
		e.blockedUntil = until
	}
	return nil
}

func (m *memory) reset(ctx context.Context, key string) error {
	if err := live(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.entries[budgetID(key)]; ok {
		m.remove(el)
	}
	return nil
}

func (m *memory) remember(ctx context.Context, group, key string, ttl time.Duration) error {
	if err := live(ctx); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: remember for %s", errInvalid, ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepIfDue(now)
	id := cacheID(group, key)
	if el, ok := m.entries[id]; ok {
		el.Value.(*entry).expires = now.Add(ttl)
		m.lru.MoveToFront(el)
		return nil
	}
	el := m.insert(&entry{id: id, group: cacheGroup(group), expires: now.Add(ttl)}, now)
	g := m.groups[cacheGroup(group)]
	if g == nil {
		g = map[string]*list.Element{}
		m.groups[cacheGroup(group)] = g
	}
	g[id] = el
	return nil
}

func (m *memory) recall(ctx context.Context, group, key string) (bool, error) {
	if err := live(ctx); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweepIfDue(now)
	el, ok := m.entries[cacheID(group, key)]
	if !ok {
		return false, nil
	}
	if m.expired(el.Value.(*entry), now) {
		m.remove(el)
		return false, nil
	}
	m.lru.MoveToFront(el)
	return true, nil
}

func (m *memory) forget(ctx context.Context, group string) error {
	if err := live(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, el := range m.groups[cacheGroup(group)] {
		m.remove(el)
	}
	return nil
}

// len is the number of entries held, expired or not.
func (m *memory) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// budgetEntry returns the budget entry of id, created (possibly evicting
// another) when there is none, and marks it used.
func (m *memory) budgetEntry(id string, now time.Time) *entry {
	if el, ok := m.entries[id]; ok {
		m.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{id: id}
	m.insert(e, now)
	return e
}

// limiter makes e's limiter follow b: created full, or changed in place
// when the budget changed (a reload), keeping what was spent.
func (e *entry) limiter(b Budget, now time.Time) {
	every := rate.Every(b.Window / time.Duration(b.N))
	switch {
	case e.lim == nil:
		e.lim = rate.NewLimiter(every, b.N)
	case e.budget != b:
		e.lim.SetLimitAt(now, every)
		e.lim.SetBurstAt(now, b.N)
	}
	e.budget = b
}

// insert adds e as the most recently used entry, making room first: never
// more than maxKeys entries.
func (m *memory) insert(e *entry, now time.Time) *list.Element {
	if len(m.entries) >= m.maxKeys && now.Sub(m.lastFull) >= fullSweepEvery {
		m.lastFull = now
		m.sweep(now)
	}
	for len(m.entries) >= m.maxKeys {
		m.remove(m.lru.Back())
	}
	el := m.lru.PushFront(e)
	m.entries[e.id] = el
	return el
}

func (m *memory) remove(el *list.Element) {
	e := el.Value.(*entry)
	m.lru.Remove(el)
	delete(m.entries, e.id)
	if e.group != "" {
		if g := m.groups[e.group]; g != nil {
			delete(g, e.id)
			if len(g) == 0 {
				delete(m.groups, e.group)
			}
		}
	}
}

// expired reports whether e holds nothing any more: a cache entry past
// its expiry, or a budget that is full again and not blocked (the same as
// no entry).
func (m *memory) expired(e *entry, now time.Time) bool {
	if e.group != "" {
		return !now.Before(e.expires)
	}
	if now.Before(e.blockedUntil) {
		return false
	}
	return e.lim == nil || e.lim.TokensAt(now) >= float64(e.lim.Burst())
}

func (m *memory) sweepIfDue(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	m.sweep(now)
}

func (m *memory) sweep(now time.Time) {
	for el := m.lru.Back(); el != nil; {
		prev := el.Prev()
		if m.expired(el.Value.(*entry), now) {
			m.remove(el)
		}
		el = prev
	}
}
