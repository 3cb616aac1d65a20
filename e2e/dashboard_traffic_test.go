package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
)

// TestDashboardTrafficPanel: requests through the proxy, some answered
// 500 by the app, show on the app page's traffic panel as the revision's
// count with a non-zero error rate, as GET .../traffic reports them.
func TestDashboardTrafficPanel(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	if _, err := c.CreateApp(context.Background(), "busy"); err != nil {
		t.Fatal(err)
	}
	d := mustSucceed(t, c, "busy", appDir(t, "v1"))
	p := newProxyClient(b.proxyAddr)
	for i := range 25 {
		path := "/"
		if i%5 == 0 {
			path = "/status/500"
		}
		if _, _, err := p.get("busy.localhost", path); err != nil {
			t.Fatal(err)
		}
	}
	var rep api.TrafficReport
	eventually(t, 10*time.Second, "GET /traffic counts the 25 requests", func() bool {
		req, _ := http.NewRequest("GET", "http://"+b.apiAddr+"/api/v1/apps/busy/traffic?window=5m", nil)
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		rep = api.TrafficReport{}
		return json.NewDecoder(resp.Body).Decode(&rep) == nil && len(rep.Revisions) == 1 && rep.Revisions[0].Requests == 25
	})
	if r := rep.Revisions[0]; !rep.RequestMetrics || r.Revision != d.Revision || r.ErrorRate != 0.2 || r.RequestsPerSecond <= 0 || r.P99Seconds < 0 {
		t.Fatalf("traffic = %+v", rep)
	}

	br := newBrowser(t, b)
	br.signIn(b)
	br.open("/apps/busy")
	row := `#traffic [data-traffic-revision="` + d.Revision + `"][data-requests="25"]`
	br.present(row)
	br.present(row + ` td.num.bad`)
	br.contains(row, "20.0%")
	br.screenshot("traffic")
}
