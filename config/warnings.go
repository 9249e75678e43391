package config

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// Warning is something a valid configuration should not do: check prints
// it, serve logs it at start, neither refuses it.
type Warning struct {
	Path string // the key, as in Problems
	Msg  string
}

func (w Warning) String() string { return w.Path + ": " + w.Msg }

// Warnings lists what is valid but unsafe: secret files that other users
// can read.
func (c *Config) Warnings() []Warning {
	var ws []Warning
	secretFile := func(path, file string) {
		if file == "" {
			return
		}
		st, err := os.Stat(file)
		if err != nil || st.Mode().Perm()&0o077 == 0 {
			return // a missing file is a Problem, not a warning
		}
		ws = append(ws, Warning{path, fmt.Sprintf("%s is readable by %s (mode %04o); chmod 600 it, owned by the user ldapgate runs as",
			file, readers(st.Mode().Perm()), st.Mode().Perm())})
	}
	for _, name := range slices.Sorted(maps.Keys(c.Directories)) {
		d := c.Directories[name]
		secretFile("directories."+name+".bind_password_file", d.BindPasswordFile)
	}
	for i, s := range c.Servers {
		if s == nil {
			continue
		}
		path := fmt.Sprintf("servers[%d]", i)
		secretFile(path+".duo.secret_key_file", s.Duo.SecretKeyFile)
		secretFile(path+".tls.key_file", s.TLS.KeyFile)
	}
	return ws
}

func readers(perm os.FileMode) string {
	var who []string
	if perm&0o070 != 0 {
		who = append(who, "its group")
	}
	if perm&0o007 != 0 {
		who = append(who, "every user")
	}
	return strings.Join(who, " and ")
}
