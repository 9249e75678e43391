package authlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

// TestReopenAfterRename: logrotate renames the file; after Reopen new
// records land in a new file at the path, and none in the renamed one.
func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Notice("reload", "", "before")
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	l.Notice("reload", "", "after rename, before reopen") // still the old file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Notice("reload", "", "after reopen")
	if got := lines(t, rotated); got != 2 {
		t.Errorf("rotated file has %d lines, want 2", got)
	}
	if got := lines(t, path); got != 1 {
		t.Errorf("new file has %d lines, want 1", got)
	}
}

// TestReopenFailureKeepsOldFile: when the path cannot be opened, Reopen
// says why and the log keeps writing to the file it had.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "auth.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(filepath.Dir(path), moved); err != nil {
		t.Fatal(err)
	}
	// a file where the directory was: the path cannot be opened
	if err := os.WriteFile(filepath.Dir(path), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen succeeded on a path that cannot be opened")
	}
	l.Notice("reload", "", "still written")
	if got := lines(t, filepath.Join(moved, "auth.log")); got != 1 {
		t.Errorf("old file has %d lines, want 1", got)
	}
	if err := l.Err(); err != nil {
		t.Errorf("write error after a failed reopen: %v", err)
	}
}

// TestReopenWithoutFile: stdout, discard and New have nothing to reopen.
func TestReopenWithoutFile(t *testing.T) {
	for _, p := range []string{"", "-"} {
		l, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Reopen(); err != nil {
			t.Errorf("Reopen(%q): %v", p, err)
		}
	}
}
