package store

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by a fleet of instances: every instance pointed
// at the same Redis (and prefix) shares budgets, blocks, the bind cache
// and one-time uses.
//
//   - A budget is the token bucket Local keeps (N at once, then one more
//     every Window/N), held in a hash per key and changed only by a Lua
//     script, so that concurrent Spends on several instances cannot take
//     more than the bucket holds. Time is Redis's own (TIME), so the
//     instances' clocks do not matter. The key expires once the bucket
//     is full again and any block has passed.
//   - A block is a field of the same hash; the key lives at least as long.
//   - A cache entry is a key with the entry's ttl, listed in a set per
//     group; Forget deletes the set's members and the set in one script.
//   - A one-time use is SET NX with no expiry: of any number of instances
//     using a key at once, exactly one is first. Redis must persist its
//     data (appendonly) for a use to survive a restart of Redis.
//
// Every key is the prefix, a kind and the SHA-256 of the caller's key:
// Redis holds no user name, address or code ID in clear. A group's entries
// share a hash tag, so the scripts touch one slot.
//
// Every call is bounded by the timeout given at open. An error that is
// not the caller's (a cancelled ctx) or a bad argument is an
// *UnavailableError: the store could not answer (see Fallback).
type Redis struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// RedisOptions configure Redis; every value comes from config (state.*).
type RedisOptions struct {
	// URL is redis://[user@]host:port[/db] or rediss:// for TLS; it
	// carries no password.
	URL      string
	Password string
	// TLS is used with rediss:// (nil: the system roots).
	TLS *tls.Config
	// Timeout bounds every call, connecting included.
	Timeout time.Duration
	// Prefix namespaces every key ("ldapgate:").
	Prefix string
}

// OpenRedis returns a Redis store for opts. It does not connect: the
// first call does (Ping checks at once).
func OpenRedis(opts RedisOptions) (*Redis, error) {
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout %s is not positive", errInvalid, opts.Timeout)
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		// go-redis's message names the part that is wrong; the URL itself
		// carries no password (config refuses one).
		return nil, fmt.Errorf("%w: url: %v", errInvalid, err)
	}
	if opts.Password != "" {
		ro.Password = opts.Password
	}
	if ro.TLSConfig != nil {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.TLS != nil {
			t = opts.TLS.Clone()
		}
		t.ServerName = ro.TLSConfig.ServerName
		ro.TLSConfig = t
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opts.Timeout, opts.Timeout, opts.Timeout
	ro.PoolTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	// A retry would run past the deadline; the caller's fallback decides.
	ro.MaxRetries = -1
	return &Redis{client: redis.NewClient(ro), prefix: opts.Prefix, timeout: opts.Timeout}, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }

// Ping reports whether Redis answers within the timeout.
func (r *Redis) Ping(ctx context.Context) error {
	bctx, cancel := r.bound(ctx)
	defer cancel()
	return r.classify(ctx, "ping", r.client.Ping(bctx).Err())
}

// UnavailableError says the shared store could not answer a call: it was
// not reached within the deadline, the connection failed, or Redis
// refused the command (authentication, a read-only replica, out of
// memory). Fallback routes every call that gets one.
type UnavailableError struct {
	Op string
	// Refused is true when Redis answered with an error (it is reachable
	// but will not serve: a configuration problem), false when it was
	// not reached.
	Refused bool
	Err     error
}

func (e *UnavailableError) Error() string {
	what := "unreachable"
	if e.Refused {
		what = "refused"
	}
	return fmt.Sprintf("redis %s: %s: %v", what, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err says the shared store could not
// answer.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// classify turns go-redis's error into the store's: nil and redis.Nil are
// no error; the caller's own cancellation stays the caller's (caller is
// its context, before the store's deadline was added); a reply error is
// a refusal; anything else (dial, I/O, our deadline, a closed client) is
// unreachable.
func (r *Redis) classify(caller context.Context, op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	if cerr := caller.Err(); cerr != nil {
		return fmt.Errorf("store: %s: %w", op, cerr)
	}
	var reply redis.Error
	if errors.As(err, &reply) && !errors.Is(err, context.DeadlineExceeded) {
		return &UnavailableError{Op: op, Refused: true, Err: err}
	}
	return &UnavailableError{Op: op, Err: err}
}

// callerDone reports the caller's own cancellation before any call.
func callerDone(ctx context.Context) error { return live(ctx) }

func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (r *Redis) budgetKey(key string) string { return r.prefix + "b:" + hashed(key) }

// groupKeys are the set of a group and the key of one of its entries;
// both carry the group's hash as a hash tag.
func (r *Redis) groupSet(group string) string { return r.prefix + "g:{" + hashed(group) + "}" }

func (r *Redis) cacheKey(group, key string) string {
	return r.prefix + "c:{" + hashed(group) + "}:" + hashed(key)
}

func (r *Redis) onceKey(key string) string { return r.prefix + "u:" + hashed(key) }

// nowMS is Redis's clock in milliseconds, inside a script.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// budgetScript: KEYS[1] the budget; ARGV n, window (ms), take ("1" to
// spend one, "0" to look). Returns 1 when an event is (was) available, 0
// when the budget is spent or the key blocked. Refusals change nothing.
var budgetScript = redis.NewScript(nowMS + `
local n = tonumber(ARGV[1])
local every = tonumber(ARGV[2]) / n
local h = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked')
local blocked = tonumber(h[3]) or 0
if now < blocked then return 0 end
local tokens, ts = tonumber(h[1]), tonumber(h[2])
if tokens == nil or ts == nil then tokens, ts = n, now end
if now > ts then tokens = tokens + (now - ts) / every end
if tokens > n then tokens = n end
if tokens < 1 then return 0 end
if ARGV[3] ~= '1' then return 1 end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
local ttl = math.ceil((n - tokens) * every)
if blocked - now > ttl then ttl = blocked - now end
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
return 1
`)

// blockScript: KEYS[1] the budget; ARGV[1] the block (ms). A longer block
// already there stays.
var blockScript = redis.NewScript(nowMS + `
local untilms = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
if untilms > cur then
  redis.call('HSET', KEYS[1], 'blocked', tostring(untilms))
  cur = untilms
end
local want = cur - now
if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1
`)

// rememberScript: KEYS[1] the group's set, KEYS[2] the entry; ARGV[1]
// the ttl (ms). The set lives as long as its longest entry.
var rememberScript = redis.NewScript(`
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ttl)
redis.call('SADD', KEYS[1], KEYS[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// forgetScript: KEYS[1] the group's set: its entries and itself go.
var forgetScript = redis.NewScript(`
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return 1
`)

func ms(d time.Duration) int64 { return max(int64(d/time.Millisecond), 1) }

func (r *Redis) budget(ctx context.Context, op, key string, b Budget, take bool) (bool, error) {
	if err := callerDone(ctx); err != nil {
		return false, err
	}
	if err := checkBudget(b); err != nil {
		return false, err
	}
	flag := "0"
	if take {
		flag = "1"
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := budgetScript.Run(bctx, r.client, []string{r.budgetKey(key)}, b.N, ms(b.Window), flag).Int()
	if err := r.classify(ctx, op, err); err != nil {
		return false, err
	}
	return n == 1, nil
}

func (r *Redis) Spend(ctx context.Context, key string, b Budget) (bool, error) {
	return r.budget(ctx, "spend", key, b, true)
}

func (r *Redis) Spent(ctx context.Context, key string, b Budget) (bool, error) {
	ok, err := r.budget(ctx, "spent", key, b, false)
	if err != nil {
		return true, err
	}
	return !ok, nil
}

func (r *Redis) Block(ctx context.Context, key string, d time.Duration) error {
	if err := callerDone(ctx); err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("%w: block for %s", errInvalid, d)
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	return r.classify(ctx, "block", blockScript.Run(bctx, r.client, []string{r.budgetKey(key)}, ms(d)).Err())
}

func (r *Redis) Reset(ctx context.Context, key string) error {
	if err := callerDone(ctx); err != nil {
		return err
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	return r.classify(ctx, "reset", r.client.Del(bctx, r.budgetKey(key)).Err())
}

func (r *Redis) Remember(ctx context.Context, group, key string, ttl time.Duration) error {
	if err := callerDone(ctx); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: remember for %s", errInvalid, ttl)
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	keys := []string{r.groupSet(group), r.cacheKey(group, key)}
	return r.classify(ctx, "remember", rememberScript.Run(bctx, r.client, keys, ms(ttl)).Err())
}

func (r *Redis) Recall(ctx context.Context, group, key string) (bool, error) {
	if err := callerDone(ctx); err != nil {
		return false, err
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := r.client.Exists(bctx, r.cacheKey(group, key)).Result()
	if err := r.classify(ctx, "recall", err); err != nil {
		return false, err
	}
	return n == 1, nil
}

func (r *Redis) Forget(ctx context.Context, group string) error {
	if err := callerDone(ctx); err != nil {
		return err
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	return r.classify(ctx, "forget", forgetScript.Run(bctx, r.client, []string{r.groupSet(group)}).Err())
}

// UseOnce is SET NX without expiry: durable as far as Redis persists it.
func (r *Redis) UseOnce(ctx context.Context, key string) (bool, error) {
	if err := callerDone(ctx); err != nil {
		return false, err
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	first, err := r.client.SetNX(bctx, r.onceKey(key), "1", 0).Result()
	if err := r.classify(ctx, "use once", err); err != nil {
		return false, err
	}
	return first, nil
}

// Stamped is a value a fleet shares with the time it was set: Until (the
// zero time: off) and Changed, which orders writes (a later Changed
// wins). The primary-only switch is shared this way.
type Stamped struct {
	Until   time.Time
	Changed time.Time
}

func (r *Redis) stampedKey(name string) string { return r.prefix + "s:" + name }

// writeStampedScript: KEYS[1]; ARGV value, changed (ms), ttl (ms). Writes
// only when changed is later than what is there; returns 1 if it wrote.
var writeStampedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = tonumber(string.match(cur, ' (%d+)$'))
  if c and c >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return 1
`)

// WriteStamped stores v under name for ttl unless what is there was
// changed later; it reports whether it wrote.
func (r *Redis) WriteStamped(ctx context.Context, name string, v Stamped, ttl time.Duration) (bool, error) {
	if err := callerDone(ctx); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, nil
	}
	var until int64
	if !v.Until.IsZero() {
		until = v.Until.UnixMilli()
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := writeStampedScript.Run(bctx, r.client, []string{r.stampedKey(name)},
		strconv.FormatInt(until, 10), v.Changed.UnixMilli(), ms(ttl)).Int()
	if err := r.classify(ctx, "write "+name, err); err != nil {
		return false, err
	}
	return n == 1, nil
}

// ReadStamped returns what is stored under each name; a name with
// nothing stored (or something unreadable) is absent.
func (r *Redis) ReadStamped(ctx context.Context, names []string) (map[string]Stamped, error) {
	if err := callerDone(ctx); err != nil {
		return nil, err
	}
	out := map[string]Stamped{}
	if len(names) == 0 {
		return out, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = r.stampedKey(n)
	}
	bctx, cancel := r.bound(ctx)
	defer cancel()
	vals, err := r.client.MGet(bctx, keys...).Result()
	if err := r.classify(ctx, "read stamped", err); err != nil {
		return nil, err
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		until, changed, ok := strings.Cut(s, " ")
		u, err1 := strconv.ParseInt(until, 10, 64)
		c, err2 := strconv.ParseInt(changed, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		st := Stamped{Changed: time.UnixMilli(c)}
		if u != 0 {
			st.Until = time.UnixMilli(u)
		}
		out[names[i]] = st
	}
	return out, nil
}
