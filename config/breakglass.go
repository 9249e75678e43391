package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ldapgate/ldapgate/breakglass"
)

// BreakGlass lists the users of a section who may get in with a one-time
// break-glass code while Duo is unreachable and the section would deny
// them (failmode secure, or a secure group in a safe section). Codes are
// issued with `ldapgate break-glass issue`.
type BreakGlass struct {
	// Users are DNs, compared as DNs with the entry the directory
	// authenticated.
	Users []string `mapstructure:"users"`
	// CodesFile holds the codes' hashes (mode 0600); required with users.
	CodesFile string `mapstructure:"codes_file"`
}

// Enabled reports whether the section accepts break-glass codes.
func (b BreakGlass) Enabled() bool { return len(b.Users) > 0 }

// UsedFile is where the codes' consumption is recorded: beside the codes
// file, with ".used" appended.
func (b BreakGlass) UsedFile() string { return b.CodesFile + ".used" }

func (b BreakGlass) validate(p *Problems, path string, s *Server) {
	if len(b.Users) > MaxBreakGlassUsers {
		p.add(path+".users", ErrInvalid, "%d users; at most %d", len(b.Users), MaxBreakGlassUsers)
	}
	for i, u := range b.Users {
		checkDN(p, fmt.Sprintf("%s.users[%d]", path, i), u)
	}
	if !b.Enabled() {
		return
	}
	if b.CodesFile == "" {
		p.add(path+".codes_file", ErrRequired, "is required when users are listed")
		return
	}
	if s.Failmode == "safe" && len(s.SecureGroups) == 0 {
		p.add(path, ErrInvalid, "has no effect: a failmode safe section without secure_groups already lets everyone in while Duo is unreachable")
	}
	dir := filepath.Dir(b.CodesFile)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		p.add(path+".codes_file", ErrInvalid, "directory %s does not exist", dir)
		return
	}
	for _, f := range []string{b.CodesFile, b.UsedFile()} {
		fi, err := os.Lstat(f)
		if err != nil {
			continue // created by `break-glass issue` and serve
		}
		switch {
		case !fi.Mode().IsRegular():
			p.add(path+".codes_file", ErrInvalid, "%s is not a regular file", f)
		case fi.Mode().Perm()&0o022 != 0:
			p.add(path+".codes_file", ErrInvalid, "%s is writable by group or others (mode %v): whoever can write it can let themselves in; chmod 600", f, fi.Mode().Perm())
		case f == b.CodesFile:
			// What serve reads at start: a file it would refuse fails check.
			max := breakglass.Params{Time: BreakGlassMaxKDFTime, MemoryKiB: BreakGlassMaxKDFMemoryKiB, Threads: BreakGlassMaxKDFThreads}
			if err := breakglass.CheckFile(f, max); err != nil {
				p.add(path+".codes_file", ErrInvalid, "%v", err)
			}
		}
	}
}

// checkBreakGlassFiles records sections that share a codes file: each
// section's record of uses is its own, held open by one store.
func (c *Config) checkBreakGlassFiles(p *Problems) {
	seen := map[string]int{}
	for i, s := range c.Servers {
		if s == nil || !s.BreakGlass.Enabled() || s.BreakGlass.CodesFile == "" {
			continue
		}
		f := filepath.Clean(s.BreakGlass.CodesFile)
		if j, dup := seen[f]; dup {
			p.add(fmt.Sprintf("servers[%d].break_glass.codes_file", i), ErrInvalid, "is also servers[%d].break_glass.codes_file; each section needs its own", j)
			continue
		}
		seen[f] = i
	}
}
