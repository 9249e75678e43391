package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors every Problem wraps, so callers and tests can use errors.Is.
var (
	ErrRequired   = errors.New("required")
	ErrInvalid    = errors.New("invalid")
	ErrUnknownKey = errors.New("unknown key")
)

// Problem is one thing wrong with the configuration, at one key path.
type Problem struct {
	Path string // e.g. servers[1].failmode
	Msg  string // e.g. must be safe or secure
	Err  error  // one of the sentinels
}

func (p Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

func (p Problem) Unwrap() error { return p.Err }

// Problems collects every problem of a configuration. As an error, it
// prints one problem per line and unwraps to each of them.
type Problems []Problem

func (ps *Problems) add(path string, kind error, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Err: kind})
}

// has reports whether a problem was recorded at path.
func (ps Problems) has(path string) bool {
	for _, p := range ps {
		if p.Path == path {
			return true
		}
	}
	return false
}

// Err returns nil when there is no problem, else a *ValidationError.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// ValidationError is what Load returns for a configuration with problems.
type ValidationError struct {
	Problems Problems
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return fmt.Sprintf("%d configuration problem(s):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Unwrap exposes every problem to errors.Is and errors.As.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}
