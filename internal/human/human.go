// Package human prints values the way an operator writes them in the
// configuration. It imports nothing of ldapgate's, so every package may use
// it.
package human

import (
	"strings"
	"time"
)

// Duration prints d the way an operator would type it in the configuration,
// in a form time.ParseDuration reads back to the printed value:
//
//   - a millisecond or more is rounded to the millisecond: 250ms, 1.5s,
//     1.235s (for 1.2345678s), 1m30.5s;
//   - trailing zero units are dropped: 30m (not 30m0s), 1h (not 1h0m0s),
//     1h30m (not 1h30m0s);
//   - otherwise units are Go's: whole seconds past a minute are minutes and
//     seconds, 1m30s (never 90s), 60s is 1m, 1h0m30s keeps its 0m;
//   - less than a millisecond is printed as it is (400µs, 1ns), so a small
//     non-zero value never reads 0s;
//   - zero is 0s, and a negative value is the positive one with a minus: -2h.
func Duration(d time.Duration) string {
	if d >= time.Millisecond || d <= -time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
