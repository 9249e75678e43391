package breakglass

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseCode(t *testing.T) {
	canon := "0123456789ABCDEFGHJKMNPQ"
	for _, tt := range []struct {
		name, in string
		ok       bool
	}{
		{"canonical", canon, true},
		{"grouped", "0123-4567-89AB-CDEF-GHJK-MNPQ", true},
		{"spaces and lower case", "0123 4567 89ab cdef ghjk mnpq", true},
		{"look-alikes", "O123-4567-89AB-CDEF-GHJK-MNPQ", true},
		{"I and L are 1", "0I23-4567-89AB-CDEF-GHJK-MNPQ", true},
		{"too short", canon[:23], false},
		{"too long", canon + "R", false},
		{"U is not a symbol", "U123456789ABCDEFGHJKMNPQ", false},
		{"punctuation", "0123_4567_89AB_CDEF_GHJK_MNPQ", false},
		{"a passcode", "123456", false},
		{"empty", "", false},
		{"separators only", strings.Repeat("-", 40), false},
		{"non-ASCII", "0123456789ABCDEFGHJKMNP\u00e9", false},
		{"padded far too long", strings.Repeat(" ", 30) + canon, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseCode(tt.in)
			if ok != tt.ok || (ok && got != canon && tt.name != "look-alikes" && tt.name != "I and L are 1") {
				t.Fatalf("ParseCode(%q) = %q, %v; want ok=%v", tt.in, got, ok, tt.ok)
			}
		})
	}
	if got, _ := ParseCode("O123-4567-89AB-CDEF-GHJK-MNPQ"); got != canon {
		t.Fatalf("O read as %q", got)
	}
	if got, _ := ParseCode("0I23-4567-89AB-CDEF-GHJK-MNPQ"); got != "0123456789ABCDEFGHJKMNPQ" {
		t.Fatalf("I read as %q", got)
	}
}

func TestNewCode(t *testing.T) {
	c, err := newCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, codeBytes)))
	if err != nil || c != strings.Repeat("Z", CodeLen) {
		t.Fatalf("%q, %v", c, err)
	}
	if _, err := newCode(bytes.NewReader(nil)); err == nil {
		t.Fatal("a short read made a code")
	}
}

// FuzzParseCode: any input either is no code, or reads as a canonical
// code that reads as itself again, printed or not; never a panic.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"0123-4567-89AB-CDEF-GHJK-MNPQ", "o1il-....", "", "\xff", strings.Repeat("Z", 24)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCode(s)
		if !ok {
			if c != "" {
				t.Fatalf("no code but %q", c)
			}
			return
		}
		if len(c) != CodeLen || strings.Trim(c, Alphabet) != "" {
			t.Fatalf("%q read as non-canonical %q", s, c)
		}
		for _, again := range []string{c, Format(c), strings.ToLower(Format(c))} {
			if d, ok := ParseCode(again); !ok || d != c {
				t.Fatalf("%q does not read back as %q (got %q)", again, c, d)
			}
		}
	})
}
