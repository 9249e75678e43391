package health

import (
	"fmt"
	"slices"
	"time"
)

// DirectoryURL is one URL of a section's directory in /status.
type DirectoryURL struct {
	// URL is scheme://host[:port], never a user or password.
	URL string `json:"url"`
	// Up is true while the URL serves: it answered its latest dial,
	// operation or probe and accepts the lookup account.
	Up bool `json:"up"`
	// Since is when Up took its current value.
	Since time.Time `json:"since"`
	// Checked is when the URL was last dialled, used or probed.
	Checked time.Time `json:"checked,omitzero"`
	// Error says why Up is false.
	Error string `json:"error,omitempty"`
}

// NewStatus is the /status answer at now, for a program of version started
// at started: the same structure the admin socket's "status" op returns.
func NewStatus(version string, started, now time.Time, sections []Section) Status {
	if sections == nil {
		sections = []Section{}
	}
	return Status{
		Version:       version,
		UptimeSeconds: now.Sub(started).Round(time.Millisecond).Seconds(),
		Started:       started.UTC(),
		Sections:      sections,
	}
}

// pick returns the sections named by names, in that order; all of them
// when names is nil. A name no section has is an error.
func pick(all []Section, names []string) ([]Section, error) {
	if names == nil {
		return all, nil
	}
	var picked []Section
	for _, name := range names {
		i := slices.IndexFunc(all, func(s Section) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("no server section %q", name)
		}
		picked = append(picked, all[i])
	}
	return picked, nil
}
