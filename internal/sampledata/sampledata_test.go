package sampledata

import (
	"encoding/base64"
	"strings"
	"testing"
)

type ldifEntry struct {
	dn    string
	attrs map[string][]string
}

// parseLDIF is a small RFC 2849 content parser: enough to check LDIF() and
// independent of it (it handles folded lines and "::" values LDIF() may
// never emit).
func parseLDIF(t *testing.T, text string) []ldifEntry {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, " ") && len(lines) > 0 && lines[len(lines)-1] != "" {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	var entries []ldifEntry
	var cur *ldifEntry
	for i, l := range lines {
		if l == "" {
			cur = nil
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		attr, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("line %d %q: no colon", i+1, l)
		}
		switch {
		case strings.HasPrefix(value, ":"):
			raw, err := base64.StdEncoding.DecodeString(strings.TrimLeft(value[1:], " "))
			if err != nil {
				t.Fatalf("line %d %q: %v", i+1, l, err)
			}
			value = string(raw)
		case strings.HasPrefix(value, "<"):
			t.Fatalf("line %d %q: URL values are not expected", i+1, l)
		default:
			value = strings.TrimLeft(value, " ")
		}
		attr = strings.ToLower(attr)
		if cur == nil {
			if attr != "dn" {
				t.Fatalf("line %d %q: entry does not start with dn", i+1, l)
			}
			entries = append(entries, ldifEntry{dn: value, attrs: map[string][]string{}})
			cur = &entries[len(entries)-1]
			continue
		}
		if attr == "dn" {
			t.Fatalf("line %d %q: second dn in one entry", i+1, l)
		}
		cur.attrs[attr] = append(cur.attrs[attr], value)
	}
	return entries
}

func TestLDIF(t *testing.T) {
	text := LDIF()
	if text != LDIF() {
		t.Fatal("LDIF() is not deterministic")
	}
	entries := parseLDIF(t, text)
	want := 1 + 3 + len(People) + len(Groups) + len(Services)
	if len(entries) != want {
		t.Fatalf("got %d entries, want %d", len(entries), want)
	}

	byDN := map[string]ldifEntry{}
	for i, e := range entries {
		if e.dn == "" {
			t.Errorf("entry %d has an empty dn", i)
		}
		key := strings.ToLower(e.dn)
		if _, dup := byDN[key]; dup {
			t.Errorf("duplicate dn %q", e.dn)
		}
		if len(e.attrs["objectclass"]) == 0 {
			t.Errorf("%s: no objectClass", e.dn)
		}
		// slapadd needs parents first.
		if key != strings.ToLower(BaseDN) {
			_, parent, _ := strings.Cut(key, ",")
			if _, ok := byDN[parent]; !ok {
				t.Errorf("%s comes before its parent", e.dn)
			}
		}
		byDN[key] = e
	}

	for _, p := range People {
		e, ok := byDN[strings.ToLower(PersonDN(p.UID))]
		if !ok {
			t.Errorf("no entry for %s", p.UID)
			continue
		}
		for attr, v := range map[string]string{"uid": p.UID, "cn": p.CN, "sn": p.SN, "mail": p.Mail} {
			if got := e.attrs[attr]; len(got) != 1 || got[0] != v {
				t.Errorf("%s %s = %q, want %q", p.UID, attr, got, v)
			}
		}
		if !contains(e.attrs["objectclass"], "inetOrgPerson") {
			t.Errorf("%s is not an inetOrgPerson", p.UID)
		}
		checkPassword(t, e, p.Password)
	}
	for _, s := range Services {
		e, ok := byDN[strings.ToLower(ServiceDN(s.CN))]
		if !ok {
			t.Errorf("no entry for service %s", s.CN)
			continue
		}
		checkPassword(t, e, s.Password)
	}
	for _, g := range Groups {
		e, ok := byDN[strings.ToLower(GroupDN(g.CN))]
		if !ok {
			t.Errorf("no entry for group %s", g.CN)
			continue
		}
		if len(e.attrs["member"]) != len(g.Members) {
			t.Errorf("group %s members = %q", g.CN, e.attrs["member"])
		}
		for _, m := range e.attrs["member"] {
			if _, ok := byDN[strings.ToLower(m)]; !ok {
				t.Errorf("group %s: member %q is not an entry", g.CN, m)
			}
		}
	}
}

func checkPassword(t *testing.T, e ldifEntry, password string) {
	t.Helper()
	pw := e.attrs["userpassword"]
	if len(pw) != 1 || !strings.HasPrefix(pw[0], "{SSHA}") {
		t.Errorf("%s userPassword = %q, want one {SSHA} value", e.dn, pw)
		return
	}
	if !CheckSSHA(pw[0], password) {
		t.Errorf("%s: userPassword does not verify with the plaintext password", e.dn)
	}
	if CheckSSHA(pw[0], password+"x") {
		t.Errorf("%s: userPassword verifies with a wrong password", e.dn)
	}
}

func contains(vs []string, want string) bool {
	for _, v := range vs {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func TestSSHA(t *testing.T) {
	// Made by OpenLDAP's slappasswd -h '{SSHA}', so CheckSSHA agrees with slapd.
	slappasswd := map[string]string{
		"alice-pass":  "{SSHA}0ZSUMmHN0MOcOs5IMIl4qIX/ArO1AmUo",
		"pass,word,9": "{SSHA}kcJiAk2L+axp5ADB7Vf3IPLclKCmMP2e",
	}
	for pw, hash := range slappasswd {
		if !CheckSSHA(hash, pw) {
			t.Errorf("CheckSSHA(slappasswd hash of %q) = false", pw)
		}
		if CheckSSHA(hash, pw[:len(pw)-1]) {
			t.Errorf("CheckSSHA accepted a truncated %q", pw)
		}
	}

	// SSHA round-trips and reproduces slappasswd's hash given its salt.
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(slappasswd["alice-pass"], "{SSHA}"))
	if got := SSHA("alice-pass", raw[20:]); got != slappasswd["alice-pass"] {
		t.Errorf("SSHA with slappasswd's salt = %s, want %s", got, slappasswd["alice-pass"])
	}
	for _, bad := range []string{"", "{SSHA}", "{SSHA}!!!", "{SHA}0ZSUMmHN0MOcOs5IMIl4qIX/ArO1AmUo", "{SSHA}" + base64.StdEncoding.EncodeToString(make([]byte, 20))} {
		if CheckSSHA(bad, "alice-pass") {
			t.Errorf("CheckSSHA(%q) = true", bad)
		}
	}
}

func TestLookups(t *testing.T) {
	if p, ok := Lookup("carol"); !ok || p.DuoBehavior != DuoPasscodeOnly || len(p.Passcodes) != 2 {
		t.Errorf("Lookup(carol) = %+v, %v", p, ok)
	}
	if _, ok := Lookup("mallory"); ok {
		t.Error("Lookup(mallory) found someone")
	}
	if p, _ := Lookup("frank"); !strings.Contains(p.Password, ",") {
		t.Error("frank's password must contain the passcode delimiter")
	}
	if s, ok := LookupService("ldapgate"); !ok || s.Password != "svc-lookup-pass" {
		t.Errorf("LookupService(ldapgate) = %+v, %v", s, ok)
	}
	if got := GroupsOf("adam"); len(got) != 1 || got[0] != AdminGroup {
		t.Errorf("GroupsOf(adam) = %q", got)
	}
	if got := GroupsOf("dave"); len(got) != 0 {
		t.Errorf("GroupsOf(dave) = %q", got)
	}
	if got, want := PersonDN("alice"), "uid=alice,ou=people,dc=example,dc=com"; got != want {
		t.Errorf("PersonDN = %q, want %q", got, want)
	}
	if got, want := GroupDN("admins"), "cn=admins,ou=groups,dc=example,dc=com"; got != want {
		t.Errorf("GroupDN = %q, want %q", got, want)
	}
	if got, want := ServiceDN("app"), "cn=app,ou=services,dc=example,dc=com"; got != want {
		t.Errorf("ServiceDN = %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for _, p := range People {
		if seen[p.UID] {
			t.Errorf("duplicate uid %s", p.UID)
		}
		seen[p.UID] = true
	}
	for _, g := range Groups {
		for _, m := range g.Members {
			if !seen[m] {
				t.Errorf("group %s member %s is not a person", g.CN, m)
			}
		}
	}
}
