package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

func TestQueryLimit(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
		ok    bool
	}{
		{"", 50, true},
		{"limit=1", 1, true},
		{"limit=1000", 1000, true},
		{"limit=0", 0, false},
		{"limit=1001", 0, false},
		{"limit=-3", 0, false},
		{"limit=ten", 0, false},
		{"limit=", 50, true},
	} {
		got, err := api.QueryLimit(httptest.NewRequest("GET", "/x?"+tc.query, nil), 50, 1000)
		if tc.ok {
			if err != nil || got != tc.want {
				t.Errorf("%q: %d, %v, want %d", tc.query, got, err, tc.want)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(err.Error(), "limit=") || !strings.Contains(err.Error(), "from 1 to 1000") {
			t.Errorf("%q: %v, want EINVALID naming limit and its range 1 to 1000", tc.query, err)
		}
	}
}
