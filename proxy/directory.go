package proxy

import (
	"context"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/directory"
)

// Directory is what a section needs of its upstream directory: a password
// check on a bounded pool of connections, the entry a bind name stands
// for, whom the directory authenticated, group membership, and a fresh
// connection for anonymous relaying. *directory.Client is the one
// implementation; its contract suite runs against slapd and the in-memory
// directory that proxy's own tests use.
//
// Errors follow package directory: directory.Answered is the directory's
// own answer, directory.IsUnavailable a directory that could not be
// reached, anything else (our cancellation included) is neither.
type Directory interface {
	HasLookupAccount() bool
	Dial(ctx context.Context) (*ldap.Conn, error)
	CheckConn(ctx context.Context) (*directory.Lease, error)
	// Recycle takes back the connection of a session whose client left,
	// on which nothing but binds ran, for the next password check.
	Recycle(conn *ldap.Conn)
	Bind(ctx context.Context, conn *ldap.Conn, name, password string, controls []ldap.Control) (*ldap.SimpleBindResult, error)
	FindUser(ctx context.Context, conn *ldap.Conn, name string) (directory.Identity, error)
	WhoAmI(ctx context.Context, conn *ldap.Conn) (string, error)
	Principal(ctx context.Context, conn *ldap.Conn, dn string) (string, error)
	Groups(ctx context.Context, conn *ldap.Conn, dn string) ([]string, error)
	ReadEntry(ctx context.Context, conn *ldap.Conn, dn string) error
}

var _ Directory = (*directory.Client)(nil)
