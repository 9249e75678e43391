package store

import (
	"context"
	"time"
)

// Local is the embedded Store: budgets, blocks and the cache in memory
// (bounded by MaxKeys, lost on restart, as a throttle may be), one-time
// uses in a file (kept across restarts).
type Local struct {
	mem  *memory
	used *durable
}

var _ Store = (*Local)(nil)

// Options configure Local; every bound comes from config.
type Options struct {
	// MaxKeys bounds the keys held in memory, all kinds together.
	MaxKeys int
	// UsedFile is where one-time uses are recorded; "" keeps them in
	// memory only (tests, and setups without break-glass codes).
	UsedFile string
}

// Open returns a Local store.
func Open(opts Options) (*Local, error) {
	mem, err := newMemory(opts.MaxKeys)
	if err != nil {
		return nil, err
	}
	used, err := openDurable(opts.UsedFile)
	if err != nil {
		return nil, err
	}
	return &Local{mem: mem, used: used}, nil
}

// Close releases the file.
func (l *Local) Close() error { return l.used.close() }

func (l *Local) Spend(ctx context.Context, key string, b Budget) (bool, error) {
	return l.mem.spend(ctx, key, b)
}

func (l *Local) Spent(ctx context.Context, key string, b Budget) (bool, error) {
	return l.mem.spent(ctx, key, b)
}

func (l *Local) Block(ctx context.Context, key string, d time.Duration) error {
	return l.mem.block(ctx, key, d)
}

func (l *Local) Reset(ctx context.Context, key string) error { return l.mem.reset(ctx, key) }

func (l *Local) Remember(ctx context.Context, group, key string, ttl time.Duration) error {
	return l.mem.remember(ctx, group, key, ttl)
}

func (l *Local) Recall(ctx context.Context, group, key string) (bool, error) {
	return l.mem.recall(ctx, group, key)
}

func (l *Local) Forget(ctx context.Context, group string) error { return l.mem.forget(ctx, group) }

func (l *Local) UseOnce(ctx context.Context, key string) (bool, error) {
	return l.used.useOnce(ctx, key)
}
