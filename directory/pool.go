package proxy

import (
	"context"
	"errors"

	"github.com/go-ldap/ldap/v3"
)

// ErrBusy means every connection that checks passwords for clients not yet
// let in is in use: the bind is answered busy (51), and the directory is
// not asked for more.
var ErrBusy = errors.New("directory busy: every password-check connection is in use (directories.NAME.max_connections)")

// checkPool bounds the directory connections spent on password checks of
// clients this proxy has not let in: an attacker without credentials can
// make ldapgate hold at most MaxConnections of them, however many clients
// it opens. A connection leaves the pool the moment the directory accepts a
// password on it (it belongs to that session from then on, bound as its
// user); a refused bind leaves it anonymous (RFC 4511 §4.2.1), so it goes
// back to the pool for the next check. A pooled connection has therefore
// never been bound as anybody.
type checkPool struct {
	slots chan struct{}   // one token per connection checked out
	idle  chan *ldap.Conn // anonymous connections ready for the next check
}

func newCheckPool(n int) *checkPool {
	return &checkPool{slots: make(chan struct{}, n), idle: make(chan *ldap.Conn, n)}
}

// checkConn is a pooled connection lent to one password check. Exactly one
// of keep, release or discard must be called.
type checkConn struct {
	*ldap.Conn
	pool *checkPool
	// reused is true for a connection that waited in the pool: the
	// directory may have closed it meanwhile.
	reused bool
}

// CheckConn lends a connection for one password check, reusing an idle one
// or dialling; ErrBusy when MaxConnections are lent already. It does not
// wait: a client that finds the pool full is told busy at once.
func (d *Directory) CheckConn(ctx context.Context) (*checkConn, error) {
	p := d.pool
	select {
	case p.slots <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	if c := p.takeIdle(); c != nil {
		return &checkConn{Conn: c, pool: p, reused: true}, nil
	}
	c, err := d.Dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &checkConn{Conn: c, pool: p}, nil
}

// keep hands the connection to its session (the directory accepted a
// password on it) and frees its slot.
func (c *checkConn) keep() *ldap.Conn {
	<-c.pool.slots
	return c.Conn
}

// release returns a connection on which the bind was refused (so it is
// anonymous) to the pool.
func (c *checkConn) release() {
	select {
	case c.pool.idle <- c.Conn:
	default:
		c.Conn.Close()
	}
	<-c.pool.slots
}

// discard closes a connection that failed.
func (c *checkConn) discard() {
	c.Conn.Close()
	<-c.pool.slots
}

// takeIdle returns an idle connection that is still open, or nil.
func (p *checkPool) takeIdle() *ldap.Conn {
	for {
		select {
		case c := <-p.idle:
			if !c.IsClosing() {
				return c
			}
			c.Close()
		default:
			return nil
		}
	}
}

// close closes the idle connections.
func (p *checkPool) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}
