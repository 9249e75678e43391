package deploy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

type platform struct {
	arch    string
	machine elf.Machine
}

// releasePlatforms are the binaries make release builds, with their ELF
// machine.
var releasePlatforms = []platform{
	{"amd64", elf.EM_X86_64},
	{"arm64", elf.EM_AARCH64},
}

// TestRelease runs `make release` into a temporary DIST and checks what it
// built: every binary static, stripped, without cgo, built with -trimpath
// and the git version stamped in, for its architecture; the one this
// machine can run prints that version; SHA256SUMS lists exactly the files
// and their digests.
func TestRelease(t *testing.T) {
	root := repoRoot(t)
	version := gitVersion(t, root)
	goroot := strings.TrimSpace(run(t, root, nil, "go", "env", "GOROOT"))
	dist := t.TempDir()
	// Under make test, the outer make's flags and variables (VERSION=...
	// on its command line) would reach this make through the environment.
	for _, v := range []string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL"} {
		t.Setenv(v, "")
	}

	start := time.Now()
	run(t, root, nil, "make", "--no-print-directory", "release", "DIST="+dist)
	t.Logf("make release took %s", time.Since(start).Round(time.Millisecond))

	for _, p := range releasePlatforms {
		name := "ldapgate-" + version + "-linux-" + p.arch
		path := filepath.Join(dist, name)
		t.Run(p.arch, func(t *testing.T) {
			checkStaticELF(t, path, p.machine)
			checkBuildInfo(t, path, p.arch)
			checkContents(t, path, version, root, goroot)
			if p.arch == runtime.GOARCH {
				out := run(t, dist, nil, path, "version")
				if want := "ldapgate " + version + "\n"; out != want {
					t.Errorf("%s version printed %q, want %q", name, out, want)
				}
			}
		})
	}
	if !slices.ContainsFunc(releasePlatforms, func(p platform) bool { return p.arch == runtime.GOARCH }) {
		t.Errorf("no release binary for this machine's %s: none was run", runtime.GOARCH)
	}

	checkSums(t, dist)
	for _, doc := range []string{"LICENSE", "NOTICE"} {
		if got, want := readFile(t, dist, doc), readFile(t, root, doc); got != want {
			t.Errorf("%s in the release differs from the repository's", doc)
		}
	}
}

// checkStaticELF: a 64-bit little-endian executable for machine, with no
// program interpreter and no dynamic section (nothing to load at run time,
// so it runs on any Linux and in a scratch image), and no symbol table.
func checkStaticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: not an ELF file: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %s %s %s %s, want %s ELFCLASS64 ELFDATA2LSB ET_EXEC", path, f.Machine, f.Class, f.Data, f.Type, machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has a %s program header: not static", path, prog.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".dynsym"} {
		if f.Section(name) != nil {
			t.Errorf("%s: has a %s section: not static", path, name)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: has a symbol table: not stripped (-s)", path)
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s: has DWARF (%s): not built with -w", path, s.Name)
			break
		}
	}
}

// checkBuildInfo reads the build settings Go records in the binary.
func checkBuildInfo(t *testing.T, path, arch string) {
	t.Helper()
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: no Go build information: %v", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux", "GOARCH": arch} {
		if settings[key] != want {
			t.Errorf("%s: built with %s=%q, want %q", path, key, settings[key], want)
		}
	}
	// With -trimpath Go does not record -ldflags; the stamp is looked for in
	// the binary itself (checkContents) and by running it.
	if info.Path != "github.com/ldapgate/ldapgate/cmd/ldapgate" {
		t.Errorf("%s: main package %s, want github.com/ldapgate/ldapgate/cmd/ldapgate", path, info.Path)
	}
}

// checkContents: the binary holds the version string (the -X stamp; this
// also checks the architectures this machine cannot run) and, thanks to
// -trimpath, no path of the build machine (the checkout, GOROOT).
func checkContents(t *testing.T, path, version string, buildPaths ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(version)) {
		t.Errorf("%s: does not contain the version %q: not stamped into internal/app.version", path, version)
	}
	for _, dir := range buildPaths {
		if bytes.Contains(b, []byte(dir+"/")) {
			t.Errorf("%s: contains the build path %s: not built with -trimpath", path, dir)
		}
	}
}

// checkSums: SHA256SUMS is in sha256sum's format, names every other file of
// dist once and nothing else, and each digest is the file's. sha256sum -c
// agrees when it is installed.
func checkSums(t *testing.T, dist string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		digest, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(digest) != sha256.Size*2 || strings.ContainsAny(name, "/ ") {
			t.Fatalf("SHA256SUMS: line %q is not \"<sha256 hex>  <file>\"", sc.Text())
		}
		if listed[name] {
			t.Errorf("SHA256SUMS: %s listed twice", name)
		}
		listed[name] = true
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Errorf("SHA256SUMS lists %s: %v", name, err)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != digest {
			t.Errorf("SHA256SUMS: %s has digest %x, listed %s", name, sum, digest)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !listed[e.Name()] {
			t.Errorf("SHA256SUMS does not list %s", e.Name())
		}
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		run(t, dist, nil, "sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS")
	}
}
