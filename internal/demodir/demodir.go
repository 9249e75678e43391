// Package demodir is the small in-memory LDAP directory that `ldapgate demo`
// puts behind the proxy: the sample people, groups and service accounts of
// package sampledata, served read-only over plain LDAP on loopback.
//
// It is a demo fixture, not a directory server. It does what the proxy and
// the tour's ldapwhoami/ldapsearch need, the way slapd does it: simple binds
// checked against {SSHA} passwords (an empty password or an unknown DN is
// invalidCredentials), searches with base/one/sub scope, real filter
// evaluation (case-insensitive), attribute selection and a size limit, and
// the WhoAmI extended operation. Anonymous clients see only the root DSE;
// bound ones read every entry, never userPassword. Everything else is
// unwillingToPerform. Tests against a real directory use slapd
// (internal/slapdtest).
package demodir

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

const whoAmIOID = string(gldap.ExtendedOperationWhoAmI)

// Directory is a running demo directory. Stop it with Stop or by cancelling
// the context given to Start.
type Directory struct {
	srv     *gldap.Server
	addr    string
	entries []*entry
	root    *entry

	mu    sync.Mutex
	bound map[int]string // connection ID → bound DN; absent = anonymous
	// opened counts the connections ever accepted (Opened).
	opened int

	stopOnce sync.Once
	stopErr  error
	runDone  chan struct{}
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves the
// sample directory until ctx is cancelled or Stop is called. It returns once
// the directory accepts connections.
func Start(ctx context.Context, addr string) (*Directory, error) {
	entries, err := sampleEntries()
	if err != nil {
		return nil, fmt.Errorf("demodir: %w", err)
	}
	d := &Directory{entries: entries, root: rootDSE(), bound: map[int]string{}, runDone: make(chan struct{})}
	d.srv, err = gldap.NewServer(
		gldap.WithLogger(hclog.NewNullLogger()),
		gldap.WithOnClose(d.forget),
		gldap.WithConnectionEvents(func(ev gldap.ConnEvent) {
			if ev.Kind == gldap.ConnOpened {
				d.mu.Lock()
				d.opened++
				d.mu.Unlock()
			}
		}),
		gldap.WithMaxRequestSize(1<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("demodir: %w", err)
	}
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, fmt.Errorf("demodir: %w", err)
	}
	for _, err := range []error{
		mux.Bind(d.handleBind),
		mux.Search(d.handleSearch),
		mux.ExtendedOperation(d.handleWhoAmI, gldap.ExtendedOperationWhoAmI),
		mux.DefaultRoute(handleUnwilling),
		d.srv.Router(mux),
	} {
		if err != nil {
			return nil, fmt.Errorf("demodir: %w", err)
		}
	}

	runErr := make(chan error, 1)
	go func() {
		defer close(d.runDone)
		runErr <- d.srv.Run(addr)
	}()
	for d.srv.Addr() == nil {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("stopped before listening")
			}
			return nil, fmt.Errorf("demodir: %w", err)
		case <-ctx.Done():
			_ = d.Stop()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	d.addr = d.srv.Addr().String()
	context.AfterFunc(ctx, func() { _ = d.Stop() })
	return d, nil
}

// Addr is the host:port the directory listens on.
func (d *Directory) Addr() string { return d.addr }

// URL is ldap://Addr().
func (d *Directory) URL() string { return "ldap://" + d.addr }

// Stop closes every connection and the listener and waits until they are
// gone. It is idempotent.
func (d *Directory) Stop() error {
	d.stopOnce.Do(func() {
		d.stopErr = d.srv.Stop()
		<-d.runDone
	})
	return d.stopErr
}

func (d *Directory) forget(connID int) {
	d.mu.Lock()
	delete(d.bound, connID)
	d.mu.Unlock()
}

// Opened counts the connections the directory has accepted since it
// started.
func (d *Directory) Opened() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened
}

// BoundAs counts the open connections bound as dn (compared without case).
func (d *Directory) BoundAs(dn string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, b := range d.bound {
		if strings.EqualFold(b, dn) {
			n++
		}
	}
	return n
}

func (d *Directory) boundDN(connID int) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dn, ok := d.bound[connID]
	return dn, ok
}

// find returns the entry named dn (compared as DNs, case-insensitively).
func (d *Directory) find(dn string) *entry {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return nil
	}
	return d.findParsed(parsed)
}

func (d *Directory) handleBind(w *gldap.ResponseWriter, r *gldap.Request) {
	// Whatever happens, the connection is anonymous until a bind succeeds
	// (RFC 4511 4.2.1).
	d.forget(r.ConnectionID())
	msg, err := r.GetSimpleBindMessage()
	if err != nil {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultAuthMethodNotSupported),
			gldap.WithDiagnosticMessage("only simple binds")))
		return
	}
	password := string(msg.Password)
	if msg.UserName == "" && password == "" {
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
		return
	}
	e := d.find(msg.UserName)
	if password == "" || e == nil || e.password == "" || !sampledata.CheckSSHA(e.password, password) {
		// Same answer whether the DN exists or not.
		_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials)))
		return
	}
	d.mu.Lock()
	d.bound[r.ConnectionID()] = e.dn
	d.mu.Unlock()
	_ = w.Write(r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess)))
}

func (d *Directory) handleWhoAmI(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	authzID := "" // anonymous (RFC 4532)
	if dn, ok := d.boundDN(r.ConnectionID()); ok {
		authzID = "dn:" + dn
	}
	resp.SetResponseValue([]byte(authzID))
	_ = w.Write(resp)
}

func handleUnwilling(w *gldap.ResponseWriter, r *gldap.Request) {
	_ = w.Write(r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform),
		gldap.WithDiagnosticMessage("the demo directory is read-only and small")))
}

func (d *Directory) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultOperationsError))
	defer func() { _ = w.Write(done) }()
	msg, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	filter, err := ldap.CompileFilter(msg.Filter)
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		done.SetDiagnosticMessage("bad filter")
		return
	}
	base, err := ldap.ParseDN(msg.BaseDN)
	if err != nil {
		done.SetResultCode(gldap.ResultInvalidDNSyntax)
		return
	}

	var candidates []*entry
	if len(base.RDNs) == 0 && msg.Scope == gldap.BaseObject {
		candidates = []*entry{d.root}
	} else if _, bound := d.boundDN(r.ConnectionID()); !bound {
		// Like slapd with "by anonymous auth": nothing is disclosed.
		done.SetResultCode(gldap.ResultNoSuchObject)
		return
	} else if candidates = d.scope(base, msg.Scope); candidates == nil {
		done.SetResultCode(gldap.ResultNoSuchObject)
		done.SetMatchedDN(d.matchedDN(base))
		return
	}

	sent := 0
	for _, e := range candidates {
		if !matches(filter, e) {
			continue
		}
		if msg.SizeLimit > 0 && int64(sent) >= msg.SizeLimit {
			done.SetResultCode(gldap.ResultSizeLimitExceeded)
			return
		}
		resp := r.NewSearchResponseEntry(e.dn)
		for _, a := range selectAttrs(e, msg.Attributes) {
			values := a.values
			if msg.TypesOnly {
				values = nil
			}
			resp.AddAttribute(a.name, values)
		}
		if err := w.Write(resp); err != nil {
			return
		}
		sent++
	}
	done.SetResultCode(gldap.ResultSuccess)
}

// scope returns the entries the search covers, nil when base does not exist.
func (d *Directory) scope(base *ldap.DN, scope gldap.Scope) []*entry {
	if len(base.RDNs) > 0 && d.findParsed(base) == nil {
		return nil
	}
	out := []*entry{}
	for _, e := range d.entries {
		switch scope {
		case gldap.BaseObject:
			if e.parsed.EqualFold(base) {
				out = append(out, e)
			}
		case gldap.SingleLevel:
			if len(e.parsed.RDNs) == len(base.RDNs)+1 && base.AncestorOfFold(e.parsed) {
				out = append(out, e)
			}
		default: // WholeSubtree
			if e.parsed.EqualFold(base) || base.AncestorOfFold(e.parsed) {
				out = append(out, e)
			}
		}
	}
	return out
}

func (d *Directory) findParsed(dn *ldap.DN) *entry {
	for _, e := range d.entries {
		if e.parsed.EqualFold(dn) {
			return e
		}
	}
	return nil
}

// matchedDN is the deepest existing ancestor of a DN that does not exist.
func (d *Directory) matchedDN(dn *ldap.DN) string {
	for i := 1; i < len(dn.RDNs); i++ {
		if e := d.findParsed(&ldap.DN{RDNs: dn.RDNs[i:]}); e != nil {
			return e.dn
		}
	}
	return ""
}

// selectAttrs applies a search's attribute list: none or "*" is every
// attribute, "1.1" alone none, otherwise the named ones.
func selectAttrs(e *entry, names []string) []attr {
	all := len(names) == 0
	for _, n := range names {
		if n == "*" {
			all = true
		}
	}
	if all {
		return e.attrs
	}
	var out []attr
	for _, a := range e.attrs {
		for _, n := range names {
			if strings.EqualFold(a.name, n) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}
