package supervisor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The container tests run a tiny static HTTP server, built once per test
// binary, as the only program of a test image: a root filesystem holding
// /server, /etc/passwd and /etc/group.

// testServerSource is the server. Its first argument is the mode: serve
// (stops on SIGTERM), serve-ignore-term, or print (prints its other
// arguments and $GREETING, then exits; "fail" among them makes it exit 3).
const testServerSource = `package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	mode := os.Args[1]
	if mode == "print" {
		fmt.Println("args", strings.Join(os.Args[2:], " "), "greeting", os.Getenv("GREETING"))
		fmt.Fprintln(os.Stderr, "to stderr")
		for _, a := range os.Args[2:] {
			if a == "fail" {
				os.Exit(3)
			}
			if a == "wait" {
				time.Sleep(time.Hour)
			}
		}
		return
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		for range terms {
			if mode == "serve-ignore-term" {
				fmt.Println("ignoring SIGTERM")
				continue
			}
			fmt.Println("got SIGTERM, exiting")
			os.Exit(0)
		}
	}()
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		groups, _ := os.Getgroups()
		wd, _ := os.Getwd()
		json.NewEncoder(w).Encode(map[string]any{
			"pid": os.Getpid(), "args": os.Args, "env": os.Environ(), "uid": os.Getuid(),
			"gid": os.Getgid(), "groups": groups, "hostname": host, "cwd": wd,
		})
	})
	http.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte("x"), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	http.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		w.Write(data)
	})
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("crashing on request")
		os.Exit(2)
	})
	fmt.Printf("server %s pid %d port %s\n", mode, os.Getpid(), os.Getenv("PORT"))
	fmt.Fprintln(os.Stderr, "server stderr line")
	fmt.Println(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
	os.Exit(1)
}
`

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n"
	testGroup  = "root:x:0:\napp:x:2345:\nextra:x:3456:other,app\n"
)

var testImage struct {
	once   sync.Once
	dir    string // removed by TestMain
	rootfs string
	err    error
}

// testRootfs returns the test image's root filesystem, building it on the
// first call.
func testRootfs(t testing.TB) string {
	t.Helper()
	testImage.once.Do(func() { testImage.rootfs, testImage.err = buildTestImage() })
	if testImage.err != nil {
		t.Fatalf("build the test image: %v", testImage.err)
	}
	return testImage.rootfs
}

func buildTestImage() (string, error) {
	dir, err := os.MkdirTemp("", "baton-supervisor-image-")
	if err != nil {
		return "", err
	}
	testImage.dir = dir
	src, rootfs := filepath.Join(dir, "src"), filepath.Join(dir, "rootfs")
	for _, d := range []string{src, filepath.Join(rootfs, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	for name, content := range map[string]string{
		filepath.Join(src, "go.mod"):        "module testserver\n\ngo 1.22\n",
		filepath.Join(src, "main.go"):       testServerSource,
		filepath.Join(rootfs, "etc/passwd"): testPasswd,
		filepath.Join(rootfs, "etc/group"):  testGroup,
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goBin, "build", "-o", filepath.Join(rootfs, "server"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err: err, out: string(out)}
	}
	return rootfs, nil
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// removeTestImage removes what buildTestImage made.
func removeTestImage() {
	if testImage.dir != "" {
		_ = os.RemoveAll(testImage.dir)
	}
}

// serverInfo is what the test server's /info tells.
type serverInfo struct {
	PID      int      `json:"pid"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups"`
	Hostname string   `json:"hostname"`
	Cwd      string   `json:"cwd"`
}

func (i serverInfo) getenv(name string) (string, int) {
	var val string
	n := 0
	for _, kv := range i.Env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			val = v
			n++
		}
	}
	return val, n
}

func info(t *testing.T, addr string) serverInfo {
	t.Helper()
	code, body, err := get(addr, "/info")
	if err != nil || code != 200 {
		t.Fatalf("GET %s/info = %d %v", addr, code, err)
	}
	var i serverInfo
	if err := json.Unmarshal([]byte(body), &i); err != nil {
		t.Fatalf("/info: %v in %q", err, body)
	}
	return i
}
