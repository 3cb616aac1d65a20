package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/selfsigned"
)

// proxyCert writes a certificate for *.localhost and 127.0.0.1 with its
// key, and returns their paths and a pool that trusts the certificate.
func proxyCert(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c, err := selfsigned.New("baton e2e apps")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = c.WriteFiles(t.TempDir(), "apps")
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Pool
}

// httpsProxyClient is a proxyClient that speaks TLS to the proxy (server
// name hello.localhost) in HTTP/2 or HTTP/1.1 only, and fails any response
// that came back in another protocol.
func httpsProxyClient(t testing.TB, addr string, pool *x509.CertPool, h2 bool) *proxyClient {
	t.Helper()
	return tlsProxyClient(t, addr, "hello.localhost", pool, h2, true)
}

// httpsOnly sends proxyClient's http:// requests as https:// and checks
// the protocol of the answer.
type httpsOnly struct {
	next  http.RoundTripper
	major int
}

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme = "https"
	resp, err := h.next.RoundTrip(r)
	if err == nil && (resp.ProtoMajor != h.major || resp.TLS == nil) {
		resp.Body.Close()
		return nil, fmt.Errorf("answered in %s (TLS %v), want HTTP/%d over TLS", resp.Proto, resp.TLS != nil, h.major)
	}
	return resp, err
}

// TestProxyTLS: `baton serve --proxy-tls-cert --proxy-tls-key` serves the
// example app over h2 and over HTTP/1.1+TLS, answers plain HTTP with a
// problem, and a deploy v1 → v2 under h2 load fails no request.
func TestProxyTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := proxyCert(t)
	b := startBaton(t, "--proxy-tls-cert", certFile, "--proxy-tls-key", keyFile)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "hello", appDir(t, "v1", withBinary))

	h2 := httpsProxyClient(t, b.proxyAddr, pool, true)
	h1 := httpsProxyClient(t, b.proxyAddr, pool, false)
	for name, pc := range map[string]*proxyClient{"h2": h2, "HTTP/1.1+TLS": h1} {
		status, body, err := pc.get("hello.localhost", "/")
		if err != nil || status != 200 || version(body) != "v1" {
			t.Fatalf("%s: %d %q %v", name, status, body, err)
		}
		status, body, err = pc.get("nope.localhost", "/")
		if err != nil || status != 404 || !strings.Contains(body, "unknown-host") {
			t.Errorf("%s, unknown host: %d %q %v, want a 404 problem", name, status, body, err)
		}
	}

	// Plain HTTP to the TLS listener is told to use https.
	status, body, err := newProxyClient(b.proxyAddr).get("hello.localhost", "/")
	var pb struct{ Type, Detail string }
	if err != nil || status != 400 || json.Unmarshal([]byte(body), &pb) != nil || !strings.HasSuffix(pb.Type, "#https-required") {
		t.Errorf("plain HTTP to the TLS listener: %d %q %v, want a 400 https-required problem", status, body, err)
	}

	l := startLoad(t, h2, "hello.localhost", 8)
	eventually(t, 10*time.Second, "h2 load sees v1", func() bool { return l.count("v1") > 50 })
	mustSucceed(t, c, "hello", appDir(t, "v2", withBinary))
	eventually(t, 10*time.Second, "h2 load sees v2", func() bool { return l.count("v2") > 50 })
	versions, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%d failed h2 requests during the deploy, first: %s", len(failures), failures[0])
	}
	t.Logf("h2 requests per version during the switch: %v", versions)

	if status, body, err := h1.get("hello.localhost", "/"); err != nil || status != 200 || version(body) != "v2" {
		t.Fatalf("HTTP/1.1+TLS after the deploy: %d %q %v", status, body, err)
	}
}
