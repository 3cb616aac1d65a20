// Command hello is baton's example app: it answers every request with its
// app, slot, revision and version, so you can see which revision served you.
//
// It reads PORT (set by baton), VERSION from the file version.txt next to
// it, and turns its health check red when a file named "unhealthy" exists
// (used to demonstrate a deployment that fails its health check), or when
// a file named "unhealthy-under" holds a folder it runs under (to fail on
// one host only: each host unpacks revisions under its own data folder). If a file
// named "listen-gate" holds a path, it waits for that path to exist before it
// listens (tests use it to hold a deployment in its starting phase).
// /log?msg=TEXT prints TEXT as one line of its output.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "say" {
		// A one-off command (a release command in tests): print and exit.
		fmt.Println(strings.Join(os.Args[2:], " "))
		return
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	version := "dev"
	if b, err := os.ReadFile("version.txt"); err == nil {
		version = strings.TrimSpace(string(b))
	}
	_, statErr := os.Stat("unhealthy")
	unhealthy := statErr == nil
	if under, err := os.ReadFile("unhealthy-under"); err == nil {
		wd, _ := os.Getwd()
		prefix := strings.TrimSpace(string(under))
		unhealthy = unhealthy || (prefix != "" && strings.HasPrefix(wd, prefix))
	}
	started := time.Now()
	var served, warmups atomic.Int64

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy {
			http.Error(w, "unhealthy on purpose (file 'unhealthy' present)", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// /log?msg=TEXT prints TEXT on standard output, one line, so the app's
	// output can be watched (baton logs APP -f); /log?msg=TEXT&stderr=1
	// prints it on standard error.
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		out := os.Stdout
		if r.URL.Query().Get("stderr") == "1" {
			out = os.Stderr
		}
		fmt.Fprintln(out, r.URL.Query().Get("msg"))
		fmt.Fprintln(w, "logged")
	})
	var redirected atomic.Int64
	// Routes for demonstrating swap warm-up rules.
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			code = 400
		}
		w.WriteHeader(code)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirected", http.StatusFound)
	})
	mux.HandleFunc("/redirected", func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		fmt.Fprintln(w, "you followed a redirect")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Baton-Warmup") == "1" {
			warmups.Add(1)
		}
		n := served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"app":        os.Getenv("BATON_APP"),
			"slot":       os.Getenv("BATON_SLOT"),
			"revision":   os.Getenv("BATON_REVISION"),
			"version":    version,
			"pid":        os.Getpid(),
			"served":     n,
			"warmups":    warmups.Load(),
			"redirected": redirected.Load(),
			"settings":   settings(),
			"uptime":     time.Since(started).Round(time.Millisecond).String(),
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// Finish in-flight requests, as baton expects on SIGTERM.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if gate, err := os.ReadFile("listen-gate"); err == nil {
		log.Printf("hello %s waiting for %s before listening", version, strings.TrimSpace(string(gate)))
		for {
			if _, err := os.Stat(strings.TrimSpace(string(gate))); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	log.Printf("hello %s listening on %s", version, srv.Addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// settings returns the environment baton gave the app beyond its own
// variables: the slot's settings.
func settings() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "LANG", k == "PORT", strings.HasPrefix(k, "BATON_"):
			continue
		}
		out[k] = v
	}
	return out
}
