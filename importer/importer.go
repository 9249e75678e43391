// Package importer turns a Duo Authentication Proxy configuration
// (authproxy.cfg) into an ldapgate configuration: `ldapgate import`.
//
// It reads the file as the Duo proxy's parser does (ini.go), converts the
// [ldap_server_auto*] sections and the [ad_client*] sections they use, and
// reports every key it could not map and every behaviour that differs. The
// Duo proxy's lax defaults (failmode safe, exempt_primary_bind true) are
// carried over explicitly, so that the imported file behaves as the Duo
// proxy did until the administrator changes it, and are flagged. The result
// is then read back with config.Parse and audited as `ldapgate check` does.
package importer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ldapgate/ldapgate/config"
)

// SecretMode is where the imported secrets (skey, service_account_password)
// go. The default writes them nowhere: the output names the environment
// variables to set.
type SecretMode int

const (
	// SecretsEnv leaves the secrets out of the output; the report lists the
	// LDAPGATE_* variables (config.EnvName) that must carry them.
	SecretsEnv SecretMode = iota
	// SecretsFiles writes each secret to a file of its own (mode 0600) in
	// Options.SecretsDir and points a *_file key at it.
	SecretsFiles
	// SecretsInline writes the secrets into the YAML (--with-secrets).
	SecretsInline
)

// Options says how to import.
type Options struct {
	// Source is authproxy.cfg's path: it names the file in the output, and
	// relative paths in it are resolved against its directory (the Duo
	// proxy's conf directory).
	Source     string
	Secrets    SecretMode
	SecretsDir string // SecretsFiles: the directory of the secret files
}

// SecretFile is a secret the caller must write (mode 0600) before the
// configuration is used.
type SecretFile struct {
	Path  string
	Value config.Secret
	From  string // "[section] key"
}

// Result is what an import produced. Report is always set; YAML and
// Config only when the import succeeded.
type Result struct {
	YAML   []byte         // the ldapgate configuration (stdout)
	Report []byte         // what could not be mapped, what differs, the audit (stderr)
	Files  []SecretFile   // SecretsFiles: the files to write
	Config *config.Config // the YAML as config.Parse read it
}

// Problem is one reason an import failed, at a place in authproxy.cfg
// ("[ad_client] host", "line 12") and, when the generated configuration
// refused it, at its ldapgate key.
type Problem struct {
	Where string // "[section] key", or "line N"
	Key   string // the ldapgate key path, when config refused the value
	Msg   string
}

func (p Problem) String() string {
	switch {
	case p.Key != "" && p.Where != "":
		return fmt.Sprintf("%s (%s): %s", p.Where, p.Key, p.Msg)
	case p.Key != "":
		return p.Key + ": " + p.Msg
	}
	return p.Where + ": " + p.Msg
}

// Error is an import that failed: the file does not parse, a value
// cannot be converted, or the generated configuration is not valid.
type Error struct {
	Problems []Problem
	// Config is config.Parse's error when the generated file was refused.
	Config error
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("cannot import: %d problem(s):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Unwrap exposes config's *ValidationError, when there is one.
func (e *Error) Unwrap() error { return e.Config }

// Import converts authproxy.cfg (data) into an ldapgate configuration. The
// Result's Report is set whether or not it succeeds; the error is an
// *Error.
func Import(data []byte, opts Options) (*Result, error) {
	c := newConverter(opts)
	ini, err := ParseINI(data)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			c.problems = append(c.problems, Problem{Where: fmt.Sprintf("line %d", se.Line), Msg: se.Msg})
		} else {
			c.problems = append(c.problems, Problem{Msg: err.Error()})
		}
		return c.fail()
	}
	c.convert(ini)
	if len(c.problems) > 0 {
		return c.fail()
	}
	out, err := c.marshal()
	if err != nil {
		c.problems = append(c.problems, Problem{Where: "output", Msg: err.Error()})
		return c.fail()
	}
	cfg, err := config.Parse(out, c.lookupSecret)
	if err != nil {
		var ve *config.ValidationError
		if !errors.As(err, &ve) {
			c.problems = append(c.problems, Problem{Where: "output", Msg: err.Error()})
			return c.fail()
		}
		for _, p := range ve.Problems {
			c.problems = append(c.problems, Problem{Where: c.source(p.Path), Key: p.Path, Msg: p.Msg})
		}
		res, ierr := c.fail()
		ierr.(*Error).Config = err
		return res, ierr
	}
	findings := cfg.Audit()
	var rep bytes.Buffer
	c.writeNotes(&rep)
	for _, f := range findings {
		fmt.Fprintf(&rep, "finding: %s\n", f)
	}
	fmt.Fprintf(&rep, "ok: the imported configuration is valid (%d directories, %d server sections, %d findings); review it, then run: ldapgate check --config FILE\n",
		len(cfg.Directories), len(cfg.Servers), len(findings))
	return &Result{YAML: out, Report: rep.Bytes(), Files: c.files, Config: cfg}, nil
}

// fail is the Result and *Error of an import with problems.
func (c *converter) fail() (*Result, error) {
	var rep bytes.Buffer
	c.writeNotes(&rep)
	for _, p := range c.problems {
		fmt.Fprintf(&rep, "error: %s\n", p)
	}
	fmt.Fprintf(&rep, "failed: nothing was written; fix the %d error(s) above\n", len(c.problems))
	return &Result{Report: rep.Bytes()}, &Error{Problems: c.problems}
}

// lookupSecret resolves, for the check of the generated file, the
// LDAPGATE_* variables of the secrets it imported (and nothing of the
// caller's environment, so the check is of the file alone).
func (c *converter) lookupSecret(name string) (string, bool) {
	v, ok := c.secrets[name]
	return v, ok
}

// source names the authproxy.cfg key behind an ldapgate key path: the
// path itself or its nearest parent that was recorded.
func (c *converter) source(path string) string {
	for p := path; p != ""; {
		if s, ok := c.prov[p]; ok {
			return s
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}
