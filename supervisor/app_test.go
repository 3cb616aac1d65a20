package supervisor

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the app under supervision: with
// SUPERVISOR_TEST_APP set it serves HTTP on $PORT in the given mode instead
// of running tests.
const (
	appModeEnv = "SUPERVISOR_TEST_APP"
	appFileEnv = "SUPERVISOR_TEST_FILE" // slowstart: healthy once this file exists; slow-term: written at the end
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(hostStateEnv); dir != "" {
		os.Exit(runTestHost(dir))
	}
	if conf := os.Getenv(containerHostEnv); conf != "" {
		os.Exit(runContainerHost(conf))
	}
	if dir := os.Getenv(runHostEnv); dir != "" {
		os.Exit(runCommandHost(dir))
	}
	if mode := os.Getenv(appModeEnv); mode != "" {
		os.Exit(runTestApp(mode))
	}
	code := m.Run()
	removeTestImage()
	os.Exit(code)
}

// runTestApp is the fake app. Modes:
//
//	ok                 /health answers 200
//	fail               /health answers 500
//	exit               prints a line and exits 3 at once
//	slowstart          /health answers 503 until $SUPERVISOR_TEST_FILE exists
//	crash-after        like ok; GET /crash makes it exit 2
//	ignore-term        like ok, but ignores SIGTERM
//	healthy-then-exit  answers one health check with 200, then exits 1
//	slow-term          like ok; on SIGTERM it takes 300 ms, then writes
//	                   $SUPERVISOR_TEST_FILE and exits 0 (a graceful shutdown)
//	listen-late        like ok, but listens only once $SUPERVISOR_TEST_FILE
//	                   exists (exits 1 if the port is taken by then)
func runTestApp(mode string) int {
	port := os.Getenv("PORT")
	fmt.Printf("app %s starting on port %s\n", mode, port)
	fmt.Fprintf(os.Stderr, "app %s stderr line\n", mode)
	switch mode {
	case "exit":
		fmt.Println("fatal: config missing")
		return 3
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "slow-term":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			time.Sleep(300 * time.Millisecond) // the app's own shutdown work
			os.WriteFile(os.Getenv(appFileEnv), []byte("shut down\n"), 0o644)
			os.Exit(0)
		}()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "slowstart":
			if _, err := os.Stat(os.Getenv(appFileEnv)); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case "healthy-then-exit":
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			fmt.Println("healthy once, exiting")
			os.Exit(1)
		}
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		if mode == "crash-after" {
			fmt.Println("crashing on request")
			os.Exit(2)
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", port)
	})

	for mode == "listen-late" {
		if _, err := os.Stat(os.Getenv(appFileEnv)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, http.Serve(l, mux))
	return 1
}
