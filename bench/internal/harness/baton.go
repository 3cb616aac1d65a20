// Package harness runs a real `baton serve` for the benchmark programs:
// free loopback ports, a temporary data directory, an admin token, and a
// stop that leaves no process behind. It also builds deployable artifacts
// of the example app and computes percentiles.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// Config says how to start `baton serve`.
type Config struct {
	// Bin is the baton binary.
	Bin string
	// Args are extra `baton serve` flags.
	Args []string
	// StartTimeout bounds the wait for /readyz (30s when zero).
	StartTimeout time.Duration
}

// Baton is a `baton serve` child process on loopback ports with its own
// data directory. Close stops it and removes the directory.
type Baton struct {
	cfg Config
	// Root holds the data directory, serve.log and whatever the caller
	// puts there (artifacts); Close removes it.
	Root      string
	Data      string
	APIAddr   string
	ProxyAddr string
	Token     string
	// LogPath is where baton's stdout and stderr go.
	LogPath string
	// Keep leaves Root in place on Close (set it when a run failed, so
	// the log and data can be read).
	Keep bool

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	// Started is when the current process was started.
	Started time.Time
	http    *http.Client
}

// Start makes a temporary directory, starts `baton serve` in it on free
// loopback ports, and returns once /readyz answers 200.
func Start(ctx context.Context, cfg Config) (*Baton, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("baton binary %s not found; build it with `go build -o bin/baton ./cmd/baton` and pass -baton", cfg.Bin)
	}
	cfg.Bin = bin
	root, err := os.MkdirTemp("", "baton-bench-")
	if err != nil {
		return nil, err
	}
	b := &Baton{cfg: cfg, Root: root, Data: filepath.Join(root, "data"), LogPath: filepath.Join(root, "serve.log"),
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}}
	if err := b.prepare(); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if _, err := b.StartProcess(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// prepare picks ports and writes the admin token baton adopts at its
// first start.
func (b *Baton) prepare() error {
	var err error
	if b.APIAddr, err = freeAddr(); err != nil {
		return err
	}
	if b.ProxyAddr, err = freeAddr(); err != nil {
		return err
	}
	if b.Token, err = baton.NewTokenSecret(); err != nil {
		return err
	}
	if err := os.MkdirAll(b.Data, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.Data, "admin.token"), []byte(b.Token+"\n"), 0o600)
}

// freeAddr returns a loopback address whose port is free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// StartProcess starts `baton serve` on the data directory and ports and
// waits for /readyz; it returns how long that took from the fork.
func (b *Baton) StartProcess(ctx context.Context) (time.Duration, error) {
	if err := b.Launch(); err != nil {
		return 0, err
	}
	if err := b.WaitHTTP(ctx, b.cfg.StartTimeout, "http://"+b.APIAddr+"/readyz", "", nil); err != nil {
		return 0, fmt.Errorf("baton serve did not become ready: %w\n%s", err, b.LogTail(20))
	}
	return time.Since(b.Started), nil
}

// Launch starts `baton serve` on the data directory and ports without
// waiting for it; Started is when.
func (b *Baton) Launch() error {
	if b.cmd != nil && !b.Exited() {
		return errors.New("baton serve is already running")
	}
	args := append([]string{"serve", "--data", b.Data, "--api", b.APIAddr, "--proxy", b.ProxyAddr}, b.cfg.Args...)
	cmd := exec.Command(b.cfg.Bin, args...)
	// Its own process group, so a Ctrl-C at the terminal reaches only
	// this program, which then stops baton in order; and SIGTERM to baton
	// if this program dies without stopping it (baton then stops the app
	// instances it started).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	f, err := os.OpenFile(b.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	b.Started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s serve: %w", b.cfg.Bin, err)
	}
	exited := make(chan struct{})
	b.cmd, b.exited = cmd, exited
	go func() {
		b.waitErr = cmd.Wait()
		f.Close()
		close(exited)
	}()
	return nil
}

// WaitHTTP polls url (with Host header host if not "") until accept
// takes the answer (nil: any 200), baton exits, ctx ends or within
// passes. It polls every 5 ms so it can time start-ups.
func (b *Baton) WaitHTTP(ctx context.Context, within time.Duration, url, host string, accept func(status int, body []byte) bool) error {
	deadline := time.Now().Add(within)
	var last error // the last answer's or request's, for the timeout
	for {
		if b.Exited() {
			return fmt.Errorf("baton serve exited (%v); its log is %s", b.waitErr, b.LogPath)
		}
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		if host != "" {
			req.Host = host
		}
		resp, err := b.http.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if accept == nil && resp.StatusCode == 200 || accept != nil && accept(resp.StatusCode, body) {
				return nil
			}
			last = fmt.Errorf("%s answered %d: %.200s", url, resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", within, last)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Exited reports whether the baton process has ended.
func (b *Baton) Exited() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// PID is the process id of the running baton.
func (b *Baton) PID() int { return b.cmd.Process.Pid }

// Client is an API client with the admin token and room for conns
// concurrent requests.
func (b *Baton) Client(conns int) *api.Client {
	c := api.NewClient("http://" + b.APIAddr)
	c.Token = b.Token
	c.UserAgent = "baton-bench"
	c.HTTP = &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   max(conns, 2),
	}}
	return c
}

// Stop sends SIGTERM and waits up to grace for baton to exit (it stops
// the app instances it runs first). Past grace it kills baton and every
// process group of its children.
func (b *Baton) Stop(grace time.Duration) (time.Duration, error) {
	if b.cmd == nil || b.Exited() {
		return 0, nil
	}
	start := time.Now()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return time.Since(start), nil
	case <-time.After(grace):
	}
	b.kill()
	return time.Since(start), fmt.Errorf("baton serve did not exit within %s of SIGTERM; killed it and its instances", grace)
}

// kill SIGKILLs baton and the process groups of its children (app
// instances run in their own groups, which a kill of baton leaves alive).
func (b *Baton) kill() {
	groups := childGroups(b.cmd.Process.Pid)
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	for _, g := range groups {
		_ = syscall.Kill(-g, syscall.SIGKILL)
	}
	<-b.exited
}

// childGroups returns the process groups of pid's children, from /proc.
func childGroups(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parens.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 3 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid && child != pid {
			if pgrp, err := strconv.Atoi(f[2]); err == nil && pgrp > 1 {
				out = append(out, pgrp)
			}
		}
	}
	return out
}

// Close stops baton (SIGTERM, then SIGKILL after 60 s) and removes Root
// unless Keep is set.
func (b *Baton) Close() error {
	_, err := b.Stop(60 * time.Second)
	if b.Keep {
		return err
	}
	if rmErr := os.RemoveAll(b.Root); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	return err
}

// LogTail returns the last n lines of baton's output.
func (b *Baton) LogTail(n int) string {
	f, err := os.Open(b.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return "baton serve's last output:\n  " + strings.Join(lines, "\n  ")
}

// Memory is a process's resident memory from /proc/PID/status, in KiB.
type Memory struct {
	RSS, HWM int64
}

func (m Memory) String() string {
	return fmt.Sprintf("VmRSS %.1f MiB, VmHWM %.1f MiB", float64(m.RSS)/1024, float64(m.HWM)/1024)
}

// Memory reads VmRSS and VmHWM of the running baton.
func (b *Baton) Memory() (Memory, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.PID()))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of baton serve: %w (needs Linux /proc)", err)
	}
	var m Memory
	for _, line := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n
		case "VmHWM":
			m.HWM = n
		}
	}
	return m, nil
}

// LoadAvg is the machine's load average over 1, 5 and 15 minutes, as
// /proc/loadavg says it ("" if it cannot be read).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// WriteReport prints a bench program's Markdown report and, when out is
// not "", writes it there too.
func WriteReport(md, out string) error {
	fmt.Println()
	fmt.Print(md)
	if out == "" {
		return nil
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return err
	}
	Step("wrote %s", out)
	return nil
}

// Step prints one stage line of a bench program, with the time.
func Step(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// StartAnnounced is Start for a bench program named prog: it prints the
// stages (Step) and returns, besides baton, the func to defer that stops
// it and says where the data stayed when keep is set.
func StartAnnounced(ctx context.Context, cfg Config, prog string, keep bool) (*Baton, func(), error) {
	Step("starting baton serve (%s, SQLite, temporary data directory)", cfg.Bin)
	b, err := Start(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	b.Keep = keep
	Step("baton serve pid %d: API %s, proxy %s, data %s", b.PID(), b.APIAddr, b.ProxyAddr, b.Data)
	return b, func() {
		Step("stopping baton serve (SIGTERM; it stops the app instances)")
		if err := b.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		}
		if b.Keep {
			Step("kept %s (data and serve.log)", b.Root)
		}
	}, nil
}
