package dn

import "testing"

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"uid=alice,ou=people,dc=example,dc=com", "UID=Alice, OU=People, DC=Example, DC=Com", true},
		{"cn=Alice Archer,dc=example", "cn=alice   archer ,dc=example", true},
		{"cn=Alice Archer,dc=example", "cn=AliceArcher,dc=example", false},
		{"2.5.4.3=alice,dc=example", "cn=alice,dc=example", true},
		{"OID.0.9.2342.19200300.100.1.25=example", "dc=example", true},
		{"cn=a+uid=b,dc=x", "uid=b+cn=a,dc=x", true},
		{"cn=a+uid=b,dc=x", "cn=a,dc=x", false},
		{`cn=a\2Cb,dc=x`, `cn=a\,b,dc=x`, true},
		{`cn=a\,b,dc=x`, `cn=a,cn=b,dc=x`, false},
		{`cn=a\+uid=b,dc=x`, `cn=a+uid=b,dc=x`, false},
		{"uid=alice,dc=example", "uid=alice,dc=example,dc=com", false},
		{"", "", false},
		{"not a dn", "not a dn", false},
	} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestUnder(t *testing.T) {
	ou, _ := Parse("OU=Service, DC=corp,DC=example")
	for dn, want := range map[string]bool{
		"cn=svc,ou=service,dc=corp,dc=example": true,
		"ou=service,dc=corp,dc=example":        true,
		"cn=svc,ou=other,dc=corp,dc=example":   false,
		"dc=corp,dc=example":                   false,
		"cn=svc,ou=service,dc=corp,dc=evil":    false,
	} {
		d, err := Parse(dn)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Under(ou); got != want {
			t.Errorf("%s under %s = %v, want %v", dn, ou, got, want)
		}
	}
}

// FuzzParse: Parse never panics; its canonical string parses to the same
// DN (so equality is transitive through the canonical form), and a DN
// equals its own canonical spelling.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"uid=alice,ou=people,dc=example,dc=com", `cn=a\,b+uid=c,dc=x`, "2.5.4.3=x", `cn=\#a\ ,dc=x`, "cn= a  b ,dc=x", `cn=\00,dc=x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(d.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", d.String(), s, err)
		}
		if !again.Equal(d) || again.String() != d.String() {
			t.Fatalf("canonical form not stable: %q -> %q -> %q", s, d.String(), again.String())
		}
		if !Equal(s, d.String()) {
			t.Fatalf("%q does not equal its canonical form %q", s, d.String())
		}
	})
}
