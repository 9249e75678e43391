package primaryonly

import (
	"testing"
	"time"

	"github.com/ldapgate/ldapgate/failmode"
)

// TestSetSections: a reload keeps primary-only on for the sections that
// still exist and are still safe, and switches it off, with an event
// saying why, for a section removed or made secure.
func TestSetSections(t *testing.T) {
	var events []Event
	sw := New(map[string]failmode.Mode{"keep": failmode.Safe, "gone": failmode.Safe, "hardened": failmode.Safe, "other": failmode.Secure},
		nil, func(e Event) { events = append(events, e) })
	if _, err := sw.Enable(nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	until := sw.Until("keep")
	events = nil
	sw.SetSections(map[string]failmode.Mode{"keep": failmode.Safe, "hardened": failmode.Secure, "other": failmode.Secure, "new": failmode.Safe})
	if !sw.Active("keep") || !sw.Until("keep").Equal(until) {
		t.Errorf("keep: active %v until %s, want kept until %s", sw.Active("keep"), sw.Until("keep"), until)
	}
	for _, n := range []string{"gone", "hardened", "new"} {
		if sw.Active(n) {
			t.Errorf("%s: still active after the reload", n)
		}
	}
	got := map[string]string{}
	for _, e := range events {
		if e.Enabled {
			t.Errorf("unexpected enable event %+v", e)
		}
		got[e.Server] = e.Reason
	}
	want := map[string]string{
		"gone":     "section removed by a configuration reload",
		"hardened": "section is failmode secure after a configuration reload",
	}
	if len(got) != len(want) || got["gone"] != want["gone"] || got["hardened"] != want["hardened"] {
		t.Errorf("events %v, want %v", got, want)
	}
	if _, err := sw.Enable([]string{"gone"}, time.Hour); err == nil {
		t.Error("enable on a removed section succeeded")
	}
	if _, err := sw.Enable([]string{"new"}, time.Hour); err != nil {
		t.Errorf("enable on a section added by the reload: %v", err)
	}
	if st := sw.Status(); len(st) != 4 {
		t.Errorf("status lists %d sections, want 4: %+v", len(st), st)
	}
}
