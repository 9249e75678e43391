// Package sampledata holds the sample people, groups and service accounts
// shared by the slapd-backed integration tests and the embedded demo
// directory, so both describe the same directory.
//
// Everything here is test and demo data: the passwords are public.
package sampledata

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// BaseDN is the suffix of the sample directory.
const BaseDN = "dc=example,dc=com"

// The organisational units under BaseDN.
const (
	PeopleDN   = "ou=people," + BaseDN
	GroupsDN   = "ou=groups," + BaseDN
	ServicesDN = "ou=services," + BaseDN
)

// AdminGroup is the privileged group of the sample directory.
const AdminGroup = "admins"

// The values of Person.DuoBehavior: how a fake Duo answers for that user.
const (
	DuoApprove      = "approve"       // a push is approved
	DuoDeny         = "deny"          // a push is denied
	DuoPasscodeOnly = "passcode_only" // no push device; only Passcodes are accepted
	DuoNotEnrolled  = "not_enrolled"  // Duo does not know the user
	DuoBypass       = "bypass"        // Duo lets the user in without a second factor
)

// Person is an inetOrgPerson under ou=people.
type Person struct {
	UID, CN, SN, Mail string
	// Password is the plaintext password; the LDIF stores it as {SSHA}.
	Password string
	// DuoBehavior is one of the Duo* constants, or "" for no opinion.
	DuoBehavior string
	// Passcodes are the one-time passcodes a fake Duo accepts for the user.
	Passcodes []string
}

// DN is the person's entry DN.
func (p Person) DN() string { return PersonDN(p.UID) }

// Group is a groupOfNames under ou=groups.
type Group struct {
	CN string
	// Members are the uids of the member people.
	Members []string
}

// DN is the group's entry DN.
func (g Group) DN() string { return GroupDN(g.CN) }

// ServiceAccount is a simpleSecurityObject under ou=services.
type ServiceAccount struct {
	CN, Password string
}

// DN is the service account's entry DN.
func (s ServiceAccount) DN() string { return ServiceDN(s.CN) }

// People are the sample users. Callers must not modify them.
var People = []Person{
	{UID: "alice", CN: "Alice Archer", SN: "Archer", Mail: "alice@example.com", Password: "alice-pass", DuoBehavior: DuoApprove},
	{UID: "bob", CN: "Bob Baker", SN: "Baker", Mail: "bob@example.com", Password: "bob-pass", DuoBehavior: DuoDeny},
	{UID: "carol", CN: "Carol Carter", SN: "Carter", Mail: "carol@example.com", Password: "carol-pass", DuoBehavior: DuoPasscodeOnly, Passcodes: []string{"123456", "7654321"}},
	{UID: "dave", CN: "Dave Dawson", SN: "Dawson", Mail: "dave@example.com", Password: "dave-pass", DuoBehavior: DuoNotEnrolled},
	{UID: "erin", CN: "Erin Evans", SN: "Evans", Mail: "erin@example.com", Password: "erin-pass", DuoBehavior: DuoBypass},
	{UID: "adam", CN: "Adam Admin", SN: "Admin", Mail: "adam@example.com", Password: "adam-pass", DuoBehavior: DuoApprove},
	// frank's password contains the passcode delimiter ",".
	{UID: "frank", CN: "Frank Foster", SN: "Foster", Mail: "frank@example.com", Password: "pass,word,9", DuoBehavior: DuoApprove},
	{UID: "grace", CN: "Grace Green", SN: "Green", Mail: "grace@example.com", Password: "grace-pass", DuoBehavior: DuoApprove},
}

// Groups are the sample groups. Callers must not modify them.
var Groups = []Group{
	{CN: AdminGroup, Members: []string{"adam"}},
	{CN: "staff", Members: []string{"alice", "bob", "grace"}},
}

// Services are the sample service accounts. Callers must not modify them.
var Services = []ServiceAccount{
	// ldapgate is the proxy's own lookup account.
	{CN: "ldapgate", Password: "svc-lookup-pass"},
	// app is an application account that a configuration exempts from MFA.
	{CN: "app", Password: "svc-app-pass"},
}

// PersonDN returns uid=<uid>,ou=people,dc=example,dc=com.
func PersonDN(uid string) string { return "uid=" + uid + "," + PeopleDN }

// GroupDN returns cn=<cn>,ou=groups,dc=example,dc=com.
func GroupDN(cn string) string { return "cn=" + cn + "," + GroupsDN }

// ServiceDN returns cn=<cn>,ou=services,dc=example,dc=com.
func ServiceDN(cn string) string { return "cn=" + cn + "," + ServicesDN }

// Lookup returns the person with the given uid.
func Lookup(uid string) (Person, bool) {
	for _, p := range People {
		if p.UID == uid {
			return p, true
		}
	}
	return Person{}, false
}

// LookupService returns the service account with the given cn.
func LookupService(cn string) (ServiceAccount, bool) {
	for _, s := range Services {
		if s.CN == cn {
			return s, true
		}
	}
	return ServiceAccount{}, false
}

// GroupsOf returns the cns of the groups uid is a member of.
func GroupsOf(uid string) []string {
	var cns []string
	for _, g := range Groups {
		for _, m := range g.Members {
			if m == uid {
				cns = append(cns, g.CN)
				break
			}
		}
	}
	return cns
}

// SSHA returns the RFC 2307 {SSHA} hash of password with salt:
// "{SSHA}" + base64(SHA1(password+salt) + salt), the form slapd verifies.
func SSHA(password string, salt []byte) string {
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	sum := h.Sum(nil)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum, salt...))
}

// CheckSSHA reports whether hash is an {SSHA} hash of password.
func CheckSSHA(hash, password string) bool {
	rest, ok := strings.CutPrefix(hash, "{SSHA}")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) <= sha1.Size {
		return false
	}
	digest, salt := raw[:sha1.Size], raw[sha1.Size:]
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return subtle.ConstantTimeCompare(h.Sum(nil), digest) == 1
}

// saltFor derives a fixed 8-byte salt from an entry's DN, so LDIF is
// deterministic (no random salt makes runs differ) yet no two entries share
// a salt.
func saltFor(dn string) []byte {
	sum := sha256.Sum256([]byte("ldapgate sample salt\x00" + dn))
	return sum[:8]
}

// LDIF returns the whole sample tree — the base entry, ou=people, ou=groups,
// ou=services and their entries — in LDIF for slapadd, parents before
// children. Passwords are {SSHA} hashes.
func LDIF() string {
	var b strings.Builder
	entry := func(dn string, attrs ...string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		writeAttr(&b, "dn", dn)
		for i := 0; i+1 < len(attrs); i += 2 {
			writeAttr(&b, attrs[i], attrs[i+1])
		}
	}

	entry(BaseDN,
		"objectClass", "top",
		"objectClass", "dcObject",
		"objectClass", "organization",
		"dc", "example",
		"o", "Example Corp")
	for _, ou := range []string{"people", "groups", "services"} {
		entry("ou="+ou+","+BaseDN,
			"objectClass", "top",
			"objectClass", "organizationalUnit",
			"ou", ou)
	}
	for _, p := range People {
		dn := p.DN()
		entry(dn,
			"objectClass", "top",
			"objectClass", "person",
			"objectClass", "organizationalPerson",
			"objectClass", "inetOrgPerson",
			"uid", p.UID,
			"cn", p.CN,
			"sn", p.SN,
			"mail", p.Mail,
			"userPassword", SSHA(p.Password, saltFor(dn)))
	}
	for _, g := range Groups {
		attrs := []string{
			"objectClass", "top",
			"objectClass", "groupOfNames",
			"cn", g.CN,
		}
		for _, m := range g.Members {
			attrs = append(attrs, "member", PersonDN(m))
		}
		entry(g.DN(), attrs...)
	}
	for _, s := range Services {
		dn := s.DN()
		entry(dn,
			"objectClass", "top",
			"objectClass", "organizationalRole",
			"objectClass", "simpleSecurityObject",
			"cn", s.CN,
			"description", "sample service account "+s.CN,
			"userPassword", SSHA(s.Password, saltFor(dn)))
	}
	return b.String()
}

// writeAttr writes one "attr: value" line, base64-encoding values that are
// not an LDIF SAFE-STRING (RFC 2849).
func writeAttr(b *strings.Builder, attr, value string) {
	if safeString(value) {
		b.WriteString(attr + ": " + value + "\n")
		return
	}
	b.WriteString(attr + ":: " + base64.StdEncoding.EncodeToString([]byte(value)) + "\n")
}

func safeString(s string) bool {
	if s == "" {
		return true
	}
	switch s[0] {
	case ' ', ':', '<':
		return false
	}
	if s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}
