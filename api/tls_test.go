package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/selfsigned"
	"github.com/batonhq/baton/server"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; it returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c, err := selfsigned.New("baton test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = c.WriteFiles(t.TempDir(), "cert")
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Pool
}

// TestTLS: with --tls-cert and --tls-key the API speaks HTTPS only.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	dir := t.TempDir()
	srv, err := server.Open(context.Background(), server.Config{DataDir: dir, APIAddr: "127.0.0.1:0", ProxyAddr: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.APIURL(), "https://") {
		t.Fatalf("APIURL = %s", srv.APIURL())
	}
	secret, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	c := api.NewClient(srv.APIURL())
	c.Token = strings.TrimSpace(string(secret))
	c.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := c.Apps(context.Background()); err != nil {
		t.Fatalf("over HTTPS: %v", err)
	}
	plain := api.NewClient("http://" + srv.APIAddr())
	plain.Token = c.Token
	if _, err := plain.Apps(context.Background()); err == nil {
		t.Fatal("plain HTTP answered on a TLS listener")
	}
	if _, err := server.Open(context.Background(), server.Config{DataDir: t.TempDir(), APIAddr: "127.0.0.1:0", ProxyAddr: "127.0.0.1:0", TLSCert: certFile}); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
}
