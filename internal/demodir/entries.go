package demodir

import (
	"crypto/rand"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/ldapgate/ldapgate/internal/sampledata"
)

// entry is one directory entry. The password is kept apart from the
// attributes, so no search can return it or filter on it.
type entry struct {
	dn       string
	parsed   *ldap.DN
	attrs    []attr // in the order they are returned
	password string // {SSHA}; "" for entries nobody binds as
}

type attr struct {
	name   string
	values []string
}

// values returns the values of the attribute named name (case-insensitive).
func (e *entry) values(name string) []string {
	for _, a := range e.attrs {
		if strings.EqualFold(a.name, name) {
			return a.values
		}
	}
	return nil
}

// sampleEntries builds the sample tree of package sampledata, parents first.
func sampleEntries() ([]*entry, error) {
	var out []*entry
	add := func(dn, password string, kv ...string) error {
		parsed, err := ldap.ParseDN(dn)
		if err != nil {
			return err
		}
		e := &entry{dn: dn, parsed: parsed}
		if password != "" {
			salt := make([]byte, 8)
			_, _ = rand.Read(salt)
			e.password = sampledata.SSHA(password, salt)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			name, value := kv[i], kv[i+1]
			if n := len(e.attrs); n > 0 && e.attrs[n-1].name == name {
				e.attrs[n-1].values = append(e.attrs[n-1].values, value)
				continue
			}
			e.attrs = append(e.attrs, attr{name: name, values: []string{value}})
		}
		out = append(out, e)
		return nil
	}
	oc := func(classes ...string) []string {
		var kv []string
		for _, c := range classes {
			kv = append(kv, "objectClass", c)
		}
		return kv
	}

	if err := add(sampledata.BaseDN, "", append(oc("top", "dcObject", "organization"), "dc", "example", "o", "Example Corp")...); err != nil {
		return nil, err
	}
	for _, ou := range []string{"people", "groups", "services"} {
		if err := add("ou="+ou+","+sampledata.BaseDN, "", append(oc("top", "organizationalUnit"), "ou", ou)...); err != nil {
			return nil, err
		}
	}
	for _, p := range sampledata.People {
		kv := append(oc("top", "person", "organizationalPerson", "inetOrgPerson"),
			"uid", p.UID, "cn", p.CN, "sn", p.SN, "mail", p.Mail)
		if err := add(p.DN(), p.Password, kv...); err != nil {
			return nil, err
		}
	}
	for _, g := range sampledata.Groups {
		kv := append(oc("top", "groupOfNames"), "cn", g.CN)
		for _, m := range g.Members {
			kv = append(kv, "member", sampledata.PersonDN(m))
		}
		if err := add(g.DN(), "", kv...); err != nil {
			return nil, err
		}
	}
	for _, s := range sampledata.Services {
		kv := append(oc("top", "organizationalRole", "simpleSecurityObject"),
			"cn", s.CN, "description", "sample service account "+s.CN)
		if err := add(s.DN(), s.Password, kv...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rootDSE is the entry a client reads at the empty DN to learn what the
// server supports.
func rootDSE() *entry {
	return &entry{
		parsed: &ldap.DN{},
		attrs: []attr{
			{"objectClass", []string{"top"}},
			{"namingContexts", []string{sampledata.BaseDN}},
			{"supportedLDAPVersion", []string{"3"}},
			{"supportedExtension", []string{whoAmIOID}},
			{"vendorName", []string{"ldapgate demo directory (not a real directory server)"}},
		},
	}
}
