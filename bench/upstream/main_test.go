package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHandlerBodies(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		path string
		size int64
		// framed: the response carries an explicit Content-Length header,
		// so every proxy relays the same framing.
		framed bool
	}{
		{"/", 29, false},
		{"/1k", 1 << 10, true},
		{"/64k", 64 << 10, true},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := client.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || int64(len(body)) != tt.size {
				t.Fatalf("GET %s: status %d, %d bytes; want 200, %d bytes", tt.path, resp.StatusCode, len(body), tt.size)
			}
			if tt.framed && (resp.ContentLength != tt.size || len(resp.TransferEncoding) != 0) {
				t.Fatalf("GET %s: Content-Length %d, Transfer-Encoding %v; want %d and none", tt.path, resp.ContentLength, resp.TransferEncoding, tt.size)
			}
		})
	}
}
