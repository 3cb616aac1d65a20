// Command upstream is the app the proxy benchmarks send traffic to: a tiny
// Go net/http server, like a typical instance baton runs. GET / answers a
// small JSON body; GET /1k answers 1 KiB and GET /64k 64 KiB, both with a
// Content-Length.
//
//	upstream -addr 127.0.0.1:9001
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Println(ln.Addr().String()) // the script reads the bound address
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// newHandler serves the benchmark's responses: a small JSON body at /, and
// fixed bodies of 1 KiB at /1k and 64 KiB at /64k.
func newHandler() http.Handler {
	small := []byte(`{"ok":true,"service":"probe"}`)
	kib := bytes.Repeat([]byte("0123456789abcdef"), 1<<10/16)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(small)
	})
	mux.HandleFunc("/1k", fixed(kib))
	mux.HandleFunc("/64k", fixed(big))
	return mux
}

// fixed answers body with an explicit Content-Length: net/http would
// otherwise chunk a body larger than its buffer, and the proxies would then
// differ in framing.
func fixed(body []byte) http.HandlerFunc {
	length := strconv.Itoa(len(body))
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	}
}
