package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
)

// session is the state of one client connection. It owns the client's
// upstream connection and the rule of what may be relayed on it
// (relayable): its fields are written only by its methods.
//
// gldap runs each request of a connection in its own goroutine. A bind takes
// mu exclusively, so no operation is relayed while the identity of the
// upstream connection changes; other operations share it.
type session struct {
	id       int
	clientIP string

	mu sync.RWMutex
	// up is this client's own connection to the directory: one the
	// directory accepted a password on, or, where the section allows it,
	// an anonymous one for relaying.
	up *ldap.Conn
	// upBound is true while up may be authenticated as some user. Such a
	// connection is used for relaying only while authed (bound as the user
	// this proxy let in); otherwise it is closed before any anonymous use.
	upBound bool
	// authed is true after a bind this proxy let succeed (or an anonymous
	// bind a section allows); only then are operations relayed.
	authed bool
	// binds counts bind requests, for exempt_primary_bind.
	binds int
	// epoch is the directory generation up belongs to (Server.dirEpoch).
	epoch uint64
	// relayed is set once any operation other than a bind was relayed on
	// up (under the shared lock, hence atomic): such a connection may carry
	// state of that client's (a transaction, a paged search) and is closed
	// with the session, never recycled.
	relayed atomic.Bool
}

func newSession(id int, remote net.Addr) *session {
	s := &session{id: id}
	if remote != nil {
		if host, _, err := net.SplitHostPort(remote.String()); err == nil {
			s.clientIP = host
		}
	}
	return s
}

// relayable is the one rule of what a relayed operation may run as: the
// user this proxy let in, or, where the section allows anonymous access, a
// connection bound as nobody. A connection that may still be bound as a
// user this proxy did not (or no longer) let in is never relayed on.
func (s *session) relayable(allowAnonymous bool) bool {
	return s.authed || (allowAnonymous && !s.upBound)
}

// needsAnonymous reports whether an anonymous operation first needs a fresh
// connection bound as nobody: there is none, it died, or it may be bound as
// an earlier user.
func (s *session) needsAnonymous(allowAnonymous bool) bool {
	return !s.authed && allowAnonymous && (s.up == nil || s.up.IsClosing() || s.upBound)
}

// dialAnonymous replaces the upstream connection with a fresh one bound as
// nobody. The caller holds mu exclusively.
func (s *session) dialAnonymous(ctx context.Context, d Directory, epoch uint64) error {
	s.closeUpstream()
	conn, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	s.up, s.epoch = conn, epoch
	s.relayed.Store(false)
	return nil
}

// adopt makes conn, on which the directory just accepted a password, the
// client's upstream connection (closing any other). It is bound as that
// user from now on, and relayed on only once letIn.
func (s *session) adopt(conn *ldap.Conn, epoch uint64) {
	if conn != s.up {
		s.closeUpstream()
		s.up = conn
		s.relayed.Store(false)
	}
	s.upBound, s.epoch = true, epoch
}

// letIn records that this proxy let the bind succeed (or an anonymous one
// the section allows): from now on operations are relayed on up.
func (s *session) letIn() {
	s.authed = true
}

// resetAuth forgets any previous authentication, as RFC 4511 §4.2.1 asks of
// a new bind. The upstream connection is kept (a re-bind on it is cheaper
// than a new connection); while it may still be bound as someone (upBound)
// and the session is not authed, nothing is relayed on it.
func (s *session) resetAuth() {
	s.authed = false
}

// release ends the session's hold on its upstream connection when its
// client has gone: a connection of the directory generation in force
// (epoch) on which only binds ran goes back to the password-check pool,
// so that the next client need not dial; any other is closed.
func (s *session) release(d Directory, epoch uint64) {
	if s.up != nil && s.epoch == epoch && !s.relayed.Load() && !s.up.IsClosing() {
		d.Recycle(s.up)
		s.up, s.upBound = nil, false
		return
	}
	s.closeUpstream()
}

// closeUpstream closes the upstream connection: nothing is bound as anyone
// for this client any more.
func (s *session) closeUpstream() {
	if s.up != nil {
		s.up.Close()
		s.up = nil
	}
	s.upBound = false
}
