package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/ldapgate/ldapgate/failmode"
)

// ErrListenChanged is Reconfigure's refusal of a new listen address: a
// section that moves needs a new Server on the new address (the old one
// stops accepting and lets its connections finish).
var ErrListenChanged = errors.New("proxy: the listen address cannot change on a running section")

// Reconfigure makes cfg, dir, sf and rec the section's settings for every
// request that begins from now on; the requests already running end with
// the settings they began with, and no client connection is dropped. The
// session of each connection is kept (a client let in stays let in; its next
// bind is decided by the new settings, with its password checked by the new
// directory). The listener's own settings (ListenerChanges) stay those the
// listener was started with; a new Listen or LDAPSListen is refused with
// ErrListenChanged.
//
// When the secure groups or the directory changed, the groups are read with
// the new settings (CheckSecureGroups) before they take effect, bounded by
// ctx. Reconfigure is called on the handle New returned; it is safe to call
// while the section serves, one call at a time.
func (s *Server) Reconfigure(ctx context.Context, cfg Config, dir Directory, sf SecondFactor, rec failmode.Recorder, log *slog.Logger) error {
	old := s.current()
	if cfg.Listen != s.cfg.Listen {
		return fmt.Errorf("%w: %s -> %s", ErrListenChanged, s.cfg.Listen, cfg.Listen)
	}
	if cfg.LDAPSListen != s.cfg.LDAPSListen {
		return fmt.Errorf("%w: ldaps_listen %s -> %s", ErrListenChanged, s.cfg.LDAPSListen, cfg.LDAPSListen)
	}
	next, err := newGeneration(cfg, dir, sf, rec, log, s.l)
	if err != nil {
		return err
	}
	sameDir := sameDirectory(old.dir, dir)
	next.dirEpoch = old.dirEpoch
	if !sameDir {
		next.dirEpoch = s.l.epochs.Add(1)
	}
	if sameDir && slices.Equal(old.cfg.SecureGroups, cfg.SecureGroups) {
		next.groupCheck.Store(old.groupCheck.Load())
	} else {
		_ = next.checkSecureGroups(ctx) // logged; SecureGroupsProblem says it
	}
	s.l.cur.Store(next)
	return nil
}

// ListenerChanges names the settings of b that differ from a's and that a
// running listener keeps until the section is restarted: its connection
// limits, timeouts and request bounds, which gldap takes when it starts
// listening. Listen is not among them (see ErrListenChanged).
func ListenerChanges(a, b Config) []string {
	var out []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"idle_timeout", a.IdleTimeout == b.IdleTimeout},
		{"max_connections", a.MaxConnections == b.MaxConnections},
		{"max_connections_per_ip", a.MaxConnectionsPerIP == b.MaxConnectionsPerIP},
		{"max_pending_requests", a.MaxPendingRequests == b.MaxPendingRequests},
		{"max_request_size", a.MaxRequestSize == b.MaxRequestSize},
		{"write_timeout", a.WriteTimeout == b.WriteTimeout},
		{"request_timeout", a.RequestTimeout == b.RequestTimeout},
		{"proxy_protocol", reflect.DeepEqual(a.ProxyProtocol, b.ProxyProtocol)},
	} {
		if !f.same {
			out = append(out, f.name)
		}
	}
	return out
}

// sameDirectory reports whether a and b are the same directory client. A
// value that cannot be compared counts as another directory, which only
// costs a new upstream connection at a session's next bind.
func sameDirectory(a, b Directory) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta != nil && ta == tb && ta.Comparable() && a == b
}
