package proxy

import (
	"testing"

	"github.com/ldapgate/ldapgate/directory"
)

func TestAuthzNames(t *testing.T) {
	alice := directory.Identity{DN: "uid=alice,ou=people,dc=example,dc=com"}
	adAlice := directory.Identity{DN: "CN=Alice Archer,OU=Staff,DC=corp,DC=example", Principal: `CORP\alice`}
	tests := []struct {
		name  string
		authz string
		id    directory.Identity
		want  bool
	}{
		{"same dn", "dn:uid=alice,ou=people,dc=example,dc=com", alice, true},
		{"dn differs only in case", "dn:UID=Alice,OU=People,DC=Example,DC=Com", alice, true},
		{"dn with spaces after commas", "dn:uid=alice, ou=people, dc=example, dc=com", alice, true},
		{"hex escape", `dn:uid=al\69ce,ou=people,dc=example,dc=com`, alice, true},
		{"another entry", "dn:uid=bob,ou=people,dc=example,dc=com", alice, false},
		{"parent entry", "dn:ou=people,dc=example,dc=com", alice, false},
		{"child entry", "dn:cn=x,uid=alice,ou=people,dc=example,dc=com", alice, false},
		{"anonymous", "", alice, false},
		{"empty dn", "dn:", alice, false},
		{"unparsable dn", `dn:uid="alice",ou=people`, alice, false},
		{"entry dn unparsable", "dn:uid=alice", directory.Identity{DN: "not a dn"}, false},
		{"no prefix", "uid=alice,ou=people,dc=example,dc=com", alice, false},
		{"ad account", `u:CORP\alice`, adAlice, true},
		{"ad account case", `u:corp\ALICE`, adAlice, true},
		{"same account in another domain", `u:OTHER\alice`, adAlice, false},
		{"ad account without domain", "u:alice", adAlice, false},
		{"ad other account", `u:CORP\bob`, adAlice, false},
		{"ad account prefix only", `u:CORP\ali`, adAlice, false},
		{"u: with no principal on the entry", `u:CORP\alice`, alice, false},
		{"u: domain only", `u:CORP\`, adAlice, false},
		{"u: account only", `u:\alice`, directory.Identity{DN: alice.DN, Principal: `\alice`}, false},
		{"unknown form", "x:alice", adAlice, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authzNames(tt.authz, tt.id); got != tt.want {
				t.Fatalf("authzNames(%q, %q) = %v, want %v", tt.authz, tt.id.DN, got, tt.want)
			}
		})
	}
}
