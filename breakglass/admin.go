package breakglass

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ldapgate/ldapgate/internal/dn"
)

// Issue makes count new codes for user in section and writes their hashes
// to the codes file at path, replacing the user's earlier codes in that
// section. It returns the codes, formatted for typing: the only time they
// exist outside the user's hands.
func Issue(path, section, user string, count int, p, max Params, now time.Time) ([]string, error) {
	d, err := dn.Parse(user)
	if err != nil {
		return nil, fmt.Errorf("breakglass: user: %w", err)
	}
	if count < 1 {
		return nil, errors.New("breakglass: count must be at least 1")
	}
	if err := p.within(max); err != nil {
		return nil, fmt.Errorf("breakglass: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	codes := make([]string, 0, count)
	entries := make([]entry, 0, count)
	seen := map[string]bool{}
	for len(codes) < count {
		c, err := generate()
		if err != nil {
			return nil, err
		}
		if seen[c] { // 120 bits: never, but a duplicate would be one code
			continue
		}
		seen[c] = true
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		entries = append(entries, entry{ID: hex.EncodeToString(id), Section: section, User: d.String(),
			Issued: now.UTC().Truncate(time.Second), KDF: kdfArgon2id, Params: p, Salt: salt, Hash: p.hash(c, salt)})
		codes = append(codes, Format(c))
	}
	err = update(path, max, func(cf *file) error {
		cf.Codes = slices.DeleteFunc(cf.Codes, func(e entry) bool { return e.Section == section && sameUser(e.User, d) })
		cf.Codes = append(cf.Codes, entries...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// Summary is what `list` shows of one user's codes: never a code or hash.
type Summary struct {
	Section   string
	User      string
	Remaining int
	// Issued is when the newest of the codes was issued.
	Issued time.Time
}

// List summarises the codes file, one line per section and user, sorted.
func List(path string, max Params) ([]Summary, error) {
	cf, err := load(path, max)
	if err != nil {
		return nil, err
	}
	by := map[[2]string]*Summary{}
	for _, e := range cf.Codes {
		k := [2]string{e.Section, e.User}
		s := by[k]
		if s == nil {
			s = &Summary{Section: e.Section, User: e.User}
			by[k] = s
		}
		s.Remaining++
		if e.Issued.After(s.Issued) {
			s.Issued = e.Issued
		}
	}
	out := make([]Summary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Summary) int {
		return cmp.Or(strings.Compare(a.Section, b.Section), strings.Compare(a.User, b.User))
	})
	return out, nil
}

// Revoke removes the codes of user in section, or of every user of the
// section when user is "", and reports how many it removed.
func Revoke(path, section, user string, max Params) (int, error) {
	var d dn.DN
	if user != "" {
		var err error
		if d, err = dn.Parse(user); err != nil {
			return 0, fmt.Errorf("breakglass: user: %w", err)
		}
	}
	n := 0
	err := update(path, max, func(cf *file) error {
		before := len(cf.Codes)
		cf.Codes = slices.DeleteFunc(cf.Codes, func(e entry) bool {
			return e.Section == section && (user == "" || sameUser(e.User, d))
		})
		n = before - len(cf.Codes)
		return nil
	})
	return n, err
}

func sameUser(stored string, d dn.DN) bool {
	s, err := dn.Parse(stored)
	return err == nil && s.Equal(d)
}
