package coordinator

import (
	"net/http"
	"strings"
	"testing"
)

// TestWarmupRedirectSaysNotFollowed: a warm-up answered with a redirect that
// [warmup] statuses does not list failed with "status 302 is not one of
// [200]" and no word on why or what to do.
func TestWarmupRedirectSaysNotFollowed(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"/login"}}}
	got := warmupStatusRefused(resp, []int{200})
	for _, want := range []string{"status 302 is not one of [200]", "redirect to /login", "do not follow redirects", "add 302 to [warmup] statuses", "BATON_SWAP_WARMUP_STATUSES"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
	if got := warmupStatusRefused(&http.Response{StatusCode: 500, Header: http.Header{}}, []int{200}); strings.Contains(got, "redirect") {
		t.Errorf("a 500 is no redirect: %q", got)
	}
}
