package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// privileged reports whether the entry dn counts as a member of one of the
// section's secure groups. It is true when membership is established, and
// also whenever it cannot be established: a secure group the checking
// identity cannot see (ACLs that hide groups answer a membership search with
// zero entries, which must not read as "not a member"), or a group search
// that failed. The error says why membership is unknown.
//
// The checking identity is the lookup account when there is one (its view of
// the groups is checked at start and with every directory probe, see
// CheckSecureGroups), else the user on conn (checked on every bind).
func (s *Server) privileged(ctx context.Context, conn *ldap.Conn, dn string) (bool, error) {
	if len(s.secure) == 0 {
		return false, nil
	}
	if err := s.secureGroupsVisible(ctx, conn); err != nil {
		return true, err
	}
	groups, err := s.dir.Groups(ctx, conn, dn)
	if err != nil {
		return true, fmt.Errorf("group membership: %w", err)
	}
	return s.inSecureGroup(groups), nil
}

// secureGroupsVisible proves that the checking identity sees every secure
// group entry.
func (s *Server) secureGroupsVisible(ctx context.Context, conn *ldap.Conn) error {
	if !s.dir.HasLookupAccount() {
		return s.readSecureGroups(ctx, conn)
	}
	if p := s.groupCheck.Load(); p != nil {
		return p.err
	}
	return s.checkSecureGroups(ctx)
}

// CheckSecureGroups reads every secure group entry with the lookup account
// and remembers the answer for binds and readiness (SecureGroupsProblem).
// The wiring calls it at start and with every directory probe. Without a
// lookup account there is nothing to check ahead of a bind (each bind checks
// as its user) and it returns nil. It checks the section's current
// settings (see Reconfigure).
func (s *Server) CheckSecureGroups(ctx context.Context) error {
	return s.current().checkSecureGroups(ctx)
}

func (s *Server) checkSecureGroups(ctx context.Context) error {
	if len(s.secure) == 0 || !s.dir.HasLookupAccount() {
		return nil
	}
	err := s.readSecureGroups(ctx, nil)
	if ctx.Err() != nil && err != nil {
		return err // our own cancellation says nothing about the groups
	}
	s.groupCheck.Store(&groupCheck{err: err})
	if err != nil {
		s.log.Error("secure groups cannot be read: every user counts as privileged", "err", err)
	}
	return err
}

// SecureGroupsProblem says why the section cannot establish secure-group
// membership ("" when it can, or when it has no secure groups): a group the
// lookup account cannot read, or no check has completed yet. While it is
// not "", every user counts as privileged. It is the answer for the
// section's current settings (see Reconfigure).
func (s *Server) SecureGroupsProblem() string {
	return s.current().secureGroupsProblem()
}

func (s *Server) secureGroupsProblem() string {
	if len(s.secure) == 0 || !s.dir.HasLookupAccount() {
		return ""
	}
	p := s.groupCheck.Load()
	switch {
	case p == nil:
		return "secure groups not checked yet"
	case p.err != nil:
		return p.err.Error()
	}
	return ""
}

// groupCheck is the outcome of the latest CheckSecureGroups.
type groupCheck struct{ err error }

func (s *Server) readSecureGroups(ctx context.Context, conn *ldap.Conn) error {
	var errs []error
	for _, g := range s.cfg.SecureGroups {
		if err := s.dir.ReadEntry(ctx, conn, strings.TrimSpace(g)); err != nil {
			errs = append(errs, fmt.Errorf("secure group %s unreadable: %w", g, err))
		}
	}
	return errors.Join(errs...)
}
