package baton_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestParseSince: the one rule of `baton logs --since` and ?since=; 0s is
// now (the CLI refused it while the server took it).
func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"10m", now.Add(-10 * time.Minute), true},
		{"2h", now.Add(-2 * time.Hour), true},
		{"0s", now, true},
		{"0", now, true},
		{"2026-12-06T15:00:00Z", now.Add(-time.Hour), true},
		{"2026-12-06T17:00:00+02:00", now.Add(-time.Hour), true},
		{"-5m", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := baton.ParseSince(tc.in, now)
		switch {
		case tc.ok && (err != nil || !got.Equal(tc.want)):
			t.Errorf("ParseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case !tc.ok && baton.ErrorCode(err) != baton.EINVALID:
			t.Errorf("ParseSince(%q) = %v, %v; want EINVALID", tc.in, got, err)
		}
	}
}
