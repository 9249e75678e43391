package deploy

import (
	"strings"
	"testing"
)

// TestLicense: ldapgate is MIT, by the ldapgate authors; the vendored gldap
// keeps its own license, and NOTICE points to it.
func TestLicense(t *testing.T) {
	root := repoRoot(t)
	license := readFile(t, root, "LICENSE")
	for _, want := range []string{"MIT License", "Copyright (c) 2026 the ldapgate authors", "Permission is hereby granted, free of charge", "NOTICE"} {
		if !strings.Contains(license, want) {
			t.Errorf("LICENSE does not say %q", want)
		}
	}
	gldap := readFile(t, root, "third_party/gldap/LICENSE")
	for _, want := range []string{"Copyright (c) 2022 Jim Lambert", "MIT License"} {
		if !strings.Contains(gldap, want) {
			t.Errorf("third_party/gldap/LICENSE does not say %q: gldap's own notice must stay", want)
		}
	}
	if notice := readFile(t, root, "NOTICE"); !strings.Contains(notice, "third_party/gldap/LICENSE") {
		t.Error("NOTICE does not point to third_party/gldap/LICENSE")
	}
}

// TestNoticeNamesEveryModule: every module compiled into the binary is
// named in NOTICE (its license asks for its notice to go with the binary),
// so a new dependency is noticed here.
func TestNoticeNamesEveryModule(t *testing.T) {
	root := repoRoot(t)
	notice := readFile(t, root, "NOTICE")
	out := run(t, root, []string{"CGO_ENABLED=0", "GOOS=linux"}, "go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}", "./cmd/ldapgate")
	seen := map[string]bool{}
	for _, module := range strings.Fields(out) {
		if seen[module] {
			continue
		}
		seen[module] = true
		if !strings.Contains(notice, " "+module+" ") {
			t.Errorf("NOTICE does not name %s, which the binary is built from: add it with its license and copyright", module)
		}
	}
	if len(seen) == 0 {
		t.Fatal("go list named no module")
	}
}
