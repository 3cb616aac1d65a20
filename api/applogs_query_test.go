package api

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestAppLogQuerySince: ?since= reads as baton.ParseSince does, against
// the server's clock; 0s is now.
func TestAppLogQuerySince(t *testing.T) {
	now := time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)
	for since, want := range map[string]time.Time{"0s": now, "10m": now.Add(-10 * time.Minute), "2026-12-06T15:00:00Z": now.Add(-time.Hour)} {
		q, err := appLogQuery(httptest.NewRequest("GET", "/api/v1/apps/hello/logs?since="+since, nil), now)
		if err != nil || !q.Since.Equal(want) {
			t.Errorf("since=%s: %v, %v; want %v", since, q.Since, err, want)
		}
	}
	if _, err := appLogQuery(httptest.NewRequest("GET", "/api/v1/apps/hello/logs?since=-5m", nil), now); baton.ErrorCode(err) != baton.EINVALID {
		t.Errorf("since=-5m: %v, want EINVALID", err)
	}
}
