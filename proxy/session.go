package proxy

import (
	"context"
	"net"
	"sync"

	"github.com/go-ldap/ldap/v3"
)

// session is the state of one client connection.
//
// gldap runs each request of a connection in its own goroutine. A bind takes
// mu exclusively, so no operation is relayed while the identity of the
// upstream connection changes; other operations share it.
type session struct {
	id       int
	clientIP string

	mu sync.RWMutex
	// up is this client's own connection to the directory, dialled lazily.
	up *ldap.Conn
	// upBound is true while up may be authenticated as some user. Such a
	// connection is used for relaying only while authed (bound as the user
	// this proxy let in); otherwise it is closed before any anonymous use.
	upBound bool
	// authed is true after a bind this proxy let succeed (or an anonymous
	// bind a section allows); only then are operations relayed.
	authed bool
	// dn is the DN of the successful bind, "" when anonymous.
	dn string
	// binds counts bind requests, for exempt_primary_bind.
	binds int
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

// upstream returns the client's directory connection, dialling a new one if
// there is none or it died. The caller holds mu exclusively.
func (s *session) upstream(ctx context.Context, d *Directory) (*ldap.Conn, error) {
	if s.up != nil && !s.up.IsClosing() {
		return s.up, nil
	}
	s.closeUpstream()
	conn, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	s.up = conn
	return conn, nil
}

// resetAuth forgets any previous authentication, as RFC 4511 §4.2.1 asks of
// a new bind. The upstream connection is kept (a re-bind on it is cheaper
// than a new connection); while it may still be bound as someone (upBound)
// and the session is not authed, nothing is relayed on it.
func (s *session) resetAuth() {
	s.authed = false
	s.dn = ""
}

func (s *session) closeUpstream() {
	if s.up != nil {
		s.up.Close()
		s.up = nil
	}
	s.upBound = false
}
