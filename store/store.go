// Package store is the one state store behind ldapgate's abuse guards: the
// push and passcode budgets, the failed-bind throttles, the bind cache and
// the break-glass codes' consumption. The policies (in proxy and duostate's
// neighbours) speak only to Store; this package's Local keeps counters and
// the cache in memory and what must survive a restart in a file; Redis
// shares them across a fleet of instances, and Fallback puts Local behind
// it for when it cannot answer, without touching the policies.
//
// Every key a client can make the store hold is bounded (MaxKeys): an
// attacker who invents users or addresses cannot grow it without limit.
package store

import (
	"context"
	"time"
)

// Budget is "at most N events per Window".
type Budget struct {
	N      int
	Window time.Duration
}

// Store is what the policies need of shared state. Keys are opaque strings
// the policies build (section, user, address...); they must not contain
// secrets (a password never; a keyed hash of one where a key needs it).
type Store interface {
	// Spend takes one event from key's budget, and reports false (taking
	// nothing) when the budget is spent or the key is blocked.
	Spend(ctx context.Context, key string, b Budget) (bool, error)
	// Spent reports whether key's budget is spent or the key blocked,
	// without taking anything.
	Spent(ctx context.Context, key string, b Budget) (bool, error)
	// Block makes key spent for d whatever its budget holds (a push
	// reported as fraud: no more pushes for that user for a while).
	Block(ctx context.Context, key string, d time.Duration) error
	// Reset forgets key's spending and any block.
	Reset(ctx context.Context, key string) error

	// Remember records key within group for ttl; Recall reports whether
	// it is remembered and unexpired; Forget drops every key of group
	// (the bind cache: group is section and DN, key the rest).
	Remember(ctx context.Context, group, key string, ttl time.Duration) error
	Recall(ctx context.Context, group, key string) (bool, error)
	Forget(ctx context.Context, group string) error

	// UseOnce records key as used, durably (written and synced before it
	// returns), and reports whether this was its first use: a one-time
	// code's consumption survives a crash and a restart.
	UseOnce(ctx context.Context, key string) (bool, error)
}
