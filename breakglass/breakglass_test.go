package breakglass

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/store"
)

// Cheap costs for tests; the real ones are config's.
var (
	testParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}
	testMax    = Params{Time: 4, MemoryKiB: 1024, Threads: 2}
)

const (
	alice = "uid=alice,ou=people,dc=example,dc=com"
	bob   = "uid=bob,ou=people,dc=example,dc=com"
	eve   = "uid=eve,ou=people,dc=example,dc=com"
)

type fixture struct {
	codes, used string
	st          *store.Local
	k           *Keeper
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{codes: filepath.Join(dir, "codes.json"), used: filepath.Join(dir, "used")}
	f.open(t)
	return f
}

// open (re)starts the store and the keeper on the same files: a restart.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	if f.st != nil {
		f.st.Close()
	}
	st, err := store.Open(store.Options{MaxKeys: 64, UsedFile: f.used})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	// Listed with another spelling: DNs compare as DNs.
	k, err := New(Options{Section: "vpn", Users: []string{"UID=Alice, OU=People,DC=example,DC=com", bob},
		CodesFile: f.codes, MaxParams: testMax, Checks: 2}, st)
	if err != nil {
		t.Fatal(err)
	}
	f.k = k
}

func (f *fixture) issue(t *testing.T, section, user string, n int) []string {
	t.Helper()
	codes, err := Issue(f.codes, section, user, n, testParams, testMax, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

func (f *fixture) use(t *testing.T, user, code string) bool {
	t.Helper()
	ok, err := f.k.Use(context.Background(), user, code)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestCodeWorksOnceAcrossRestart: a code lets its user in once; it is
// refused again, and still after a restart (store and keeper reopened),
// while the user's other codes keep working.
func TestCodeWorksOnceAcrossRestart(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 3)
	if !f.use(t, alice, codes[0]) {
		t.Fatal("a fresh code was refused")
	}
	if f.use(t, alice, codes[0]) {
		t.Fatal("a used code was accepted twice")
	}
	f.open(t)
	if f.use(t, alice, codes[0]) {
		t.Fatal("a used code was accepted after a restart")
	}
	if !f.use(t, alice, strings.ToLower(codes[1])) {
		t.Fatal("another code of the same user was refused (typed in lower case)")
	}
	if sum, _ := List(f.codes, testMax); len(sum) != 1 || sum[0].Remaining != 1 {
		t.Fatalf("list after two uses: %+v, want 1 remaining", sum)
	}
}

// TestUsedCodeRefusedWithoutFileRemoval: the record of uses alone refuses
// a used code, even if its hash is put back into the codes file (a backup
// restored, a removal that failed).
func TestUsedCodeRefusedWithoutFileRemoval(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 1)
	before, err := os.ReadFile(f.codes)
	if err != nil {
		t.Fatal(err)
	}
	if !f.use(t, alice, codes[0]) {
		t.Fatal("a fresh code was refused")
	}
	if err := os.WriteFile(f.codes, before, 0o600); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	if f.use(t, alice, codes[0]) {
		t.Fatal("a used code was accepted once its hash came back")
	}
}

// TestCodeRefusedForOthers: a code works only for its own user and its own
// section; users not listed get nothing, whatever they type.
func TestCodeRefusedForOthers(t *testing.T) {
	f := newFixture(t)
	aliceCodes := f.issue(t, "vpn", alice, 1)
	bobCodes := f.issue(t, "vpn", bob, 1)
	other := f.issue(t, "wiki", alice, 1)
	eveCodes := f.issue(t, "vpn", eve, 1) // in the file, but eve is not listed
	for _, c := range []struct{ user, code string }{
		{bob, aliceCodes[0]},
		{alice, bobCodes[0]},
		{alice, other[0]},
		{eve, eveCodes[0]},
		{eve, aliceCodes[0]},
		{"not a dn", aliceCodes[0]},
		{alice, "0000-0000-0000-0000-0000-0000"},
		{alice, "short"},
	} {
		if f.use(t, c.user, c.code) {
			t.Errorf("%s was let in with %s", c.user, c.code)
		}
	}
	if !f.use(t, alice, aliceCodes[0]) || !f.use(t, bob, bobCodes[0]) {
		t.Fatal("the refusals consumed the codes")
	}
}

// TestIssueListRevoke: issue prints distinct well-formed codes; the file
// (mode 0600) and list never show one; issuing again replaces the user's
// codes; revoke removes one user's or all.
func TestIssueListRevoke(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 10)
	seen := map[string]bool{}
	for _, c := range codes {
		canon, ok := ParseCode(c)
		if !ok || Format(canon) != c || len(c) != CodeLen+CodeLen/groupLen-1 {
			t.Fatalf("code %q is not well formed", c)
		}
		if seen[c] {
			t.Fatalf("duplicate code %q", c)
		}
		seen[c] = true
	}
	data, err := os.ReadFile(f.codes)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		canon, _ := ParseCode(c)
		if bytes.Contains(data, []byte(canon)) || bytes.Contains(data, []byte(c)) {
			t.Fatalf("the codes file holds code %s in clear", c)
		}
	}
	fi, _ := os.Stat(f.codes)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("codes file mode %v, want 0600", fi.Mode().Perm())
	}
	f.issue(t, "vpn", bob, 2)
	again := f.issue(t, "vpn", alice, 4)
	if f.use(t, alice, codes[0]) {
		t.Fatal("a code replaced by a new issue still works")
	}
	sum, err := List(f.codes, testMax)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 2 || sum[0].User != alice || sum[0].Remaining != 4 || sum[1].Remaining != 2 || sum[0].Issued.IsZero() {
		t.Fatalf("list: %+v", sum)
	}
	if n, err := Revoke(f.codes, "vpn", "uid=BOB,ou=people,dc=example,dc=com", testMax); err != nil || n != 2 {
		t.Fatalf("revoke bob: %d, %v", n, err)
	}
	if n, err := Revoke(f.codes, "vpn", "", testMax); err != nil || n != 4 {
		t.Fatalf("revoke all: %d, %v", n, err)
	}
	if f.use(t, alice, again[0]) {
		t.Fatal("a revoked code works")
	}
	if entries, _ := os.ReadDir(filepath.Dir(f.codes)); len(entries) != 3 { // codes, lock, used
		t.Fatalf("left behind: %v", entries)
	}
}

// TestCodesIssuedWhileRunning: a keeper already running sees codes issued
// after it started, without being rebuilt.
func TestCodesIssuedWhileRunning(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 1)
	if !f.use(t, alice, codes[0]) {
		t.Fatal("refused a code issued after the keeper started")
	}
}

// TestConcurrentUseOfOneCode: of simultaneous binds with one code, one
// gets in.
func TestConcurrentUseOfOneCode(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 2)
	var in atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := f.k.Use(context.Background(), alice, codes[0])
			if err != nil {
				t.Error(err)
			}
			if ok {
				in.Add(1)
			}
		})
	}
	wg.Wait()
	if in.Load() != 1 {
		t.Fatalf("%d binds got in with one code", in.Load())
	}
}

// TestInsecureOrHostileFile: a codes file others can write, or one asking
// for ruinous argon2id costs, is an error, never a silent "no codes".
func TestInsecureOrHostileFile(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 1)
	if err := os.Chmod(f.codes, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := f.k.Use(context.Background(), alice, codes[0]); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("world-writable file: %v, want ErrInsecureFile", err)
	}
	os.Chmod(f.codes, 0o600)
	data, _ := os.ReadFile(f.codes)
	data = bytes.Replace(data, []byte(`"memory_kib": 64`), []byte(`"memory_kib": 4194304`), 1)
	os.WriteFile(f.codes, data, 0o600)
	if _, err := f.k.Use(context.Background(), alice, codes[0]); err == nil {
		t.Fatal("a code asking for 4 GiB was hashed")
	}
	if _, err := Issue(f.codes, "vpn", alice, 1, Params{Time: 9, MemoryKiB: 64, Threads: 1}, testMax, time.Now()); err == nil {
		t.Fatal("issued with costs above the bound")
	}
}

// TestCancelledWhileWaiting: a bind waiting for a hashing slot gives up
// with its context.
func TestCancelledWhileWaiting(t *testing.T) {
	f := newFixture(t)
	codes := f.issue(t, "vpn", alice, 1)
	for range cap(f.k.sem) {
		f.k.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ok, err := f.k.Use(ctx, alice, codes[0]); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, %v", ok, err)
	}
}
