package directory

import (
	"context"
	"errors"
	"sync"

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
// back to the pool for the next check, and so may the connection of a
// session whose client left after binding alone (Recycle). A pooled
// connection is only ever used for a bind, which replaces whatever
// identity it had: who it was bound as before never reaches anyone.
type checkPool struct {
	slots chan struct{}   // one token per connection checked out
	idle  chan *ldap.Conn // connections ready for the next check

	mu     sync.Mutex // put against close: nothing joins a closed pool
	closed bool
}

func newCheckPool(n, idle int) *checkPool {
	return &checkPool{slots: make(chan struct{}, n), idle: make(chan *ldap.Conn, idle)}
}

// Lease is a pooled connection lent to one password check. Exactly one of
// Keep, Release or Discard must be called.
type Lease struct {
	*ldap.Conn
	pool *checkPool
	// Reused is true for a connection that waited in the pool: the
	// directory may have closed it meanwhile.
	Reused bool
}

// CheckConn lends a connection for one password check, reusing an idle one
// or dialling; ErrBusy when MaxConnections are lent already. It does not
// wait: a client that finds the pool full is told busy at once.
func (d *Client) CheckConn(ctx context.Context) (*Lease, error) {
	p := d.pool
	select {
	case p.slots <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	if c := p.takeIdle(); c != nil {
		return &Lease{Conn: c, pool: p, Reused: true}, nil
	}
	c, err := d.Dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return &Lease{Conn: c, pool: p}, nil
}

// Keep hands the connection to its session (the directory accepted a
// password on it) and frees its slot.
func (c *Lease) Keep() *ldap.Conn {
	<-c.pool.slots
	return c.Conn
}

// Release returns a connection on which the bind was refused (so it is
// anonymous) to the pool.
func (c *Lease) Release() {
	c.pool.put(c.Conn)
	<-c.pool.slots
}

// Recycle offers the pool the connection of a session whose client has
// gone, so that the next client's password check need not dial. The
// caller promises that nothing but binds ever ran on it (no relayed
// operation, whose state - a transaction, a paged search - the
// connection could carry): the next use is a bind, which replaces the
// identity it had. A full or closed pool closes it.
func (d *Client) Recycle(conn *ldap.Conn) {
	if conn.IsClosing() {
		conn.Close()
		return
	}
	d.pool.put(conn)
}

// put adds c to the idle connections, or closes it when the pool is full
// or closed.
func (p *checkPool) put(c *ldap.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		select {
		case p.idle <- c:
			return
		default:
		}
	}
	c.Close()
}

// Discard closes a connection that failed.
func (c *Lease) Discard() {
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

// close closes the idle connections; any put afterwards closes its own.
func (p *checkPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}
