package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

const containerfilePath = "deploy/container/Containerfile"

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func containerfile(t *testing.T, root string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(readFile(t, root, containerfilePath), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestContainerfile checks the image definition where it can be checked
// without a container engine (there is none on the test machines): the
// builder's Go is go.mod's, the files it copies exist, it builds with the
// release's script, and the final image is distroless, non-root, without a
// HEALTHCHECK (no shell to run one), exposing health.listen's port.
func TestContainerfile(t *testing.T) {
	root := repoRoot(t)
	instrs := containerfile(t, root)
	var froms []string
	byCmd := map[string][]string{}
	for _, in := range instrs {
		byCmd[in.cmd] = append(byCmd[in.cmd], in.args)
		if in.cmd == "FROM" {
			froms = append(froms, in.args)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("%s: %d stages, want 2 (build, final): %q", containerfilePath, len(froms), froms)
	}

	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, root, "go.mod"))
	if goLine == nil {
		t.Fatal("go.mod: no go line")
	}
	if want := "golang:" + goLine[1] + "-"; !strings.Contains(froms[0], want) || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("%s: build stage %q, want %s... AS build (go.mod says go %s)", containerfilePath, froms[0], want, goLine[1])
	}
	final := froms[1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("%s: final image %q, want gcr.io/distroless/static...:nonroot", containerfilePath, final)
	}

	for _, args := range byCmd["COPY"] {
		if strings.HasPrefix(args, "--from=") {
			continue
		}
		fields := strings.Fields(args)
		for _, src := range fields[:len(fields)-1] {
			if src == "." {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("%s: COPY %s: %v", containerfilePath, src, err)
			}
		}
	}

	if got := byCmd["USER"]; len(got) != 1 || got[0] == "0" || strings.HasPrefix(got[0], "0:") || strings.HasPrefix(got[0], "root") {
		t.Errorf("%s: USER %q, want one non-root user", containerfilePath, got)
	}
	if got := byCmd["HEALTHCHECK"]; len(got) > 0 {
		t.Errorf("%s: HEALTHCHECK %q: the image has no shell to run it; probe /healthz and /readyz instead", containerfilePath, got)
	}
	exposed := strings.Fields(strings.Join(byCmd["EXPOSE"], " "))
	for _, port := range []string{"1389", "1636", "9180"} {
		if !strings.Contains(" "+strings.Join(exposed, " ")+" ", " "+port+" ") {
			t.Errorf("%s: EXPOSE %q lacks %s (README \"Container image\")", containerfilePath, exposed, port)
		}
	}
	if got := byCmd["ENTRYPOINT"]; len(got) != 1 || got[0] != `["/usr/local/bin/ldapgate"]` {
		t.Errorf("%s: ENTRYPOINT %q, want [\"/usr/local/bin/ldapgate\"] (exec form: there is no shell)", containerfilePath, got)
	}

	ignore := readFile(t, root, ".dockerignore")
	for _, entry := range []string{".git", "bin", "dist"} {
		if !strings.Contains("\n"+ignore+"\n", "\n"+entry+"\n") {
			t.Errorf(".dockerignore does not exclude %s from the build context", entry)
		}
	}
}

// TestContainerfileBuild runs the builder stage's build command as the
// image build runs it (sh -c, the build arguments in the environment,
// without git: the version comes in as VERSION) and runs the binary.
func TestContainerfileBuild(t *testing.T) {
	root := repoRoot(t)
	var build string
	for _, in := range containerfile(t, root) {
		if in.cmd == "RUN" && strings.Contains(in.args, "scripts/build-static.sh") {
			build = in.args
		}
	}
	if build == "" {
		t.Fatalf("%s: no RUN of scripts/build-static.sh (the build make release uses)", containerfilePath)
	}
	if !strings.Contains(build, " /out/ldapgate") {
		t.Fatalf("%s: the build writes %q, want /out/ldapgate (what the final stage copies)", containerfilePath, build)
	}
	out := filepath.Join(t.TempDir(), "ldapgate")
	cmd := strings.Replace(build, " /out/ldapgate", " "+out, 1)
	const version = "v9.9.9-container-test"
	run(t, root, []string{"TARGETOS=linux", "TARGETARCH=" + runtime.GOARCH, "VERSION=" + version, "PATH=" + noGitPath(t)}, "/bin/sh", "-c", cmd)
	if got, want := run(t, root, nil, out, "version"), "ldapgate "+version+"\n"; got != want {
		t.Errorf("the image's binary printed %q, want %q", got, want)
	}
	for _, p := range releasePlatforms {
		if p.arch == runtime.GOARCH {
			checkStaticELF(t, out, p.machine)
		}
	}
}

// noGitPath is a PATH that has go but not git: the image's build must
// not need git (the context leaves .git out).
func noGitPath(t *testing.T) string {
	t.Helper()
	goBin := filepath.Dir(strings.TrimSpace(run(t, ".", nil, "go", "env", "GOROOT")) + "/bin/go")
	dir := t.TempDir()
	for _, tool := range []string{"sh", "env"} {
		if err := os.Symlink("/bin/"+tool, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return goBin + ":" + dir
}
