package breakglass

import (
	"crypto/rand"
	"encoding/base32"
	"io"
	"strings"
)

// Alphabet is Crockford's base32: digits and capitals without I, L, O and
// U, so that no two symbols look alike. Typed codes are read leniently:
// lower case is upper case, O is 0, I and L are 1, and dashes and spaces
// between groups are ignored.
const Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

const (
	// CodeLen is the symbols of a code: 24 of 32, 120 random bits.
	CodeLen = 24
	// codeBytes is CodeLen*5/8: the random bytes behind a code.
	codeBytes = 15
	// groupLen is how codes are printed: six groups of four.
	groupLen = 4
	// maxTyped bounds what ParseCode looks at: a code with a separator
	// around every symbol, and no more.
	maxTyped = 2 * CodeLen
)

var encoding = base32.NewEncoding(Alphabet).WithPadding(base32.NoPadding)

// newCode draws a code from r (crypto/rand in use) in canonical form.
func newCode(r io.Reader) (string, error) {
	var b [codeBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return encoding.EncodeToString(b[:]), nil
}

// generate draws a code from crypto/rand.
func generate() (string, error) { return newCode(rand.Reader) }

// Format prints a canonical code in groups of four for typing:
// "7K3M-Q9TZ-...".
func Format(code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 && i%groupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ParseCode reads a typed code: it reports whether s is one and returns it
// in canonical form (CodeLen symbols of Alphabet, no separators). Anything
// else — other symbols, the wrong length, separators only — is not a code.
func ParseCode(s string) (string, bool) {
	if len(s) > maxTyped {
		return "", false
	}
	out := make([]byte, 0, CodeLen)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if strings.IndexByte(Alphabet, c) < 0 || len(out) == CodeLen {
			return "", false
		}
		out = append(out, c)
	}
	if len(out) != CodeLen {
		return "", false
	}
	return string(out), true
}
