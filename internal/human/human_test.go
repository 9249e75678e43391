package human

import (
	"math"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
		want string
	}{
		{"zero", 0, "0s"},
		{"nanosecond", time.Nanosecond, "1ns"},
		{"below a millisecond", 400 * time.Microsecond, "400µs"},
		{"millisecond", time.Millisecond, "1ms"},
		{"rounded to the millisecond", 1500 * time.Microsecond, "2ms"},
		{"milliseconds", 250 * time.Millisecond, "250ms"},
		{"fraction of a second", 1500 * time.Millisecond, "1.5s"},
		{"seconds rounded", 1234567 * time.Microsecond, "1.235s"},
		{"seconds rounded away", 3400123 * time.Microsecond, "3.4s"},
		{"whole seconds", 45 * time.Second, "45s"},
		{"a minute", time.Minute, "1m"},
		{"minutes and seconds", 90 * time.Second, "1m30s"},
		{"minutes and a fraction", 90*time.Second + 500*time.Millisecond, "1m30.5s"},
		{"whole minutes", 30 * time.Minute, "30m"},
		{"an hour", time.Hour, "1h"},
		{"hours and minutes", 90 * time.Minute, "1h30m"},
		{"hours", 5 * time.Hour, "5h"},
		{"hours and seconds", time.Hour + time.Second, "1h0m1s"},
		{"hours, minutes, seconds", time.Hour + 2*time.Minute + 3*time.Second, "1h2m3s"},
		{"negative", -2 * time.Hour, "-2h"},
		{"negative minutes", -90 * time.Second, "-1m30s"},
		{"negative below a millisecond", -5 * time.Microsecond, "-5µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Duration(tc.d); got != tc.want {
				t.Errorf("Duration(%d) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

// TestDurationRoundTrips checks that time.ParseDuration reads what Duration
// prints back as the value it stands for.
func TestDurationRoundTrips(t *testing.T) {
	for _, d := range []time.Duration{
		0, 1, 999 * time.Microsecond, time.Millisecond, 1234567 * time.Microsecond,
		59 * time.Second, time.Minute, 61 * time.Second, 10 * time.Minute,
		time.Hour, time.Hour + time.Millisecond, 25*time.Hour + 30*time.Minute,
		-3 * time.Minute, math.MaxInt64, math.MinInt64 + 1,
	} {
		checkRoundTrip(t, d)
	}
}

func FuzzDuration(f *testing.F) {
	f.Add(int64(90 * time.Second))
	f.Add(int64(1234567 * time.Microsecond))
	f.Fuzz(func(t *testing.T, n int64) { checkRoundTrip(t, time.Duration(n)) })
}

// checkRoundTrip fails t unless Duration(d) parses back as d when d is less
// than a millisecond, else as d rounded to the millisecond.
func checkRoundTrip(t *testing.T, d time.Duration) {
	t.Helper()
	want := d
	if d >= time.Millisecond || d <= -time.Millisecond {
		want = d.Round(time.Millisecond)
	}
	s := Duration(d)
	if got, err := time.ParseDuration(s); err != nil || got != want {
		t.Errorf("ParseDuration(Duration(%d) = %q) = %d, %v; want %d", d, s, got, err, want)
	}
}
