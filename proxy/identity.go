package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ldapgate/ldapgate/directory"
	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// authenticate checks the password and decides who the directory
// authenticated. It is the only code that sets a.id: the entry whose
// username goes to Duo, whose DN is matched against exempt_dns and
// secure_groups, and whose DN is logged is the one it found, and it refuses
// the bind whenever it cannot prove that this entry is the one the directory
// bound.
//
// With a lookup account, the entry is resolved first (FindUser: a DN is
// read as a base object, any other name goes through user_filter) and the
// directory bind uses that entry's own DN as the directory spelled it, never
// the name as typed: whatever spelling the client chose, the directory can
// only have authenticated that entry.
//
// Without one nothing can be read before the bind, so the name goes to the
// directory as typed; the entry is then resolved as the user, and the
// directory is asked whom it authenticated (Who Am I, RFC 4532). The bind is
// refused with invalidCredentials unless the answer names the entry found.
//
// A name that matches no entry, or several, is refused before any password
// reaches the directory (lookup account) or before any second factor.
func (s *Server) authenticate(ctx context.Context, a *attempt) *bindResult {
	if s.dir.HasLookupAccount() {
		id, err := s.dir.FindUser(ctx, nil, a.name)
		if err != nil {
			return a.end(lookupRule(err), failmode.AuthPrimary, fmt.Errorf("resolve bind name: %w", err))
		}
		if res := s.checkPassword(ctx, a, id.DN); res != nil {
			return res
		}
		a.id = id
		return nil
	}

	if res := s.checkPassword(ctx, a, a.name); res != nil {
		return res
	}
	sess := a.sess
	fail := func(rule failmode.Rule, err error) *bindResult {
		sess.closeUpstream() // bound as someone this proxy will not let in
		return a.end(rule, failmode.AuthPrimary, err)
	}
	id, err := s.dir.FindUser(ctx, sess.up, a.name)
	if err != nil {
		return fail(lookupRule(err), fmt.Errorf("resolve bind name as the user: %w", err))
	}
	authz, err := s.dir.WhoAmI(ctx, sess.up)
	if err != nil {
		if directory.IsUnavailable(err) {
			return fail(failmode.RuleDirectoryUnavailable, err)
		}
		return fail(failmode.RuleIdentityMismatch,
			fmt.Errorf("cannot confirm who the directory authenticated (configure a lookup account for directories without Who Am I): %w", err))
	}
	if strings.HasPrefix(authz, "u:") && id.Principal == "" {
		if id.Principal, err = s.dir.Principal(ctx, sess.up, id.DN); err != nil {
			return fail(lookupRule(err), fmt.Errorf("read msDS-PrincipalName: %w", err))
		}
	}
	if !authzNames(authz, id) {
		return fail(failmode.RuleIdentityMismatch,
			fmt.Errorf("%w: bind name resolves to %q, directory authenticated %q", errIdentityMismatch, id.DN, authz))
	}
	a.id = id
	return nil
}

// errIdentityMismatch: the entry a bind name resolved to is not the identity
// the directory authenticated.
var errIdentityMismatch = errors.New("identity mismatch")

// authzNames reports whether a Who Am I authzid names the entry id:
// "dn:<DN>" when the DNs are equal (dn.Equal), "u:DOMAIN\account" when it
// is the entry's msDS-PrincipalName, domain included (an account of the
// same name in another domain of the forest is another user). Anonymous
// (""), an unparsable DN and any other form name nobody.
func authzNames(authz string, id directory.Identity) bool {
	switch {
	case strings.HasPrefix(authz, "dn:"):
		return dn.Equal(authz[len("dn:"):], id.DN)
	case strings.HasPrefix(authz, "u:"):
		principal := authz[len("u:"):]
		domain, account, ok := strings.Cut(principal, `\`)
		return ok && domain != "" && account != "" && strings.EqualFold(principal, id.Principal)
	}
	return false
}

// checkPassword binds name with the password. The directory's refusal is
// relayed as it is, and no second factor is ever asked: a wrong password
// never sends a push. A directory that cannot be reached is "unavailable",
// never "invalid credentials".
//
// A session that already holds a directory connection (it was let in
// before, or is anonymous where the section allows it) re-binds on it. Any
// other client borrows a connection from the directory's password-check
// pool, which it keeps only if the directory accepts the password: clients
// that never prove one cost the directory at most max_connections
// connections, and a full pool is answered busy (51) at once. A failed bind
// releases the client's directory connection either way.
func (s *Server) checkPassword(ctx context.Context, a *attempt, name string) *bindResult {
	sess := a.sess
	a.tried = name
	for retried := false; ; retried = true {
		var lent *directory.Lease
		up := sess.up
		if up != nil && sess.epoch != s.dirEpoch {
			// a connection to the directory the section had before a
			// reload: the password is checked by the one it has now
			sess.closeUpstream()
			up = nil
		}
		if up == nil || up.IsClosing() {
			sess.closeUpstream()
			var err error
			if lent, err = s.dir.CheckConn(ctx); err != nil {
				if errors.Is(err, directory.ErrBusy) {
					return a.end(failmode.RuleDirectoryBusy, failmode.AuthPrimary, err)
				}
				return a.end(failmode.RuleDirectoryUnavailable, failmode.AuthPrimary, err)
			}
			up = lent.Conn
		}
		res, err := s.dir.Bind(ctx, up, name, a.password, a.request)
		if res != nil {
			a.response = res.Controls
		}
		if err == nil {
			if lent != nil {
				up = lent.Keep()
			}
			sess.adopt(up, s.dirEpoch)
			return nil
		}
		if le, ok := directory.Answered(err); ok {
			// A refused bind leaves the connection anonymous (RFC 4511
			// §4.2.1); the client does not keep it.
			if lent != nil {
				lent.Release()
			} else {
				sess.closeUpstream()
			}
			return a.directoryRefused(le, a.response)
		}
		if lent != nil {
			lent.Discard()
			if lent.Reused && !retried {
				continue // the directory closed it while it was idle
			}
		} else {
			sess.closeUpstream()
		}
		return a.end(failmode.RuleDirectoryUnavailable, failmode.AuthPrimary, err)
	}
}
