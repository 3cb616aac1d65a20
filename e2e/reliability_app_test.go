package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// relAppEnv, set to 1 in an instance's command, makes the test binary run
// as gateApp instead of running tests (see init below).
const relAppEnv = "BATON_RELIABILITY_APP"

// The test binary doubles as an app whose every phase a test can hold: the
// manifest of relAppDir runs it with relAppEnv=1, and init turns it into the
// app before TestMain builds anything.
func init() {
	if os.Getenv(relAppEnv) == "1" {
		os.Exit(gateApp())
	}
}

// gateApp is a variant of the example app (same JSON answer) that a test
// can hold in every phase with files:
//   - "listen-gate" holds a path: it listens only once that path exists
//     (holds phase starting);
//   - "health-gate" holds a path: /healthz answers 503 until that path
//     exists (holds phase health-checking);
//   - GET /hold?gate=PATH&mark=PATH creates mark, then answers only once
//     gate exists: an in-flight request that holds phase draining.
func gateApp() int {
	port := os.Getenv("PORT")
	version := "dev"
	if b, err := os.ReadFile("version.txt"); err == nil {
		version = strings.TrimSpace(string(b))
	}
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}
	gateOf := func(file string) string {
		b, err := os.ReadFile(file)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	healthGate := gateOf("health-gate")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// waitFor polls for path until it exists, ctx ends or limit passes.
	waitFor := func(ctx context.Context, path string, limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for !exists(path) {
			if ctx.Err() != nil || time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
		return true
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if healthGate != "" && !exists(healthGate) {
			http.Error(w, "health gate "+healthGate+" closed", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		if mark := r.URL.Query().Get("mark"); mark != "" {
			os.WriteFile(mark, nil, 0o644)
		}
		if !waitFor(r.Context(), r.URL.Query().Get("gate"), 2*time.Minute) {
			http.Error(w, "gate never opened", http.StatusGatewayTimeout)
			return
		}
		fmt.Fprintln(w, "released")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"app":      os.Getenv("BATON_APP"),
			"slot":     os.Getenv("BATON_SLOT"),
			"revision": os.Getenv("BATON_REVISION"),
			"version":  version,
			"pid":      os.Getpid(),
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if gate := gateOf("listen-gate"); gate != "" {
		log.Printf("gate app %s waiting for %s before listening", version, gate)
		waitFor(ctx, gate, time.Hour)
	}
	log.Printf("gate app %s listening on %s", version, srv.Addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Print(err)
		return 1
	}
	return 0
}

// relAppDir writes a deployable folder running gateApp with two instances.
// The harness's options (withBuild, withRelease, withListenGate) apply to it.
func relAppDir(t testing.TB, version string, opts ...func(dir string)) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := fmt.Sprintf(`[run]
command = "%s=1 exec '%s'"
instances = 2
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "60s"
`, relAppEnv, self)
	for name, body := range map[string]string{"version.txt": version + "\n", "baton.toml": manifest} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range opts {
		o(dir)
	}
	return dir
}

// withHealthGate keeps the app's health check red until gate opens (holds
// phase health-checking).
func withHealthGate(g gate) func(string) {
	return func(dir string) { os.WriteFile(filepath.Join(dir, "health-gate"), []byte(g), 0o644) }
}
