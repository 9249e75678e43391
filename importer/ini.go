package importer

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
)

// MaxFileSize bounds the authproxy.cfg the importer reads; real ones are a
// few kilobytes.
const MaxFileSize = 1 << 20

// INI is authproxy.cfg as the Duo Authentication Proxy's parser (Python's
// configparser with its defaults) reads it:
//
//   - "[name]" starts a section; the name is what lies between the '[' and
//     the last ']' of the line, and is case-sensitive;
//   - "key = value" or "key: value", split at the first '=' or ':', both
//     sides trimmed; keys are case-insensitive (lowercased);
//   - a line whose first non-blank character is ';' or '#' is a comment.
//     Comments are whole lines only: "host = 10.0.0.1 ; DC1" has the value
//     "10.0.0.1 ; DC1", as the Duo proxy reads it;
//   - a line indented deeper than its key continues the value (joined with
//     a newline), blank lines inside such a value included;
//   - a key or section given twice, a key before any section, or a line
//     that is neither is an error.
type INI struct {
	Sections []*Section
}

// Section is one [name] of the file, its entries in file order.
type Section struct {
	Name    string
	Line    int
	Entries []*Entry
}

// Entry is one key of a section.
type Entry struct {
	Key   string // lowercased
	Value string
	Line  int
}

// Section returns the section with exactly this name, or nil.
func (f *INI) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Get returns the entry for key (lowercase), or nil.
func (s *Section) Get(key string) *Entry {
	for _, e := range s.Entries {
		if e.Key == key {
			return e
		}
	}
	return nil
}

// SyntaxError is a line of authproxy.cfg the Duo proxy's parser refuses too.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseINI reads authproxy.cfg. A UTF-8 byte order mark (Notepad's) and
// CRLF line ends are accepted.
func ParseINI(data []byte) (*INI, error) {
	if len(data) > MaxFileSize {
		return nil, &SyntaxError{Line: 0, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	f := &INI{}
	var (
		cur    *Section
		entry  *Entry   // the entry a continuation line extends
		cont   []string // its value lines
		indent = -1     // the indentation of entry's line
		blanks int      // blank lines seen inside entry's value
	)
	flush := func() {
		if entry != nil {
			entry.Value = strings.TrimRightFunc(strings.Join(cont, "\n"), unicode.IsSpace)
		}
		entry, cont, blanks = nil, nil, 0
	}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSuffix(raw, "\r")
		if strings.ContainsRune(line, 0) {
			return nil, &SyntaxError{Line: n, Msg: "contains a NUL byte"}
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
			continue // a comment; it does not end a value
		}
		if trimmed == "" {
			if entry != nil {
				blanks++
			}
			continue
		}
		level := len(line) - len(strings.TrimLeftFunc(line, unicode.IsSpace))
		if entry != nil && level > indent {
			for ; blanks > 0; blanks-- {
				cont = append(cont, "")
			}
			cont = append(cont, trimmed)
			continue
		}
		flush()
		indent = level
		if strings.HasPrefix(trimmed, "[") {
			if end := strings.LastIndexByte(trimmed, ']'); end > 1 {
				name := trimmed[1:end]
				if name == "DEFAULT" {
					return nil, &SyntaxError{Line: n, Msg: "[DEFAULT] sets keys for every section; ldapgate import does not support it: move its keys into the sections that use them"}
				}
				if f.Section(name) != nil {
					return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf("section [%s] appears twice", name)}
				}
				cur = &Section{Name: name, Line: n}
				f.Sections = append(f.Sections, cur)
				continue
			}
		}
		if cur == nil {
			return nil, &SyntaxError{Line: n, Msg: "a key before the first [section]"}
		}
		at := strings.IndexAny(trimmed, "=:")
		if at < 0 {
			return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf("in [%s]: not a [section], a key = value or a comment", cur.Name)}
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:at]))
		if key == "" {
			return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf("in [%s]: a value without a key", cur.Name)}
		}
		if cur.Get(key) != nil {
			return nil, &SyntaxError{Line: n, Msg: fmt.Sprintf("in [%s]: key %s appears twice", cur.Name, key)}
		}
		entry = &Entry{Key: key, Line: n}
		cont = []string{strings.TrimSpace(trimmed[at+1:])}
		cur.Entries = append(cur.Entries, entry)
	}
	flush()
	return f, nil
}
