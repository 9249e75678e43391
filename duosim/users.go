package duosim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Behavior is how a simulated user's second factor turns out.
type Behavior string

const (
	// BehaviorApprove: preauth "auth"; push and phone are approved (after
	// Options.PushDelay); listed passcodes work. The empty Behavior means this.
	BehaviorApprove Behavior = "approve"
	// BehaviorDeny: preauth "auth"; the user denies push and phone; listed
	// passcodes still work.
	BehaviorDeny Behavior = "deny"
	// BehaviorPasscodeOnly: preauth "auth" with only a hardware token; push,
	// phone and sms are denied at once with a clear status_msg; listed
	// passcodes work.
	BehaviorPasscodeOnly Behavior = "passcode_only"
	// BehaviorNotEnrolled: preauth "enroll"; auth is denied.
	BehaviorNotEnrolled Behavior = "not_enrolled"
	// BehaviorBypass: preauth "allow"; auth is allowed with status "bypass".
	BehaviorBypass Behavior = "bypass"
	// BehaviorLockedOut: preauth "deny"; auth is denied with status "locked_out".
	BehaviorLockedOut Behavior = "locked_out"
	// BehaviorFraud: preauth "auth"; the user reports push and phone as
	// fraud (auth result "deny", status "fraud"); listed passcodes work.
	BehaviorFraud Behavior = "fraud"
)

var behaviors = []Behavior{BehaviorApprove, BehaviorDeny, BehaviorPasscodeOnly, BehaviorNotEnrolled, BehaviorBypass, BehaviorLockedOut, BehaviorFraud}

// Valid reports whether b is one of the Behavior constants or empty (approve).
func (b Behavior) Valid() bool {
	return b == "" || slices.Contains(behaviors, b)
}

func (b Behavior) orDefault() Behavior {
	if b == "" {
		return BehaviorApprove
	}
	return b
}

// User is one simulated Duo user.
type User struct {
	Name     string   `yaml:"name" json:"name"`
	Behavior Behavior `yaml:"behavior" json:"behavior"`
	// Passcodes are accepted for factor=passcode, any number of times.
	Passcodes []string `yaml:"passcodes" json:"passcodes"`
}

// ValidateUsers reports the first problem in users: an empty name, an
// unknown behavior, an empty passcode, or two users whose names differ only
// in case (names are matched case-insensitively).
func ValidateUsers(users []User) error {
	seen := make(map[string]int, len(users))
	for i, u := range users {
		where := fmt.Sprintf("user #%d", i+1)
		if u.Name != "" {
			where += fmt.Sprintf(" (%q)", u.Name)
		}
		if strings.TrimSpace(u.Name) == "" {
			return fmt.Errorf("%s: name is empty", where)
		}
		if !u.Behavior.Valid() {
			return fmt.Errorf("%s: unknown behavior %q (want one of %s)", where, u.Behavior, behaviorList())
		}
		for _, p := range u.Passcodes {
			if p == "" {
				return fmt.Errorf("%s: empty passcode", where)
			}
		}
		key := strings.ToLower(u.Name)
		if j, dup := seen[key]; dup {
			return fmt.Errorf("%s: duplicate name, already used by user #%d (%q); names are case-insensitive", where, j+1, users[j].Name)
		}
		seen[key] = i
	}
	return nil
}

func behaviorList() string {
	s := make([]string, len(behaviors))
	for i, b := range behaviors {
		s[i] = string(b)
	}
	return strings.Join(s, ", ")
}

// LoadUsers reads a YAML or JSON users file: either a list of users or a
// mapping with a "users" list, e.g.
//
//	users:
//	  - name: alice
//	    behavior: approve
//	    passcodes: ["123456", "012345"]   # kept as written, reusable
//	  - name: bob
//	    behavior: deny
//
// Unknown fields, unknown behaviors and duplicate names are errors. An empty
// file is an empty list.
func LoadUsers(path string) ([]User, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("duosim: users file: %w", err)
	}
	users, err := ParseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("duosim: users file %s: %w", path, err)
	}
	return users, nil
}

// ParseUsers is LoadUsers on bytes; the control API's PUT /users uses it.
func ParseUsers(data []byte) ([]User, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return []User{}, nil
	}
	var users []User
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch root.Content[0].Kind {
	case yaml.SequenceNode:
		err := dec.Decode(&users)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	case yaml.MappingNode:
		var doc struct {
			Users []User `yaml:"users"`
		}
		err := dec.Decode(&doc)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		users = doc.Users
	default:
		return nil, errors.New(`want a list of users or a mapping with a "users" list`)
	}
	if users == nil {
		users = []User{}
	}
	if err := ValidateUsers(users); err != nil {
		return nil, err
	}
	return users, nil
}
