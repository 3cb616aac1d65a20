package proxy

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/selfsigned"
)

// testPair returns a certificate for localhost and *.localhost, leaf parsed.
func testPair(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := selfsigned.New("baton certs test")
	if err != nil {
		t.Fatal(err)
	}
	return c.Config().Certificates[0]
}

// countingFallback answers every name with cert and counts the calls.
func countingFallback(cert *tls.Certificate, calls *atomic.Int32) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		calls.Add(1)
		return cert, nil
	}
}

// TestCerts: static certificates win for the names they cover (exact and
// wildcard, any case); other names go to the fallback once per TTL;
// Forget and TLS-ALPN-01 handshakes reach the fallback.
func TestCerts(t *testing.T) {
	static := testPair(t)
	acmeCert := testPair(t)
	var calls atomic.Int32
	c := NewCerts([]tls.Certificate{static}, countingFallback(&acmeCert, &calls), time.Hour)
	get := func(name string, protos ...string) *tls.Certificate {
		t.Helper()
		cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return cert
	}
	for _, n := range []string{"localhost", "hello.localhost", "Hello.LOCALHOST", ""} {
		if get(n).Leaf != static.Leaf {
			t.Errorf("%q did not get the static certificate", n)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("fallback asked %d times for static names", calls.Load())
	}
	for range 3 {
		if get("shop.example.com") != &acmeCert || get("SHOP.example.com") != &acmeCert {
			t.Fatal("shop.example.com did not get the fallback's certificate")
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("fallback asked %d times, want once (cached)", calls.Load())
	}
	c.Forget("shop.example.com")
	get("shop.example.com")
	get("hello.localhost", ACMETLSALPNProto)
	if calls.Load() != 3 {
		t.Fatalf("fallback asked %d times after Forget and a TLS-ALPN-01 hello, want 3", calls.Load())
	}

	// A short TTL makes the fallback answer again (a renewed certificate).
	short := NewCerts(nil, countingFallback(&acmeCert, &calls), time.Nanosecond)
	short.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"})
	short.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"})
	if calls.Load() != 5 {
		t.Fatalf("fallback asked %d times, want 5 (TTL over)", calls.Load())
	}
	none := NewCerts(nil, nil, 0)
	if _, err := none.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"}); err == nil {
		t.Fatal("no certificates, yet one was found")
	}
}

// TestCertsNoAlloc: picking a certificate, static or cached, allocates nothing.
func TestCertsNoAlloc(t *testing.T) {
	acmeCert := testPair(t)
	var calls atomic.Int32
	c := NewCerts([]tls.Certificate{testPair(t)}, countingFallback(&acmeCert, &calls), time.Hour)
	for _, name := range []string{"hello.localhost", "Hello.Localhost", "shop.example.com", "Shop.Example.com"} {
		hello := &tls.ClientHelloInfo{ServerName: name}
		c.GetCertificate(hello)
		if n := testing.AllocsPerRun(100, func() { c.GetCertificate(hello) }); n != 0 {
			t.Errorf("%s: %.1f allocations per lookup, want 0", name, n)
		}
	}
}

// BenchmarkCertsGetCertificate is the lookup alone.
func BenchmarkCertsGetCertificate(b *testing.B) {
	acmeCert := testPair(b)
	var calls atomic.Int32
	c := NewCerts([]tls.Certificate{testPair(b)}, countingFallback(&acmeCert, &calls), time.Hour)
	for _, name := range []string{"hello.localhost", "shop.example.com"} {
		b.Run(name, func(b *testing.B) {
			hello := &tls.ClientHelloInfo{ServerName: name}
			b.ReportAllocs()
			for b.Loop() {
				c.GetCertificate(hello)
			}
		})
	}
}

// BenchmarkTLSHandshake is full TLS 1.3 handshakes on a pipe: with the
// certificate in tls.Config.Certificates (crypto/tls alone), and through
// Certs (cached fallback), to show that Certs adds no allocation.
func BenchmarkTLSHandshake(b *testing.B) {
	pair := testPair(b)
	c := NewCerts(nil, func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }, time.Hour)
	for name, srv := range map[string]*tls.Config{
		"Certificates":         {Certificates: []tls.Certificate{pair}},
		"Certs.GetCertificate": {GetCertificate: c.GetCertificate},
	} {
		b.Run(name, func(b *testing.B) {
			cli := &tls.Config{ServerName: "shop.localhost", InsecureSkipVerify: true}
			b.ReportAllocs()
			for b.Loop() {
				a, z := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Server(a, srv).Handshake() }()
				if err := tls.Client(z, cli).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				a.Close()
				z.Close()
			}
		})
	}
}

// TestCertsRecheckWhenDue: a certificate in the last third of its
// lifetime, when it is being renewed, is asked for again within a second
// instead of being served from the cache until it expires.
func TestCertsRecheckWhenDue(t *testing.T) {
	due := testPair(t)
	leaf := *due.Leaf
	now := time.Now()
	leaf.NotBefore, leaf.NotAfter = now.Add(-50*time.Minute), now.Add(10*time.Minute)
	due.Leaf = &leaf
	var calls atomic.Int32
	c := NewCerts(nil, countingFallback(&due, &calls), time.Hour)
	hello := &tls.ClientHelloInfo{ServerName: "due.example"}
	c.GetCertificate(hello)
	c.GetCertificate(hello)
	if calls.Load() != 1 {
		t.Fatalf("fallback asked %d times, want 1", calls.Load())
	}
	if e := (*c.cache.Load())["due.example"]; e == nil || time.Until(time.Unix(0, e.until)) > dueRecheck {
		t.Fatalf("a certificate due for renewal is cached until %v", e)
	}
}
