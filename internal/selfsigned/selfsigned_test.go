package selfsigned

import (
	"crypto/tls"
	"io"
	"testing"
)

// TestHandshake: a client trusting Pool completes a TLS handshake with a
// server presenting the certificate, for *.localhost; the written files
// load back as the same pair.
func TestHandshake(t *testing.T) {
	c, err := New("selfsigned test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conn.Write([]byte("hi"))
		conn.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: c.Pool, ServerName: "app.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "hi" {
		t.Fatalf("read %q, %v", b, err)
	}
	certFile, keyFile, err := c.WriteFiles(t.TempDir(), "apps")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !pair.Leaf.Equal(c.TLS.Leaf) {
		t.Fatal("the written certificate is another one")
	}
}
