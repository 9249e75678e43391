package directory

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/go-ldap/ldap/v3"
)

// URLState is one directory URL as the latest dial, operation or probe on it
// found it. Each URL of a directory has its own; Up (the directory's one
// answer) is true while at least one URL serves.
type URLState struct {
	// URL is scheme://host[:port] as configured, without any user or
	// password it carried: safe for logs, metric labels and /status.
	URL string
	// Up is true while the URL serves: it answered LDAP and, with a lookup
	// account, accepts it. A URL not yet used counts as up.
	Up bool
	// Since is when Up took its current value (the client's creation for a
	// URL whose state has not changed).
	Since time.Time
	// Checked is when a dial, operation or probe last said something about
	// the URL; zero before the first.
	Checked time.Time
	// Err says why Up is false ("" when it is true).
	Err string
}

// urlState is the live state of one URL; the Client's mu-free parts are
// fixed at New.
type urlState struct {
	raw  string   // as configured, for dialling
	u    *url.URL // parsed raw
	name string   // scheme://host, for people and labels

	mu       sync.Mutex
	answers  bool // the latest dial or operation reached it
	refused  bool // it refuses the lookup account's bind
	err      string
	since    time.Time
	checked  time.Time
	wasServe bool // serving() when since was set
}

func newURLState(i int, raw string, now time.Time) (*urlState, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// Never echo raw: it may carry a password.
		return nil, fmt.Errorf("directory: urls[%d] is not an ldap:// or ldaps:// URL", i)
	}
	// Nothing is known before the first dial or probe: not serving, and
	// the one "up" answer is false until something reached the URL.
	return &urlState{raw: raw, u: u, name: u.Scheme + "://" + u.Host, since: now, err: errNotChecked}, nil
}

// errNotChecked is a URL's state before anything reached it.
const errNotChecked = "not checked yet"

func (s *urlState) serving() bool { return s.answers && !s.refused }

// set applies change under the lock and keeps since and checked.
func (s *urlState) set(change func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change()
	now := time.Now()
	s.checked = now
	if up := s.serving(); up != s.wasServe {
		s.wasServe, s.since = up, now
	}
	switch {
	case !s.answers: // change set the network error
	case s.refused:
		s.err = ErrLookupAccount.Error()
	default:
		s.err = ""
	}
}

func (s *urlState) snapshot() URLState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return URLState{URL: s.name, Up: s.serving(), Since: s.since, Checked: s.checked, Err: s.err}
}

// reached records that URL i answered (err nil) or could not be reached.
func (d *Client) reached(i int, err error) {
	s := d.urls[i]
	s.set(func() {
		s.answers = err == nil
		if err != nil {
			s.err = err.Error()
		}
	})
}

// lookupAccepted records whether URL i accepted the lookup account's bind;
// it answered either way.
func (d *Client) lookupAccepted(i int, ok bool) {
	s := d.urls[i]
	s.set(func() { s.answers, s.refused = true, !ok })
}

// URLs returns the state of every URL, in configuration order.
func (d *Client) URLs() []URLState {
	out := make([]URLState, len(d.urls))
	for i, s := range d.urls {
		out[i] = s.snapshot()
	}
	return out
}

// serving reports whether some URL serves, and whether some URL that
// answers refuses the lookup account.
func (d *Client) serving() (up, refused bool) {
	for _, s := range d.urls {
		s.mu.Lock()
		up = up || s.serving()
		refused = refused || (s.answers && s.refused)
		s.mu.Unlock()
	}
	return up, refused
}

// remember notes that conn was dialled to URL i, so that what later happens
// on it is credited to that URL. The note does not keep conn alive and goes
// when conn is collected.
func (d *Client) remember(conn *ldap.Conn, i int) {
	wp := weak.Make(conn)
	d.origins.Store(wp, i)
	runtime.AddCleanup(conn, func(wp weak.Pointer[ldap.Conn]) { d.origins.Delete(wp) }, wp)
}

// origin is the index of the URL conn was dialled to, if Dial made it.
func (d *Client) origin(conn *ldap.Conn) (int, bool) {
	if conn == nil {
		return 0, false
	}
	v, ok := d.origins.Load(weak.Make(conn))
	if !ok {
		return 0, false
	}
	return v.(int), true
}

// answered records that the directory answered on conn.
func (d *Client) answered(conn *ldap.Conn) {
	if i, ok := d.origin(conn); ok {
		d.reached(i, nil)
	}
}

// rootDSE is the probe's read: the root DSE's existence, no attributes.
func rootDSE() *ldap.SearchRequest {
	return ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
}

// pingAll pings every URL at once, each on a fresh connection, and records
// what each one said: a down secondary is noticed while the primary
// serves. It returns the failures joined (nil when every URL serves).
func (d *Client) pingAll(ctx context.Context) error {
	errs := make([]error, len(d.urls))
	var wg sync.WaitGroup
	for i := range d.urls {
		wg.Go(func() { errs[i] = d.pingURL(ctx, i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pingURL proves URL i serves: with the lookup account, its bind and a
// root DSE read; without one, an anonymous root DSE read (any answer, even
// a refusal, is the directory answering). The URL gets the directory's
// timeout to answer, and is down when it does not; when ctx ends first
// (the program stops), nothing is recorded.
func (d *Client) pingURL(ctx context.Context, i int) error {
	name := d.urls[i].name
	uctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	down := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		if uctx.Err() != nil {
			err = fmt.Errorf("no answer within %s (directories.%s.timeout)", d.cfg.Timeout, d.cfg.Name)
		}
		d.reached(i, err)
		return fmt.Errorf("%s: %w", name, err)
	}
	conn, err := d.dialURL(uctx, i)
	if err != nil {
		return down(err)
	}
	defer conn.Close()
	if d.HasLookupAccount() {
		err := withContext(uctx, conn, func() error {
			_, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: d.cfg.BindDN, Password: d.cfg.BindPassword})
			return err
		})
		if _, refused := Answered(err); refused && uctx.Err() == nil {
			d.lookupAccepted(i, false)
			return fmt.Errorf("%s: %w: %w", name, ErrLookupAccount, err)
		}
		if err != nil {
			return down(err)
		}
	}
	res := conn.SearchAsync(uctx, rootDSE(), 0)
	for res.Next() {
	}
	if _, answered := Answered(res.Err()); uctx.Err() != nil || (res.Err() != nil && !answered) {
		return down(res.Err())
	}
	if d.HasLookupAccount() {
		d.lookupAccepted(i, true)
	} else {
		d.reached(i, nil)
	}
	return nil
}
