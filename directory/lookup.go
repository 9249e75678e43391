package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrLookupBusy means every lookup connection had LookupInFlight searches
// in flight for as long as the directory's timeout: the bind is answered
// busy (51), like a full password-check pool.
var ErrLookupBusy = errors.New("directory busy: every lookup connection is at lookup_in_flight (directories.NAME.lookup_connections)")

// lookupPool is the lookup account's connections: at most size of them,
// each with at most perConn searches in flight. One shared connection
// serialises every login behind one TCP stream, and a directory closes a
// connection with too many requests outstanding (OpenLDAP at
// conn_max_pending_auth, 1,000 by default), failing every lookup on it at
// once; past size×perConn a lookup waits for a place, for at most the
// directory's timeout.
type lookupPool struct {
	slots  chan struct{} // size×perConn tokens: one per search in flight
	mu     sync.Mutex
	conns  []*lookupSlot
	perCon int
}

// lookupSlot is one place in the pool: a connection bound as the lookup
// account (nil until dialled, or after it failed) and its searches in
// flight. dial serialises its (re)connection.
type lookupSlot struct {
	dial     sync.Mutex
	conn     *ldap.Conn // guarded by dial
	inFlight int        // guarded by the pool's mu
}

func newLookupPool(size, perConn int) *lookupPool {
	p := &lookupPool{slots: make(chan struct{}, size*perConn), perCon: perConn}
	for range size {
		p.conns = append(p.conns, &lookupSlot{})
	}
	return p
}

// acquire takes a place for one search on the least busy slot (an empty
// one counts as idle, so the pool grows to size under load); release gives
// it back.
func (p *lookupPool) acquire(ctx context.Context, wait time.Duration) (*lookupSlot, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case p.slots <- struct{}{}:
		case <-t.C:
			return nil, ErrLookupBusy
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a lookup connection: %w", ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	best := p.conns[0]
	for _, s := range p.conns[1:] {
		if s.inFlight < best.inFlight {
			best = s
		}
	}
	// The tokens bound the total; the least busy slot is then below
	// perCon, since the others cannot all be at it.
	best.inFlight++
	return best, nil
}

func (p *lookupPool) release(s *lookupSlot) {
	p.mu.Lock()
	s.inFlight--
	p.mu.Unlock()
	<-p.slots
}

// close closes every lookup connection.
func (p *lookupPool) close() {
	for _, s := range p.conns {
		s.dial.Lock()
		if s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
		s.dial.Unlock()
	}
}

// conn returns the slot's connection, dialling and binding the lookup
// account when it has none or it is closing.
func (d *Client) slotConn(ctx context.Context, s *lookupSlot) (*ldap.Conn, error) {
	s.dial.Lock()
	defer s.dial.Unlock()
	if s.conn != nil && !s.conn.IsClosing() {
		return s.conn, nil
	}
	conn, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	i, known := d.origin(conn)
	if _, err := d.Bind(ctx, conn, d.cfg.BindDN, d.cfg.BindPassword, nil); err != nil {
		conn.Close()
		if _, ok := Answered(err); ok {
			if known {
				d.lookupAccepted(i, false)
			}
			return nil, fmt.Errorf("%w: %w", ErrLookupAccount, err)
		}
		return nil, err
	}
	if known {
		d.lookupAccepted(i, true)
	}
	s.conn = conn
	return conn, nil
}

// drop closes conn, a connection of slot s that failed, so that the next
// search dials anew.
func (s *lookupSlot) drop(conn *ldap.Conn) {
	s.dial.Lock()
	defer s.dial.Unlock()
	if s.conn == conn {
		s.conn = nil
	}
	conn.Close()
}
