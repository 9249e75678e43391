package duosim

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadUsersGood(t *testing.T) {
	t.Parallel()
	users, err := LoadUsers("testdata/users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 6 || users[0].Name != "alice" || !reflect.DeepEqual(users[0].Passcodes, []string{"123456", "012345"}) || users[5].Behavior != BehaviorLockedOut {
		t.Fatalf("users.yaml: %+v", users)
	}
	users, err = LoadUsers("testdata/users.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{Name: "alice", Behavior: BehaviorApprove, Passcodes: []string{"123456"}}, {Name: "bob", Behavior: BehaviorDeny}}
	if !reflect.DeepEqual(users, want) {
		t.Fatalf("users.json: %+v", users)
	}
}

func TestParseUsersForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []User
	}{
		{"empty", "", []User{}},
		{"comment only", "# nobody\n", []User{}},
		{"empty list", "[]", []User{}},
		{"users key", "users:\n  - name: x\n    behavior: bypass\n", []User{{Name: "x", Behavior: BehaviorBypass}}},
		{"default behavior", "- name: x\n", []User{{Name: "x"}}},
		{"unquoted number passcode", "- name: x\n  passcodes: [123456]\n", []User{{Name: "x", Passcodes: []string{"123456"}}}},
	}
	for _, tc := range tests {
		got, err := ParseUsers([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestLoadUsersBad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string // substrings of the error
	}{
		{"unknown behavior", "- name: alice\n  behavior: aprove\n", []string{`user #1 ("alice")`, `unknown behavior "aprove"`, "approve, deny, passcode_only"}},
		{"duplicate", "- name: alice\n- name: bob\n- name: Alice\n", []string{`user #3 ("Alice")`, "duplicate", `user #1 ("alice")`}},
		{"missing name", "- behavior: deny\n", []string{"user #1", "name is empty"}},
		{"unknown field", "- name: alice\n  behaviour: deny\n", []string{"behaviour"}},
		{"unknown top-level key", "people:\n  - name: alice\n", []string{"people"}},
		{"scalar", "alice\n", []string{"list of users"}},
		{"empty passcode", "- name: alice\n  passcodes: ['']\n", []string{"empty passcode"}},
		{"bad yaml", "- name: [alice\n", []string{"users file"}},
		{"bad json behavior", `[{"name":"alice","behavior":"maybe"}]`, []string{`unknown behavior "maybe"`}},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadUsers(path)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range append(tc.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
	if _, err := LoadUsers(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewRejectsBadUsersAndSetUsersSkips(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Users: []User{{Name: "x", Behavior: "sometimes"}}}); err == nil || !strings.Contains(err.Error(), "sometimes") {
		t.Fatalf("New with a bad behavior: %v", err)
	}
	sim := newSim(t, Options{})
	sim.SetUsers([]User{
		{Name: "ok"},
		{Name: "bad", Behavior: "sometimes"},
		{Name: "OK", Behavior: BehaviorDeny},
		{Name: ""},
	})
	got := sim.Users()
	if len(got) != 1 || got[0].Name != "ok" || got[0].Behavior != BehaviorApprove {
		t.Fatalf("Users() = %+v", got)
	}
}
