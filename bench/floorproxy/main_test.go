package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The relay must pass HTTP through byte for byte, whatever the sizes, or
// the benchmark's floor would be measuring a broken path.
func TestRelayPassesRequestsAndLargeBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: fills socket buffers
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(big)
		case "/echo":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		default:
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		}
	}))
	defer up.Close()
	addr, stop, err := listen("127.0.0.1:0", netip.MustParseAddrPort(strings.TrimPrefix(up.URL, "http://")), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	base := "http://" + addr
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				path := fmt.Sprintf("/g%d/%d", g, i)
				got, err := get(client, base+path)
				if err != nil {
					errs <- err
					return
				}
				if want := "hello " + path; got != want {
					errs <- fmt.Errorf("GET %s = %q, want %q", path, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A client with a small receive buffer makes the relay's writes to it
	// block part way: the bytes it holds back must all arrive, in order.
	slow := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		},
	}).DialContext}}
	got, err := get(slow, base+"/big")
	if err != nil || got != string(big) {
		t.Fatalf("GET /big: %d bytes, err %v; want %d bytes", len(got), err, len(big))
	}
	resp, err := client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(big), sha256.Sum256(big)); string(body) != want {
		t.Fatalf("POST /echo = %q, want %q", body, want)
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
