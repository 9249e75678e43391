package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func openUsed(t *testing.T, path string) *Local {
	t.Helper()
	l, err := Open(Options{MaxKeys: 16, UsedFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestUseOnceSurvivesRestart: a key used once is refused by the same store
// and by a store reopened on the same file (a restart), and the file holds
// a hash of the key, never the key, with mode 0600.
func TestUseOnceSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "used")
	l := openUsed(t, path)
	for i, want := range []bool{true, false, false} {
		got, err := l.UseOnce(ctx, "breakglass/abc")
		if err != nil || got != want {
			t.Fatalf("use %d: got %v, %v; want %v", i, got, err, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.UseOnce(ctx, "breakglass/other"); err == nil {
		t.Fatal("a closed store accepted a use it cannot record")
	}

	l = openUsed(t, path)
	defer l.Close()
	if got, err := l.UseOnce(ctx, "breakglass/abc"); err != nil || got {
		t.Fatalf("after restart: got %v, %v; want false (already used)", got, err)
	}
	if got, err := l.UseOnce(ctx, "breakglass/def"); err != nil || !got {
		t.Fatalf("a new key after restart: got %v, %v; want true", got, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("abc")) || bytes.Contains(data, []byte("breakglass")) {
		t.Fatalf("the file holds a key in clear: %q", data)
	}
	if n := bytes.Count(data, []byte("\n")); n != 2 {
		t.Fatalf("file has %d records, want 2: %q", n, data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestUseOnceConcurrent: of many simultaneous uses of one key, exactly one
// is the first.
func TestUseOnceConcurrent(t *testing.T) {
	l := openUsed(t, filepath.Join(t.TempDir(), "used"))
	defer l.Close()
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := l.UseOnce(context.Background(), "k")
			if err != nil {
				t.Error(err)
			}
			if ok {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d uses were first, want 1", firsts.Load())
	}
}

// TestUsedFileTornLine: a record cut short by a crash is ignored, and the
// next record still lands on a line of its own and is read back.
func TestUsedFileTornLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "used")
	l := openUsed(t, path)
	if ok, err := l.UseOnce(ctx, "a"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	l.Close()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("3f2a") // a crash in the middle of the next record
	f.Close()

	l = openUsed(t, path)
	if ok, err := l.UseOnce(ctx, "b"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	l.Close()
	l = openUsed(t, path)
	defer l.Close()
	for _, k := range []string{"a", "b"} {
		if ok, err := l.UseOnce(ctx, k); err != nil || ok {
			t.Fatalf("%s: got %v, %v; want used", k, ok, err)
		}
	}
}

// TestUsedFileDamaged: a file with a line that is no record is refused at
// open, naming the line, rather than read as "nothing used".
func TestUsedFileDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "used")
	if err := os.WriteFile(path, []byte("not a hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{MaxKeys: 1, UsedFile: path}); err == nil {
		t.Fatal("a damaged file was accepted")
	}
}

// TestUsedFileLocked: a second store on the same file is refused while the
// first is open, and accepted once it is closed.
func TestUsedFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "used")
	l := openUsed(t, path)
	if _, err := Open(Options{MaxKeys: 1, UsedFile: path}); !errors.Is(err, ErrUsedFileLocked) {
		t.Fatalf("second open: %v, want ErrUsedFileLocked", err)
	}
	l.Close()
	openUsed(t, path).Close()
}

// TestUseOnceMemoryOnly: without a file, uses are still once only.
func TestUseOnceMemoryOnly(t *testing.T) {
	l := openUsed(t, "")
	defer l.Close()
	ctx := context.Background()
	if ok, _ := l.UseOnce(ctx, "k"); !ok {
		t.Fatal("first use refused")
	}
	if ok, _ := l.UseOnce(ctx, "k"); ok {
		t.Fatal("second use accepted")
	}
}

// TestUseOnceCancelled: a cancelled context records nothing.
func TestUseOnceCancelled(t *testing.T) {
	l := openUsed(t, "")
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := l.UseOnce(ctx, "k"); ok || err == nil {
		t.Fatalf("got %v, %v", ok, err)
	}
	if ok, _ := l.UseOnce(context.Background(), "k"); !ok {
		t.Fatal("the cancelled use was recorded")
	}
}
