// Package breakglass keeps the break-glass codes of ldapgate's server
// sections: one-time codes an administrator issues to named users (ldapgate
// break-glass issue), which a user types after the password to get in
// while Duo is unreachable and the section would otherwise deny.
//
// It owns the codes file (JSON, mode 0600, written atomically), which
// holds each code only as a salted argon2id hash, and checks typed codes.
// A code's consumption is recorded in the store's one-time-use record
// before Use reports it, and the code is then removed from the codes file;
// either alone keeps a used code refused after a restart. The file is read
// again on each use, so codes issued while ldapgate runs work at once.
//
// When a code may be used is not decided here: that is failmode's rule
// (failmode.BreakGlassEligible), applied by the proxy.
package breakglass

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ldapgate/ldapgate/internal/dn"
)

// Uses is what the Keeper needs of the store: store.Store's UseOnce,
// durable before it returns.
type Uses interface {
	UseOnce(ctx context.Context, key string) (bool, error)
}

// Options configure a Keeper; every bound comes from config.
type Options struct {
	Section string
	// Users are the DNs whose codes work; any other entry's never do.
	Users []string
	// CodesFile is the codes file (break_glass.codes_file).
	CodesFile string
	// MaxParams bounds the argon2id costs a stored code may ask for.
	MaxParams Params
	// Checks bounds the codes being hashed at once (each costs
	// Params.MemoryKiB); more wait their turn or their context.
	Checks int
	Log    *slog.Logger
}

// Keeper checks and consumes one section's break-glass codes.
type Keeper struct {
	opts  Options
	users []dn.DN
	uses  Uses
	sem   chan struct{}
	log   *slog.Logger
}

// New returns the Keeper of one section.
func New(opts Options, uses Uses) (*Keeper, error) {
	if opts.Section == "" || opts.CodesFile == "" || uses == nil {
		return nil, errors.New("breakglass: a section, a codes file and a record of uses are required")
	}
	if opts.Checks < 1 {
		return nil, errors.New("breakglass: Checks must be at least 1")
	}
	k := &Keeper{opts: opts, uses: uses, sem: make(chan struct{}, opts.Checks), log: opts.Log}
	if k.log == nil {
		k.log = slog.Default()
	}
	for i, u := range opts.Users {
		d, err := dn.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("breakglass: users[%d]: %w", i, err)
		}
		k.users = append(k.users, d)
	}
	if _, err := load(opts.CodesFile, opts.MaxParams); err != nil {
		return nil, err
	}
	return k, nil
}

// Code reports whether s has the shape of a break-glass code, and its
// canonical form (ParseCode).
func (k *Keeper) Code(s string) (string, bool) { return ParseCode(s) }

// Use reports whether code is an unused break-glass code of the entry
// named by entryDN in this section. When it is, its use is recorded
// durably before Use returns true, and it is removed from the codes file.
//
// False with a nil error is a refusal: the user is not listed, or the
// code is wrong, used, revoked or another user's. An error means the codes
// file or the record of uses could not be read or written; the caller
// denies.
func (k *Keeper) Use(ctx context.Context, entryDN, code string) (bool, error) {
	user, err := dn.Parse(entryDN)
	if err != nil || !k.listed(user) {
		return false, nil
	}
	code, ok := ParseCode(code)
	if !ok {
		return false, nil
	}
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	e, err := k.find(user, code)
	<-k.sem
	if err != nil || e == nil {
		return false, err
	}
	first, err := k.uses.UseOnce(ctx, useKey(e.ID))
	if err != nil {
		return false, fmt.Errorf("breakglass: record the use: %w", err)
	}
	if !first {
		return false, nil
	}
	// Consumed; the codes file is tidied for `list`. Should that fail, the
	// record of uses still refuses the code.
	if err := update(k.opts.CodesFile, k.opts.MaxParams, func(cf *file) error {
		cf.Codes = removeID(cf.Codes, e.ID)
		return nil
	}); err != nil {
		k.log.Error("break-glass code used but not removed from the codes file; it stays refused", "server", k.opts.Section, "err", err)
	}
	return true, nil
}

func (k *Keeper) listed(user dn.DN) bool {
	for _, u := range k.users {
		if u.Equal(user) {
			return true
		}
	}
	return false
}

// find reads the codes file and returns the user's entry whose hash is
// code's, or nil. Codes issued together share a salt: one hash per salt.
func (k *Keeper) find(user dn.DN, code string) (*entry, error) {
	cf, err := load(k.opts.CodesFile, k.opts.MaxParams)
	if err != nil {
		return nil, err
	}
	sums := map[string][]byte{}
	var found *entry
	for i := range cf.Codes {
		e := &cf.Codes[i]
		if e.Section != k.opts.Section {
			continue
		}
		if d, err := dn.Parse(e.User); err != nil || !d.Equal(user) {
			continue
		}
		key := fmt.Sprintf("%x/%d/%d/%d", e.Salt, e.Params.Time, e.Params.MemoryKiB, e.Params.Threads)
		sum, ok := sums[key]
		if !ok {
			sum = e.Params.hash(code, e.Salt)
			sums[key] = sum
		}
		if matches(sum, e.Hash) && found == nil {
			found = e
		}
	}
	return found, nil
}

// useKey is a code's key in the record of uses: its random ID, never the
// code.
func useKey(id string) string { return "breakglass/" + id }

func removeID(codes []entry, id string) []entry {
	out := codes[:0]
	for _, e := range codes {
		if e.ID != id {
			out = append(out, e)
		}
	}
	return out
}
