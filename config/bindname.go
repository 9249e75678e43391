package config

import (
	"strings"

	"github.com/ldapgate/ldapgate/internal/dn"
)

// BindNameForm is how directories.NAME.bind_dn names the lookup account.
// Active Directory accepts a UPN and a down-level logon name (DOMAIN\user)
// in a simple bind as well as a DN, and the Duo Authentication Proxy names
// its service account that way; other directories need a DN.
type BindNameForm int

const (
	BindNameInvalid   BindNameForm = iota // none of the forms below
	BindNameDN                            // CN=svc,OU=Service,DC=corp,DC=example
	BindNameUPN                           // svc@corp.example.com
	BindNameDownLevel                     // CORP\svc
)

func (f BindNameForm) String() string {
	switch f {
	case BindNameDN:
		return "DN"
	case BindNameUPN:
		return "UPN"
	case BindNameDownLevel:
		return `DOMAIN\user`
	}
	return "invalid"
}

// BindNameFormOf says which form a bind_dn value has. A value that parses
// as a DN is a DN (a DN may hold an escaped '\' or an '@' in a value).
func BindNameFormOf(s string) BindNameForm {
	if s == "" || strings.TrimSpace(s) != s || strings.ContainsFunc(s, isControl) {
		return BindNameInvalid
	}
	if _, err := dn.Parse(s); err == nil {
		return BindNameDN
	}
	if user, domain, ok := strings.Cut(s, "@"); ok {
		if accountName(user, "@") && dnsName(domain) {
			return BindNameUPN
		}
		return BindNameInvalid
	}
	if domain, user, ok := strings.Cut(s, `\`); ok {
		if netbiosName(domain) && accountName(user, `\@`) {
			return BindNameDownLevel
		}
	}
	return BindNameInvalid
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// accountName: the user part of a UPN or down-level name, without the
// characters Active Directory refuses in account names (and extra).
func accountName(s, extra string) bool {
	return s != "" && len(s) <= 256 && strings.TrimSpace(s) == s && !strings.ContainsAny(s, `"/[]:;|=,+*?<>`+extra)
}

// dnsName: labels of letters, digits and '-', separated by dots.
func dnsName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// netbiosName: a NetBIOS domain name (at most 15 characters, none of
// those Windows refuses); a DNS domain name is accepted as well.
func netbiosName(s string) bool {
	if dnsName(s) {
		return true
	}
	return s != "" && len(s) <= 15 && strings.TrimSpace(s) == s && !strings.ContainsAny(s, `\/:*?"<>|,~!@#$%^&'{}() `)
}

// checkBindName records a bind_dn that is none of the forms a directory
// accepts for a simple bind.
func checkBindName(p *Problems, path, s string) {
	if BindNameFormOf(s) == BindNameInvalid {
		p.add(path, ErrInvalid, `must be a DN (CN=svc,OU=Service,DC=corp,DC=example), a UPN (svc@corp.example.com) or DOMAIN\user`)
	}
}
