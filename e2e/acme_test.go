package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/pgtest"
)

// TestACME: baton serve --acme-ca (Pebble) obtains certificates for an
// app's own name and a custom domain by itself; a client that trusts only
// Pebble's root gets the app over h2 and HTTP/1.1; a name baton does not
// serve gets no certificate; plain HTTP redirects to HTTPS; status and
// /metrics show the certificates; and a renewal of the short-lived
// certificate happens under load (a new TLS handshake per request)
// without one failed request.
func TestACME(t *testing.T) {
	t.Parallel()
	b, httpAddr := acmeBaton(t)
	ca := startPebble(t, port(httpAddr), port(b.proxyAddr), 12*time.Second)
	b.extra = append(b.extra, acmeFlags(ca)...)
	b.launch()
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "hello", appDir(t, "v1", withBinary))
	if _, err := c.AddDomain(ctx, "hello", "", "shop.example.test"); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"hello.localhost", "shop.example.test"} {
		for proto, h2 := range map[string]bool{"h2": true, "HTTP/1.1": false} {
			pc := tlsProxyClient(t, b.proxyAddr, name, ca.Roots, h2, true)
			eventually(t, 30*time.Second, name+" over "+proto+" with a certificate from Pebble", func() bool {
				status, body, err := pc.get(name, "/")
				return err == nil && status == 200 && version(body) == "v1"
			})
		}
	}
	if _, err := servedCert(b.proxyAddr, "evil.example.test", ca.Roots); err == nil {
		t.Fatal("a name baton does not serve got a certificate")
	}

	// Plain HTTP: a redirect to the same URL over HTTPS.
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/path?q=1", nil)
	req.Host = "shop.example.test"
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://shop.example.test:" + port(b.proxyAddr) + "/path?q=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("plain HTTP: %s to %q, want 308 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	st, err := c.Status(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Domains {
		if d.Certificate == nil || d.Certificate.Issuer == "" || d.Certificate.NotAfter == nil {
			t.Fatalf("status of %s: certificate %+v", d.Name, d.Certificate)
		}
	}
	fams := scrape(t, b)
	if v := value(fams, "baton_certificate_expiry_timestamp_seconds", map[string]string{"name": "shop.example.test"}); v < float64(time.Now().Unix()) {
		t.Fatalf("expiry metric of shop.example.test = %v", v)
	}

	first, err := servedCert(b.proxyAddr, "shop.example.test", ca.Roots)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(t, tlsProxyClient(t, b.proxyAddr, "shop.example.test", ca.Roots, false, false), "shop.example.test", 4)
	eventually(t, 10*time.Second, "load running", func() bool { return l.count("v1") > 20 })
	eventually(t, 40*time.Second, "a renewed certificate served", func() bool {
		now, err := servedCert(b.proxyAddr, "shop.example.test", ca.Roots)
		return err == nil && now.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	n := l.count("v1")
	eventually(t, 10*time.Second, "load after the renewal", func() bool { return l.count("v1") > n+20 })
	versions, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed requests across the renewal, first: %s", len(failures), failures[0])
	}
	if v := value(scrape(t, b), "baton_certificates_obtained_total", map[string]string{"kind": "renewed"}); v < 1 {
		t.Fatalf("renewals counted: %v", v)
	}
	t.Logf("requests across the renewal (new handshake each): %v", versions)

	// A domain whose challenge fails (its DNS points where baton does not
	// listen) is a conflict in status, with what to check.
	ca.resolve(t, "broken.example.test", "127.0.0.2")
	if _, err := c.AddDomain(ctx, "hello", "", "broken.example.test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a failing challenge in status", func() bool {
		st, err := c.Status(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		for _, cf := range st.Conflicts {
			if cf.Code == baton.ConflictCertFailing && strings.Contains(cf.Message, "broken.example.test") && strings.Contains(cf.Fix, "resolves to this host") {
				return true
			}
		}
		return false
	})
	if out, code := runCLI(t, b, "status", "hello", "--check"); code != 2 || !strings.Contains(out, "certificate_failing") {
		t.Fatalf("status --check: exit %d\n%s", code, out)
	}

	// A restart in place keeps both listeners and serves the certificates
	// from the store at once.
	b.restartInPlace()
	pc := tlsProxyClient(t, b.proxyAddr, "shop.example.test", ca.Roots, true, false)
	if status, body, err := pc.get("shop.example.test", "/"); err != nil || status != 200 || version(body) != "v1" {
		t.Fatalf("after a restart in place: %d %q %v", status, body, err)
	}
	if resp, err := noFollow.Do(req); err != nil || resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("plain HTTP after a restart in place: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestACMETwoControllers: two controllers on one PostgreSQL store, both
// managing the same name: the certificate is obtained once (the ACME
// issuances both count add up to one), and both serve it. Pebble
// validates on controller a's ports only, as a load balancer would send
// the CA to either: b's challenges are answered by a from the store.
func TestACMETwoControllers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	a, httpA := acmeBaton(t, "--store", dsn, "--controller-id", "ctl-a", "--lease-ttl", "5s")
	b, _ := acmeBaton(t, "--store", dsn, "--controller-id", "ctl-b", "--lease-ttl", "5s")
	ca := startPebble(t, port(httpA), port(a.proxyAddr), 24*time.Hour)
	a.extra = append(a.extra, acmeFlags(ca)...)
	b.extra = append(b.extra, acmeFlags(ca)...)
	a.launch()
	// Keys in the store are sealed: controllers share the key file.
	b.extra = append(b.extra, "--secret-key", filepath.Join(a.data, "secret.key"))
	b.launch()
	ctx := context.Background()
	if _, err := a.client().CreateApp(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, a.client(), "shared", appDir(t, "v1", withBinary))

	var ca1, cb1 []byte
	eventually(t, 60*time.Second, "both controllers serve a certificate for shared.localhost", func() bool {
		x, err := servedCert(a.proxyAddr, "shared.localhost", ca.Roots)
		if err != nil {
			return false
		}
		y, err := servedCert(b.proxyAddr, "shared.localhost", ca.Roots)
		if err != nil {
			return false
		}
		ca1, cb1 = x.Raw, y.Raw
		return true
	})
	if string(ca1) != string(cb1) {
		t.Fatal("the controllers serve different certificates for shared.localhost")
	}
	pc := tlsProxyClient(t, a.proxyAddr, "shared.localhost", ca.Roots, true, true)
	if status, body, err := pc.get("shared.localhost", "/"); err != nil || status != 200 || version(body) != "v1" {
		t.Fatalf("the app over h2: %d %q %v", status, body, err)
	}
	obtained := func(p *batonProc) float64 {
		return value(scrape(t, p), "baton_certificates_obtained_total", map[string]string{"kind": "obtained"})
	}
	if na, nb := obtained(a), obtained(b); na+nb != 1 {
		t.Fatalf("certificates obtained: %v by a, %v by b; want 1 in all", na, nb)
	}
}
