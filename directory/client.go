// Package directory is ldapgate's client of the upstream directories
// (OpenLDAP, Active Directory...): URL failover, the lookup account's
// bounded pool of connections (lookup.go), finding a bind name's entry,
// group membership, Who Am I, the bounded pool of password-check
// connections (pool.go), and the one answer to "can
// this directory authenticate users now" (Up, Problem, Probe) that
// readiness, /status and ldapgate_directory_up all read.
//
// Every call takes a context and ends when it does: searches through
// go-ldap's SearchAsync, binds and Who Am I by closing the connection.
// Errors say whose they are: the directory's answer (Answered), the
// directory unreachable (*UnavailableError), or our own cancellation.
package directory

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/dn"
)

// Config describes an upstream directory and how to find users in it.
type Config struct {
	Name     string
	URLs     []string
	Timeout  time.Duration
	StartTLS bool
	// TLS is used for ldaps:// and StartTLS, and is required when either
	// is: its roots, minimum version and client certificate (mutual TLS)
	// apply to every URL. Verification is always on.
	TLS *tls.Config
	// ServerName is the name the directory's certificate must carry; empty:
	// each URL's host (directories.NAME.tls_server_name, for URLs that
	// name the directory by IP address).
	ServerName string

	// BindDN and BindPassword are the lookup account; empty means lookups
	// run on the user's own connection after the user bound.
	BindDN       string
	BindPassword string

	BaseDN            string
	UsernameAttribute string
	// UserFilter returns the filter that finds the entry of a non-DN bind
	// name; username is the bare name, name the name as typed.
	UserFilter func(username, name string) string
	// GroupFilter returns the filter that finds the groups of dn.
	GroupFilter func(dn string) string
	// NestedGroups resolves membership through groups of groups, for
	// directories without LDAP_MATCHING_RULE_IN_CHAIN.
	NestedGroups bool
	// MaxGroupDepth bounds nested membership (levels of groups); deeper
	// membership counts as privileged. Required when NestedGroups is set.
	MaxGroupDepth int
	// MaxConnections bounds the connections checking passwords of clients
	// not yet let in (CheckConn); required.
	MaxConnections int
	// MaxIdle bounds the password-check connections kept open while
	// unused, for the next check (at most MaxConnections); required.
	MaxIdle int
	// LookupConnections bounds the lookup account's connections, and
	// LookupInFlight the searches in flight on each (lookup.go); required
	// with a lookup account.
	LookupConnections int
	LookupInFlight    int
}

// Errors of Directory lookups. A network failure is never one of these: it
// is an error for which IsUnavailable is true.
var (
	ErrNoSuchUser    = errors.New("no entry matches the bind name")
	ErrAmbiguousUser = errors.New("more than one entry matches the bind name")
	// ErrLookupAccount means the directory refused the lookup account's
	// own bind: a configuration problem, never the user's fault.
	ErrLookupAccount = errors.New("directory refused the lookup account (bind_dn/bind_password)")
	// ErrNoSuchEntry means an entry that should exist cannot be seen: it is
	// missing, or the directory's ACLs hide it from the identity that read.
	ErrNoSuchEntry = errors.New("entry not found or not visible")
	// ErrGroupsTooDeep means nested group membership goes deeper than the
	// bound: membership could not be read in full.
	ErrGroupsTooDeep = errors.New("group nesting deeper than the limit")
)

// ErrSearchCut means a search ended without its result because its
// connection was closing: the directory did not answer it. It is a
// network error (ldap.ErrorNetwork), never the directory's answer.
var ErrSearchCut = ldap.NewError(ldap.ErrorNetwork, errors.New("connection closing: the search got no result"))

// UnavailableError means the directory could not be reached or did not
// answer; it is never a statement about the user's credentials.
type UnavailableError struct {
	Op  string
	Err error
}

func (e *UnavailableError) Error() string {
	return "directory unavailable: " + e.Op + ": " + e.Err.Error()
}
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err means the directory was unreachable.
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	return errors.As(err, &ue)
}

// Answered returns the LDAP result carried by err, if err is an answer
// from the directory rather than a client-side or network failure.
//
// go-ldap reports network failures as *ldap.Error with codes ≥ 200, or as
// plain errors ("unable to read LDAP response packet: EOF"); only codes
// below 200 are the server speaking.
func Answered(err error) (*ldap.Error, bool) {
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode < 200 {
		return le, true
	}
	return nil, false
}

// Identity is an entry as the directory spells it: what the second factor,
// the exemptions and the secure groups need to know about the user. Only
// authenticate (proxy/identity.go) decides which entry a bind authenticated.
type Identity struct {
	// DN is the entry's DN as the directory returned it, never a name as
	// typed by the client.
	DN       string
	Username string
	// Principal is the entry's msDS-PrincipalName (DOMAIN\account), when
	// the directory has it: what an Active Directory Who Am I answer
	// (u:DOMAIN\account) names.
	Principal string
}

// Client is one upstream directory: it dials per-client connections and
// runs lookups with the lookup account on a bounded pool of connections. Its
// methods are safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	// lookups are the lookup account's connections (lookup.go).
	lookups *lookupPool

	pool *checkPool

	// urls is the state of each configured URL (urls.go); Up is true while
	// one of them serves.
	urls []*urlState
	// origins maps each connection Dial made (a weak.Pointer) to the
	// index of its URL, so what happens on it is credited to that URL.
	origins sync.Map
	// preferred is the index of the URL new connections try first: the
	// last one that accepted a connection, moved on when a connection to it
	// stops answering, so that a hung server costs one timeout, not one per
	// bind.
	preferred atomic.Int32
}

// New checks cfg; it does not connect.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("directory: no URLs")
	}
	if cfg.Timeout <= 0 {
		return nil, errors.New("directory: timeout must be positive (directories.NAME.timeout)")
	}
	if cfg.UserFilter == nil || cfg.GroupFilter == nil || cfg.UsernameAttribute == "" {
		return nil, errors.New("directory: user filter, group filter and username attribute are required")
	}
	if cfg.MaxConnections <= 0 || cfg.MaxIdle <= 0 {
		return nil, errors.New("directory: max connections and idle connections must be positive")
	}
	if cfg.TLS == nil && (cfg.StartTLS || slices.ContainsFunc(cfg.URLs, func(u string) bool { return strings.HasPrefix(strings.ToLower(u), "ldaps://") })) {
		return nil, errors.New("directory: ldaps:// and StartTLS need a TLS configuration")
	}
	if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
		return nil, errors.New("directory: certificate verification cannot be turned off")
	}
	if cfg.BindDN != "" && (cfg.LookupConnections <= 0 || cfg.LookupInFlight <= 0) {
		return nil, errors.New("directory: lookup connections and searches in flight per connection must be positive")
	}
	if cfg.MaxGroupDepth <= 0 {
		cfg.MaxGroupDepth = 1 // direct membership only
		if cfg.NestedGroups {
			return nil, errors.New("directory: nested groups need a maximum depth")
		}
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Client{cfg: cfg, log: log.With("directory", cfg.Name), pool: newCheckPool(cfg.MaxConnections, min(cfg.MaxIdle, cfg.MaxConnections)),
		lookups: newLookupPool(max(cfg.LookupConnections, 1), max(cfg.LookupInFlight, 1))}
	now := time.Now()
	for i, raw := range cfg.URLs {
		s, err := newURLState(i, raw, now)
		if err != nil {
			return nil, err
		}
		d.urls = append(d.urls, s)
	}
	return d, nil
}

// Name is the directory's section name.
func (d *Client) Name() string { return d.cfg.Name }

// Up reports whether the directory can be used to authenticate users: some
// URL serves (the latest dial, operation or probe on it reached it, and it
// accepts the lookup account when there is one). Readiness, /status and
// ldapgate_directory_up all read this one answer; Problem says why it is
// false, URLs how each URL is.
func (d *Client) Up() bool {
	up, _ := d.serving()
	return up
}

// Problem says, for people, why Up is false ("" when it is true).
func (d *Client) Problem() string {
	switch up, refused := d.serving(); {
	case up:
		return ""
	case refused:
		return "refuses the lookup account (bind_dn/bind_password)"
	case !d.checked():
		return errNotChecked
	}
	return "unreachable"
}

// checked reports whether anything has reached or tried a URL yet.
func (d *Client) checked() bool {
	for _, s := range d.urls {
		s.mu.Lock()
		c := !s.checked.IsZero()
		s.mu.Unlock()
		if c {
			return true
		}
	}
	return false
}

// HasLookupAccount reports whether a lookup account is configured.
func (d *Client) HasLookupAccount() bool { return d.cfg.BindDN != "" }

// Dial opens a new connection, trying each URL in turn from the preferred
// one; each URL tried records whether it could be reached. A ctx that ends
// first ends the dial and records nothing.
func (d *Client) Dial(ctx context.Context) (*ldap.Conn, error) {
	var errs []error
	n := len(d.urls)
	start := int(d.preferred.Load())
	for k := range n {
		if err := ctx.Err(); err != nil {
			return nil, &UnavailableError{Op: "dial", Err: err}
		}
		i := (start + k) % n
		conn, err := d.dialURL(ctx, i)
		if err == nil {
			d.preferred.Store(int32(i))
			d.remember(conn, i)
			d.reached(i, nil)
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, &UnavailableError{Op: "dial", Err: ctx.Err()}
		}
		d.reached(i, err)
		errs = append(errs, err)
	}
	return nil, &UnavailableError{Op: "dial", Err: errors.Join(errs...)}
}

// unavailable records that conn stopped answering: its URL is down, and
// new connections try the next URL first, so that a hung server costs one
// timeout, not one per bind.
func (d *Client) unavailable(conn *ldap.Conn, op string, err error) *UnavailableError {
	n := int32(len(d.urls))
	if i, ok := d.origin(conn); ok {
		d.reached(i, fmt.Errorf("%s: %w", op, err))
		d.preferred.CompareAndSwap(int32(i), (int32(i)+1)%n)
	} else if n > 1 {
		p := d.preferred.Load()
		d.preferred.CompareAndSwap(p, (p+1)%n)
	}
	return &UnavailableError{Op: op, Err: err}
}

// dialURL connects to URL i; ctx ends the connect, the TLS handshake and
// StartTLS. Failures are go-ldap network errors (code 200), never answers.
func (d *Client) dialURL(ctx context.Context, i int) (*ldap.Conn, error) {
	u := d.urls[i].u
	var tlsCfg *tls.Config
	if u.Scheme == "ldaps" || d.cfg.StartTLS {
		tlsCfg = d.cfg.TLS.Clone()
		tlsCfg.ServerName = cmp.Or(d.cfg.ServerName, u.Hostname())
	}
	dialer := &net.Dialer{Timeout: d.cfg.Timeout, KeepAlive: 30 * time.Second}
	addr := u.Host
	if u.Port() == "" {
		port := ldap.DefaultLdapPort
		if u.Scheme == "ldaps" {
			port = ldap.DefaultLdapsPort
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var nc net.Conn
	var err error
	if u.Scheme == "ldaps" {
		nc, err = (&tls.Dialer{NetDialer: dialer, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Host, ldap.NewError(ldap.ErrorNetwork, err))
	}
	conn := ldap.NewConn(nc, u.Scheme == "ldaps")
	conn.Start()
	conn.SetTimeout(d.cfg.Timeout)
	if d.cfg.StartTLS {
		if err := withContext(ctx, conn, func() error { return conn.StartTLS(tlsCfg) }); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: starttls: %w", u.Host, err)
		}
	}
	return conn, nil
}

// Bind binds conn as name with password. An error for which ldapResult is
// true is the directory's answer (for example invalid credentials); any
// other error is an *UnavailableError.
//
// go-ldap's bind takes no context: when ctx ends first (the client went
// away), conn is closed to end the call, and the error wraps ctx.Err(); it
// is neither the directory's answer nor evidence that it is down.
func (d *Client) Bind(ctx context.Context, conn *ldap.Conn, name, password string, controls []ldap.Control) (*ldap.SimpleBindResult, error) {
	var res *ldap.SimpleBindResult
	err := withContext(ctx, conn, func() (err error) {
		res, err = conn.SimpleBind(&ldap.SimpleBindRequest{Username: name, Password: password, Controls: controls})
		return err
	})
	if ctx.Err() != nil && err != nil {
		return res, fmt.Errorf("bind: %w", ctx.Err())
	}
	if err != nil {
		if _, ok := Answered(err); ok {
			d.answered(conn)
			return res, err
		}
		return res, d.unavailable(conn, "bind", err)
	}
	d.answered(conn)
	return res, nil
}

// principalAttribute is Active Directory's constructed DOMAIN\account
// name of an entry, which its Who Am I answer names (u:DOMAIN\account).
// Other directories ignore a request for an attribute they do not know.
const principalAttribute = "msDS-PrincipalName"

// FindUser finds the one entry a bind name stands for, with the lookup
// account, or on conn (already bound as the user) when there is none. A name
// that parses as a DN is read as a base object, so the directory itself
// says which entry that spelling names; any other name (alice, alice@corp,
// CORP\alice, or a DN spelling go-ldap cannot parse) goes through
// user_filter. The Identity's DN is always the directory's own spelling.
// A name that matches no entry is ErrNoSuchUser, several ErrAmbiguousUser.
func (d *Client) FindUser(ctx context.Context, conn *ldap.Conn, name string) (Identity, error) {
	attrs := []string{d.cfg.UsernameAttribute, principalAttribute}
	var req *ldap.SearchRequest
	if isDN(name) {
		req = ldap.NewSearchRequest(name, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			2, d.timeLimit(), false, "(objectClass=*)", attrs, nil)
	} else {
		req = ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, d.timeLimit(), false, d.cfg.UserFilter(bareName(name), name), attrs, nil)
	}
	entries, err := d.search(ctx, conn, req)
	if err != nil {
		return Identity{}, err
	}
	switch len(entries) {
	case 0:
		return Identity{}, ErrNoSuchUser
	case 1:
		e := entries[0]
		if e.DN == "" {
			return Identity{}, ErrNoSuchUser
		}
		return Identity{DN: e.DN, Username: e.GetAttributeValue(d.cfg.UsernameAttribute),
			Principal: e.GetAttributeValue(principalAttribute)}, nil
	}
	return Identity{}, ErrAmbiguousUser
}

// Principal reads the msDS-PrincipalName of the entry dn on conn, as a
// base-object read (Active Directory computes it, and may leave constructed
// attributes out of subtree searches). "" when the entry has none.
func (d *Client) Principal(ctx context.Context, conn *ldap.Conn, dn string) (string, error) {
	entries, err := d.search(ctx, conn, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{principalAttribute}, nil))
	if err != nil || len(entries) != 1 {
		return "", err
	}
	return entries[0].GetAttributeValue(principalAttribute), nil
}

// WhoAmI asks the directory which identity conn is authenticated as
// (RFC 4532): "dn:<DN>" from OpenLDAP, "u:DOMAIN\user" from Active
// Directory, "" when anonymous. An error means the directory did not say.
func (d *Client) WhoAmI(ctx context.Context, conn *ldap.Conn) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var res *ldap.WhoAmIResult
	err := withContext(ctx, conn, func() (err error) {
		res, err = conn.WhoAmI(nil)
		return err
	})
	if ctx.Err() != nil && err != nil {
		return "", fmt.Errorf("who am i: %w", ctx.Err())
	}
	if err != nil {
		if _, ok := Answered(err); ok {
			d.answered(conn)
			return "", fmt.Errorf("who am i: %w", err)
		}
		return "", d.unavailable(conn, "who am i", err)
	}
	d.answered(conn)
	return res.AuthzID, nil
}

func (d *Client) timeLimit() int { return int(d.cfg.Timeout / time.Second) }

// groupsPerSearch bounds how many groups one nested-membership search asks
// about at once, so that its filter stays a reasonable size.
const groupsPerSearch = 64

// Groups returns the DNs of the groups entry is a member of: those group_filter
// finds for entry and, with nested groups, the groups those are members of, to
// MaxGroupDepth levels, each group once (cycles end there). A membership
// that cannot be read in full is an error (ErrGroupsTooDeep past the depth
// bound): the caller counts the user as privileged.
func (d *Client) Groups(ctx context.Context, conn *ldap.Conn, entry string) ([]string, error) {
	seen := map[string]bool{}
	var groups []string
	frontier := []string{entry}
	for depth := 0; len(frontier) > 0; depth++ {
		if depth > 0 && !d.cfg.NestedGroups {
			break
		}
		if depth >= d.cfg.MaxGroupDepth {
			return groups, fmt.Errorf("%w (%d levels)", ErrGroupsTooDeep, d.cfg.MaxGroupDepth)
		}
		var next []string
		for len(frontier) > 0 {
			n := min(len(frontier), groupsPerSearch)
			entries, err := d.search(ctx, conn, ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree,
				ldap.NeverDerefAliases, 0, d.timeLimit(), false, d.groupFilter(frontier[:n]), []string{"1.1"}, nil))
			if err != nil {
				return groups, err
			}
			frontier = frontier[n:]
			for _, g := range entries {
				key := strings.ToLower(g.DN)
				if d, err := dn.Parse(g.DN); err == nil {
					key = d.String() // one group however the directory spells it
				}
				if seen[key] {
					continue
				}
				seen[key] = true
				groups = append(groups, g.DN)
				next = append(next, g.DN)
			}
		}
		frontier = next
	}
	return groups, nil
}

// groupFilter is group_filter for one member DN, or the OR of it for several.
func (d *Client) groupFilter(members []string) string {
	if len(members) == 1 {
		return d.cfg.GroupFilter(members[0])
	}
	var b strings.Builder
	b.WriteString("(|")
	for _, m := range members {
		b.WriteString(d.cfg.GroupFilter(m))
	}
	b.WriteString(")")
	return b.String()
}

// ReadEntry proves that the entry dn is visible: a base-object read, with
// the lookup account or on conn. An entry the identity cannot see is
// ErrNoSuchEntry.
func (d *Client) ReadEntry(ctx context.Context, conn *ldap.Conn, dn string) error {
	entries, err := d.search(ctx, conn, ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, d.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return err
	}
	if len(entries) != 1 {
		return ErrNoSuchEntry
	}
	return nil
}

// search runs req with the lookup account when there is one, on the least
// busy lookup connection (retrying once on a fresh connection after a
// network failure), else on conn.
func (d *Client) search(ctx context.Context, conn *ldap.Conn, req *ldap.SearchRequest) ([]*ldap.Entry, error) {
	if !d.HasLookupAccount() {
		if conn == nil {
			return nil, errors.New("no lookup account and no bound connection")
		}
		return d.collect(ctx, conn, req)
	}
	slot, err := d.lookups.acquire(ctx, d.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	defer d.lookups.release(slot)
	for attempt := 0; ; attempt++ {
		lc, err := d.slotConn(ctx, slot)
		if err == nil {
			var entries []*ldap.Entry
			if entries, err = d.collect(ctx, lc, req); err == nil || !IsUnavailable(err) {
				return entries, err
			}
			slot.drop(lc)
		}
		// One retry on a fresh connection (Dial tries the next URL first
		// after a failure), whether dialling, binding or searching failed.
		if !IsUnavailable(err) || attempt > 0 {
			return nil, err
		}
	}
}

// withContext runs a go-ldap call that takes no context, closing conn to
// end it when ctx ends first.
func withContext(ctx context.Context, conn *ldap.Conn, call func() error) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return call()
}

// collect runs req on conn and gathers its entries; ctx ends it (go-ldap
// abandons the search). Our own cancellation is never the directory being
// down.
func (d *Client) collect(ctx context.Context, conn *ldap.Conn, req *ldap.SearchRequest) ([]*ldap.Entry, error) {
	res := conn.SearchAsync(ctx, req, 0)
	var entries []*ldap.Entry
	for res.Next() {
		if e := res.Entry(); e != nil {
			entries = append(entries, e)
		}
	}
	if ctx.Err() != nil {
		// go-ldap ends a cancelled search without an error: what arrived
		// so far is not the answer.
		return nil, fmt.Errorf("search %q: %w", req.BaseDN, ctx.Err())
	}
	err := res.Err()
	if err == nil && conn.IsClosing() {
		// go-ldap ends a search on a connection already closing with no
		// entry and no error: that is not "nothing matches".
		err = ErrSearchCut
	}
	if req.SizeLimit > 0 && ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		// We asked for at most SizeLimit entries (FindUser asks for two to
		// tell one match from several): the entries are the answer.
		err = nil
	}
	if err != nil {
		if le, ok := Answered(err); ok {
			d.answered(conn)
			if le.ResultCode == ldap.LDAPResultNoSuchObject {
				return nil, nil
			}
			return nil, fmt.Errorf("search %q: %w", req.BaseDN, err)
		}
		return nil, d.unavailable(conn, "search", err)
	}
	d.answered(conn)
	return entries, nil
}

// Ping proves the directory answers: with the lookup account, a bind and a
// rootDSE read; without one, an anonymous rootDSE read on a fresh connection.
func (d *Client) Ping(ctx context.Context) error {
	req := rootDSE()
	if d.HasLookupAccount() {
		_, err := d.search(ctx, nil, req)
		if _, ok := Answered(err); ok && !errors.Is(err, ErrLookupAccount) {
			return nil // the directory answered
		}
		return err
	}
	conn, err := d.Dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = d.collect(ctx, conn, req)
	if _, ok := Answered(err); ok {
		return nil // the directory answered, even if it refused an anonymous read
	}
	return err
}

// Close closes the lookup connections and the idle password-check ones.
func (d *Client) Close() {
	d.pool.close()
	d.lookups.close()
}

// bareName strips a DOMAIN\ prefix or an @domain suffix from a bind name.
func bareName(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	return name
}

// isDN reports whether a bind name is a distinguished name.
func isDN(name string) bool {
	if !strings.Contains(name, "=") {
		return false
	}
	dn, err := ldap.ParseDN(name)
	return err == nil && len(dn.RDNs) > 0
}

// Probe checks the directory every interval until ctx ends (the first at
// once), so that Up and URLs notice an outage or a refused lookup account
// even when no client binds: with a lookup account it pings a lookup
// connection (a broken one is replaced now, not at the next
// lookup), then every URL at once on fresh connections of its own, each
// given the directory's timeout, so that a down secondary is seen while
// the primary serves. Then it calls after (nil to skip) with a context
// bounded by half the interval, then report (nil to skip) with Up, whether
// Up changed since the last report, and the pings' errors joined (nil when
// every URL serves).
func (d *Client) Probe(ctx context.Context, interval time.Duration, after func(context.Context),
	report func(up, changed bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := true
	for {
		if d.HasLookupAccount() {
			pctx, cancel := context.WithTimeout(ctx, interval/2)
			_ = d.Ping(pctx) // pingAll, next, has the last word on each URL
			cancel()
		}
		err := d.pingAll(ctx)
		if after != nil {
			pctx, cancel := context.WithTimeout(ctx, interval/2)
			after(pctx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		up := d.Up()
		if report != nil {
			report(up, up != last, err)
		}
		last = up
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
