package config

import (
	"errors"
	"strings"
	"testing"
)

// keyCase is one table row of a validation test: the keys set on minimal,
// and the problem expected at path ("" when the file must be valid), whose
// message is msg ("" for any message).
type keyCase struct {
	name string
	set  map[string]any
	path string // "" when valid
	msg  string
}

// checkKeyCases runs cases against minimal. A problem must wrap one of
// kinds; no error may print any of secrets.
func checkKeyCases(t *testing.T, cases []keyCase, kinds []error, secrets ...string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := []byte(minimal)
			for k, v := range c.set {
				doc = withKey(t, string(doc), k, v)
			}
			_, err := Parse(doc, noEnv)
			for _, s := range secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Fatalf("the error prints a secret: %v", err)
				}
			}
			if c.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			p, ok := problemAt(t, err, c.path)
			if !ok {
				t.Fatalf("no problem at %s; got %v", c.path, err)
			}
			if c.msg != "" && p.Msg != c.msg {
				t.Fatalf("%s: %q, want %q", c.path, p.Msg, c.msg)
			}
			for _, k := range kinds {
				if errors.Is(p, k) {
					return
				}
			}
			t.Fatalf("%s: %v wraps none of %v", c.path, p, kinds)
		})
	}
}
