package importer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseINI(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string // "section.key" -> value
	}{
		{"plain", "[main]\ndebug=true\n", map[string]string{"main.debug": "true"}},
		{"odd spacing and colon", "[ad_client]\n  host   =   10.0.0.1  \nport:636\nsearch_dn =DC=corp,DC=example\n",
			map[string]string{"ad_client.host": "10.0.0.1", "ad_client.port": "636", "ad_client.search_dn": "DC=corp,DC=example"}},
		{"keys lowercased", "[ad_client]\nHost=a\nService_Account_Username=svc\n",
			map[string]string{"ad_client.host": "a", "ad_client.service_account_username": "svc"}},
		{"split at the first delimiter", "[ad_client]\nldap_filter = (cn=a:b)\n", map[string]string{"ad_client.ldap_filter": "(cn=a:b)"}},
		{"whole-line comments", "; top\n# top\n[main]\n  ; indented\n\t# tab\ndebug=false\n", map[string]string{"main.debug": "false"}},
		{"inline comments are part of the value", "[ad_client]\nhost=10.0.0.1 ; DC1\nport=389 # clear\n",
			map[string]string{"ad_client.host": "10.0.0.1 ; DC1", "ad_client.port": "389 # clear"}},
		{"continuation lines", "[ad_client]\nldap_filter=(&\n  (a=b)\n\n  # comment\n  (c=d))\nport=389\n",
			map[string]string{"ad_client.ldap_filter": "(&\n(a=b)\n\n(c=d))", "ad_client.port": "389"}},
		{"trailing blank lines are not part of a value", "[main]\ndebug=true\n\n\n", map[string]string{"main.debug": "true"}},
		{"empty value", "[main]\nlog_dir=\n", map[string]string{"main.log_dir": ""}},
		{"section name up to the last bracket", "[ad_client] trailing\nhost=a\n", map[string]string{"ad_client.host": "a"}},
		{"BOM and CRLF", "\xef\xbb\xbf[main]\r\ndebug=true\r\n", map[string]string{"main.debug": "true"}},
		{"section names keep their case", "[AD_Client]\nhost=a\n", map[string]string{"AD_Client.host": "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseINI([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range f.Sections {
				for _, e := range s.Entries {
					got[s.Name+"."+e.Key] = e.Value
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestParseINIErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"key before section", "debug=true\n[main]\n", "line 1: a key before the first [section]"},
		{"duplicate section", "[main]\n[main]\n", "line 2: section [main] appears twice"},
		{"duplicate key, other case", "[main]\ndebug=true\nDEBUG=false\n", "line 3: in [main]: key debug appears twice"},
		{"no delimiter", "[main]\ndebug\n", "line 2: in [main]: not a [section], a key = value or a comment"},
		{"empty section name", "[]\n", "line 1: a key before the first [section]"},
		{"no key", "[main]\n=x\n", "line 2: in [main]: a value without a key"},
		{"DEFAULT", "[DEFAULT]\ndebug=true\n", "line 1: [DEFAULT] sets keys for every section"},
		{"NUL", "[main]\ndebug=t\x00\n", "line 2: contains a NUL byte"},
		{"too large", "[main]\n" + strings.Repeat(";", MaxFileSize), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseINI([]byte(tc.in))
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a SyntaxError with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseINI: any bytes parse or fail with a SyntaxError, never panic,
// and what parses keeps the parser's promises (lowercase keys, no key
// twice in a section, no section twice).
func FuzzParseINI(f *testing.F) {
	for _, seed := range []string{
		"[main]\ndebug=true\n",
		"[ad_client]\nhost=a ; b\n  cont\n\n  more\n[ldap_server_auto]\nexempt_ou_1: OU=x\n",
		"\xef\xbb\xbf[x]\r\nA = B\r\n",
		"[DEFAULT]\n", "[]\n", "=\n", "[a]b]\nk:v=w\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ini, err := ParseINI(data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		names := map[string]bool{}
		for _, s := range ini.Sections {
			if names[s.Name] {
				t.Fatalf("section %q twice", s.Name)
			}
			names[s.Name] = true
			keys := map[string]bool{}
			for _, e := range s.Entries {
				if e.Key != strings.ToLower(e.Key) || e.Key == "" || keys[e.Key] {
					t.Fatalf("bad key %q in [%s]", e.Key, s.Name)
				}
				keys[e.Key] = true
			}
		}
		// The converter never panics on what parses either.
		_, _ = Import(data, Options{Source: "authproxy.cfg"})
	})
}
