package coordinator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestStatusesMatchStatus: the status of every app, read in a few
// batched queries, is what each app's own status says; the lists page by
// name with limit and after, and ?app= picks apps.
func TestStatusesMatchStatus(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("sa", "staging")
	b.createApp("sb")
	b.createApp("sc", "staging", "canary")
	b.mustDeploy("sb", appDir(t, "v1"), api.DeployOptions{})
	b.mustDeploy("sb", appDir(t, "v2"), api.DeployOptions{})
	// The collection after the last deploy may still run and change the
	// disk use status shows: this one waits for it.
	if _, err := b.c.GC(ctx, false); err != nil {
		t.Fatal(err)
	}

	all, err := b.c.AllStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range all {
		names = append(names, st.App)
		one, err := b.c.Status(ctx, st.App)
		if err != nil {
			t.Fatal(err)
		}
		// Seconds can tick between the two reads.
		st.RunningForSeconds, one.RunningForSeconds = 0, 0
		if jsonOf(t, st) != jsonOf(t, one) {
			t.Errorf("status of %s in the list:\n%s\nits own:\n%s", st.App, jsonOf(t, st), jsonOf(t, one))
		}
	}
	if strings.Join(names, ",") != "sa,sb,sc" {
		t.Fatalf("apps in the status = %v", names)
	}
	if len(all[1].Recent) != 2 {
		t.Errorf("sb's recent operations: %d, want 2", len(all[1].Recent))
	}

	var pages []string
	next := "/api/v1/status?limit=2"
	for next != "" {
		var page []baton.AppStatus
		resp := b.getJSON(t, next, &page)
		var got []string
		for _, st := range page {
			got = append(got, st.App)
		}
		pages = append(pages, strings.Join(got, ","))
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if strings.Join(pages, " | ") != "sa,sb | sc" {
		t.Errorf("status pages of 2 = %q, want %q", strings.Join(pages, " | "), "sa,sb | sc")
	}
	var apps []baton.App
	b.getJSON(t, "/api/v1/apps?limit=5&after=sa", &apps)
	if len(apps) != 2 || apps[0].Name != "sb" || len(apps[1].Slots) != 3 {
		t.Errorf("apps after sa = %+v", apps)
	}
	picked, err := b.c.StatusOf(ctx, "sc", "sa")
	if err != nil {
		t.Fatal(err)
	}
	if len(picked) != 2 || picked[0].App != "sc" || picked[1].App != "sa" {
		t.Errorf("status of sc and sa = %+v", picked)
	}
	if _, err := b.c.StatusOf(ctx, "nope"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("status of an unknown app: %v, want %s", err, baton.ENOTFOUND)
	}
	resp := b.getJSON(t, "/api/v1/apps?limit=0", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=0 answered %s, want 400", resp.Status)
	}
}

// getJSON GETs path from the API and decodes a 200 answer into out.
func (b *batonEnv) getJSON(t testing.TB, path string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+b.srv.APIAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
