// Package guard holds ldapgate's abuse guards as policies over a
// store.Store: the push and passcode budgets of each Duo integration
// (push fatigue), the failed-bind throttles of each section (password
// spraying, brute force) and the bind cache. It decides nothing about
// LDAP: the proxy asks it, through small interfaces of its own, and acts.
//
// Keys are built here and only here; they never hold a password (the
// cache keys on an HMAC of it under a per-process random key).
package guard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
	"github.com/ldapgate/ldapgate/store"
)

// key joins key parts with a separator no LDAP name or address contains.
func key(parts ...string) string { return strings.Join(parts, "\x00") }

// Pushes are the second-factor budgets of one Duo integration, shared by
// the sections that use it: pushes and phone calls per user, passcode
// attempts per user, both per Window.
type Pushes struct {
	st          store.Store
	integration string
	push        store.Budget
	passcode    store.Budget
}

// NewPushes returns the budgets of integration (failmode.Integration):
// maxPushes pushes or calls and maxPasscodes passcode attempts per user
// per window. Values come from config (duo.max_pushes,
// duo.max_passcode_attempts, duo.push_window).
func NewPushes(st store.Store, integration string, maxPushes, maxPasscodes int, window time.Duration) *Pushes {
	return &Pushes{st: st, integration: integration,
		push:     store.Budget{N: maxPushes, Window: window},
		passcode: store.Budget{N: maxPasscodes, Window: window}}
}

// budget returns the key and budget a factor spends: a passcode its own,
// push, phone and auto (Duo picks push or phone) the push budget. Duo
// usernames match without case.
func (p *Pushes) budget(username string, f failmode.Factor) (string, store.Budget) {
	u := strings.ToLower(username)
	if f == failmode.FactorPasscode {
		return key("passcode", p.integration, u), p.passcode
	}
	return key("push", p.integration, u), p.push
}

// Spent reports whether username has no attempt of factor left (or is
// blocked), without taking one: asked before Duo is contacted at all.
func (p *Pushes) Spent(ctx context.Context, username string, f failmode.Factor) (bool, error) {
	k, b := p.budget(username, f)
	return p.st.Spent(ctx, k, b)
}

// Spend takes one attempt of factor, reporting false when none is left:
// asked once Duo's preauth wants a second factor, just before it is sent,
// so that only what reaches the user counts, and concurrent binds cannot
// send more than the budget between them.
func (p *Pushes) Spend(ctx context.Context, username string, f failmode.Factor) (bool, error) {
	k, b := p.budget(username, f)
	return p.st.Spend(ctx, k, b)
}

// Settle records how an attempt Duo answered ended: an approved push or
// call (or a right passcode) gives that budget back in full, as the user
// proved they are there; a push reported as fraud blocks pushes and calls
// for the user for the window. A denied or unanswered one stays spent.
func (p *Pushes) Settle(ctx context.Context, username string, f failmode.Factor, v failmode.Verdict) error {
	switch {
	case v.Fraud:
		push, _ := p.budget(username, failmode.FactorPush)
		return p.st.Block(ctx, push, p.push.Window)
	case v.Allowed && !v.Bypass:
		k, _ := p.budget(username, f)
		return p.st.Reset(ctx, k)
	}
	return nil
}

// FirstRefusal reports whether a refusal of username is the first of its
// window, so that one alert, not one per bind, tells operators of it.
func (p *Pushes) FirstRefusal(ctx context.Context, username string) (bool, error) {
	return p.st.Spend(ctx, key("alerted", p.integration, strings.ToLower(username)), store.Budget{N: 1, Window: p.push.Window})
}

// Throttle counts the failed binds of one section per client address and
// per (bind name, client address): a sprayer trying many names from one
// address meets the first, a guesser of one account the second, and the
// account's owner elsewhere meets neither.
type Throttle struct {
	st          store.Store
	section     string
	perUserAddr store.Budget
	perAddr     store.Budget
}

// NewThrottle returns the throttle of section: perUserAddr failures of one
// name from one address, perAddr failures from one address (config's
// servers[].throttle).
func NewThrottle(st store.Store, section string, perUserAddr, perAddr store.Budget) *Throttle {
	return &Throttle{st: st, section: section, perUserAddr: perUserAddr, perAddr: perAddr}
}

// Name is a bind name as the throttle counts it: the name as typed (the
// entry may not exist), a DN in its canonical spelling and any other name
// trimmed, both lowercased, so that respelling a name does not buy new
// attempts.
func Name(name string) string {
	if d, err := dn.Parse(name); err == nil {
		return strings.ToLower(d.String())
	}
	return strings.ToLower(strings.TrimSpace(name))
}

func (t *Throttle) keys(name, addr string) (user, address string) {
	return key("fail-user", t.section, Name(name), addr), key("fail-addr", t.section, addr)
}

// Throttled reports whether either budget of a bind of name from addr is
// spent: the bind is then refused before the directory is asked.
func (t *Throttle) Throttled(ctx context.Context, name, addr string) (bool, error) {
	user, address := t.keys(name, addr)
	if spent, err := t.st.Spent(ctx, address, t.perAddr); spent || err != nil {
		return true, err
	}
	spent, err := t.st.Spent(ctx, user, t.perUserAddr)
	return spent || err != nil, err
}

// Failed counts a bind of name from addr the directory refused.
func (t *Throttle) Failed(ctx context.Context, name, addr string) error {
	user, address := t.keys(name, addr)
	_, err1 := t.st.Spend(ctx, address, t.perAddr)
	_, err2 := t.st.Spend(ctx, user, t.perUserAddr)
	return errors.Join(err1, err2)
}

// Succeeded forgets the failures of name from addr: its owner got in. The
// address's own count stays: one known password must not buy a sprayer
// fresh attempts at every other name.
func (t *Throttle) Succeeded(ctx context.Context, name, addr string) error {
	user, _ := t.keys(name, addr)
	return t.st.Reset(ctx, user)
}

// Cache remembers, for one section and ttl, binds that passed the
// directory and Duo's second factor: the same entry, from the same
// address, with the same password. It never holds a password, only an
// HMAC-SHA256 of it under a key drawn at start and never written anywhere.
type Cache struct {
	st      store.Store
	section string
	ttl     time.Duration
	secret  []byte
	// gen is bumped by Clear: every entry made before is unreachable from
	// then on (and expires or is evicted in the store).
	gen atomic.Uint64
}

// NewCache returns the bind cache of section (servers[].bind_cache_ttl,
// positive: a section without a cache has none).
func NewCache(st store.Store, section string, ttl time.Duration) (*Cache, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("guard: bind cache ttl %s is not positive", ttl)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("guard: bind cache key: %w", err)
	}
	return &Cache{st: st, section: section, ttl: ttl, secret: secret}, nil
}

// group is the store group of an entry: section and the DN's canonical
// spelling; ok false for a DN that does not parse (never cached). It
// holds nothing of this process, so that with a store shared by a fleet
// a failed bind on any instance evicts the entry's binds on every one.
func (c *Cache) group(entry string) (string, bool) {
	d, err := dn.Parse(entry)
	if err != nil {
		return "", false
	}
	return key("cache", c.section, d.String()), true
}

// entryKey is one remembered bind within group: under this process's
// key and generation, so only this cache, until its next Clear, finds it.
func (c *Cache) entryKey(group, addr, password string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(key(group, fmt.Sprint(c.gen.Load()), addr, password)))
	return key(addr, hex.EncodeToString(m.Sum(nil)))
}

// Recall reports whether the bind of entry from addr with password passed
// the second factor within the ttl.
func (c *Cache) Recall(ctx context.Context, entry, addr, password string) (bool, error) {
	g, ok := c.group(entry)
	if !ok {
		return false, nil
	}
	return c.st.Recall(ctx, g, c.entryKey(g, addr, password))
}

// Remember records a bind that passed the directory and the second factor.
func (c *Cache) Remember(ctx context.Context, entry, addr, password string) error {
	g, ok := c.group(entry)
	if !ok {
		return nil
	}
	return c.st.Remember(ctx, g, c.entryKey(g, addr, password), c.ttl)
}

// Evict forgets every remembered bind of entry: any failed bind of it.
func (c *Cache) Evict(ctx context.Context, entry string) error {
	g, ok := c.group(entry)
	if !ok {
		return nil
	}
	return c.st.Forget(ctx, g)
}

// Clear forgets every remembered bind of the section: a reload that
// changes its policy calls it.
func (c *Cache) Clear() { c.gen.Add(1) }
