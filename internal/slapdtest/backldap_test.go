package slapdtest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// TestBackLDAPRelaysToTheDirectory: a WithBackLDAP server answers binds
// and searches with the data of the directory it points at, and relays a
// wrong password's refusal.
func TestBackLDAPRelaysToTheDirectory(t *testing.T) {
	dir := Start(t)
	relay := Start(t, WithBackLDAP(dir.URL))
	conn, err := ldap.DialURL(relay.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice, _ := sampledata.Lookup("alice")
	if err := conn.Bind(alice.DN(), "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("wrong password through back-ldap: %v, want invalid credentials", err)
	}
	if err := conn.Bind(alice.DN(), alice.Password); err != nil {
		t.Fatalf("bind through back-ldap: %v", err)
	}
	res, err := conn.Search(ldap.NewSearchRequest(alice.DN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"mail"}, nil))
	if err != nil {
		t.Fatalf("search through back-ldap: %v", err)
	}
	if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("mail") != alice.Mail {
		t.Fatalf("search through back-ldap: %+v, want alice's entry with mail %s", res.Entries, alice.Mail)
	}
}
