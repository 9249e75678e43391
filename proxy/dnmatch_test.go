package proxy

import (
	"testing"

	"github.com/ldapgate/ldapgate/failmode"
	"github.com/ldapgate/ldapgate/internal/dn"
)

// TestSecureGroupsAndExemptionsMatchEverySpelling: secure_groups and
// exempt_dns match the directory's DNs however either side spells them
// (case, spaces, OIDs for types, multi-valued RDN order): a secure group
// written as 2.5.4.3=admins must still make its members privileged, or a
// safe section would let an administrator in on the password alone.
func TestSecureGroupsAndExemptionsMatchEverySpelling(t *testing.T) {
	s, err := New(Config{
		Listen:           "127.0.0.1:0",
		Policy:           func() failmode.Policy { return failmode.Policy{Mode: failmode.Safe} },
		SecureGroups:     []string{"2.5.4.3=Admins, OU=Groups,DC=example,DC=com"},
		ExemptDNs:        []string{"cn=svc-app+uid=app,ou=services,dc=example,dc=com"},
		MaxRequestSize:   1 << 10,
		MaxBufferedBytes: 1 << 20,
	}, newTestDirectory(t, testDirectoryConfig()), fakeSF{}, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	if !s.inSecureGroup([]string{"cn=admins,ou=groups,dc=example,dc=com"}) {
		t.Error("a member of the secure group spelled with an OID is not privileged")
	}
	if s.inSecureGroup([]string{"cn=staff,ou=groups,dc=example,dc=com"}) {
		t.Error("a member of another group is privileged")
	}
	entry, _ := dn.Parse("UID=app+CN=svc-app, OU=Services, DC=Example, DC=Com")
	if !s.isExempt(entry) {
		t.Error("the exempt entry spelled otherwise is not exempt")
	}
	other, _ := dn.Parse("uid=app,ou=services,dc=example,dc=com")
	if s.isExempt(other) {
		t.Error("another entry is exempt")
	}
}
