package server

// Restarting baton in place: the running process hands its listening
// sockets, its data-directory lock and its apps' running instances (with
// their output pipes) to a new process of the same executable, which adopts
// them. Requests keep being accepted throughout (both processes accept on
// the same sockets until the new one is ready), and no app restarts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonhq/baton/coordinator"
	"github.com/batonhq/baton/supervisor"
)

// handoffEnv names, in the new process's environment, the file that
// describes what the old process handed over.
const handoffEnv = "BATON_HANDOFF"

// handoff is that file's content. Descriptors are numbered as the new
// process sees them: 3 + their index in exec.Cmd.ExtraFiles.
type handoff struct {
	Lock  int `json:"lock_fd"`
	API   int `json:"api_fd"`
	Proxy int `json:"proxy_fd"`
	Ready int `json:"ready_fd"` // the new process writes one byte once it serves
	// HTTP is the plain-HTTP listener's (--proxy-http), 0 without one.
	HTTP int `json:"http_fd,omitempty"`
	// Peer is the peer listener's (shared stores), 0 without one.
	Peer   int                       `json:"peer_fd,omitempty"`
	Groups []coordinator.HandedGroup `json:"groups"`
	Pipes  [][]int                   `json:"pipes"` // per group and instance: its output pipe's fd, 0 if none
}

// RestartTimeout bounds a restart in place: the running deployment must
// finish and the new process must be ready within it.
const RestartTimeout = 2 * time.Minute

// Restart hands everything to a new process of baton's executable (started
// with the same arguments) and returns once that process serves; then call
// Close, which finishes the requests in flight here and stops nothing
// else. Deployments running here finish first; queued ones stay queued for
// the new process. If the executable does not run, or a deployment does
// not finish in time, Restart fails and this process goes on serving. If
// the new process fails once started, the error says so and this process
// cannot go on: Close it and start baton again (the next start stops the
// instances left running).
func (s *Server) Restart(ctx context.Context) error {
	if s.handedOff {
		return errors.New("already handed off")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: find baton's executable: %w", err)
	}
	// A binary that does not even run (a broken or wrong upgrade) is
	// refused while this process still serves everything.
	if out, err := exec.CommandContext(ctx, exe, "serve", "--help").CombinedOutput(); err != nil {
		return fmt.Errorf("restart: %s does not run (%v: %.200s); nothing was handed over and this baton goes on serving: fix the binary and send SIGUSR2 again", exe, err, strings.TrimSpace(string(out)))
	}
	apiFile, err := s.apiTCP.File()
	if err != nil {
		return fmt.Errorf("restart: share the API socket: %w", err)
	}
	defer apiFile.Close()
	proxyFile, err := s.proxyTCP.File()
	if err != nil {
		return fmt.Errorf("restart: share the proxy socket: %w", err)
	}
	defer proxyFile.Close()
	// The optional listeners too, before anything is stopped: a failure
	// here leaves this process serving as it was.
	httpFile, err := listenerFile(s.httpLn, "plain-HTTP")
	if err != nil {
		return err
	}
	defer httpFile.Close()
	peerFile, err := listenerFile(s.peerLn, "peer")
	if err != nil {
		return err
	}
	defer peerFile.Close()

	// The API goes on serving while the running deployment finishes;
	// what it queues meanwhile runs in the new process.
	if err := s.coord.Pause(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	// New API connections wait in the socket's backlog for the new process.
	if err := s.stopAPI(); err != nil {
		s.log.Warn("restart", "err", err)
	}
	groups := s.coord.Handoff()
	s.handedOff = true
	if s.stopSharing != nil {
		s.stopSharing()
		s.stopSharing = nil
	}
	// The new process opens the store itself.
	err = s.store.Close()
	s.store = nil
	if err != nil {
		s.log.Warn("close the store before the handoff", "err", err)
	}

	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	defer readyR.Close()
	files := []*os.File{s.dirLock, apiFile, proxyFile, readyW}
	h := handoff{Lock: 3, API: 4, Proxy: 5, Ready: 6, Groups: groups}
	for _, g := range groups {
		fds := make([]int, len(g.Instances))
		for i, in := range g.Instances {
			if in.Output != nil {
				fds[i] = 3 + len(files)
				files = append(files, in.Output)
			}
		}
		h.Pipes = append(h.Pipes, fds)
	}
	if httpFile != nil {
		h.HTTP = 3 + len(files)
		files = append(files, httpFile)
	}
	if peerFile != nil {
		h.Peer = 3 + len(files)
		files = append(files, peerFile)
	}
	path := filepath.Join(s.cfg.DataDir, "handoff.json")
	data, err := json.Marshal(h)
	if err == nil {
		err = os.WriteFile(path, data, 0o600)
	}
	if err != nil {
		readyW.Close()
		return fmt.Errorf("restart: write %s: %w", path, err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), handoffEnv+"="+path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = files
	err = cmd.Start()
	readyW.Close() // the new process holds the only write end now
	if err != nil {
		return fmt.Errorf("restart: start %s: %w; start baton again", exe, err)
	}
	pid := cmd.Process.Pid
	// Not waited for: it outlives this process. Its own end is its business.
	_ = cmd.Process.Release()
	ready := make(chan error, 1)
	go func() {
		// One byte when it serves; EOF when it died first.
		_, err := readyR.Read(make([]byte, 1))
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("restart: the new baton process (pid %d) exited before it served (see its log above); start baton again: %w", pid, err)
		}
	case <-ctx.Done():
		readyR.Close()
		return fmt.Errorf("restart: the new baton process (pid %d) was not ready in time: %w", pid, ctx.Err())
	}
	s.log.Info("handed over to the new baton process; finishing the requests in flight", "pid", pid)
	return nil
}

// HandedOff reports whether Restart handed everything to a new process
// (even if that process then failed): this one can only Close.
func (s *Server) HandedOff() bool { return s.handedOff }

// inheritHandoff reads what the previous process handed over, when this
// process was started by Restart, and takes ownership of the descriptors.
// It returns nil when there is no handoff.
func (s *Server) inheritHandoff() (*handoff, error) {
	path := os.Getenv(handoffEnv)
	if path == "" {
		return nil, nil
	}
	os.Unsetenv(handoffEnv)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the handoff from the previous baton: %w", err)
	}
	_ = os.Remove(path)
	var h handoff
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("read the handoff from the previous baton: %w", err)
	}
	s.dirLock = os.NewFile(uintptr(h.Lock), "baton.lock")
	writePID(s.dirLock)
	if s.apiLn, err = net.FileListener(os.NewFile(uintptr(h.API), "api")); err != nil {
		return nil, fmt.Errorf("inherit the API socket: %w", err)
	}
	// net.FileListener has no keep-alive setting: after a restart in
	// place, accepted connections get Go's TCP keep-alive probes, as
	// net.Listen's would (proxy.Listen's do not; four syscalls apart).
	if s.proxyLn, err = net.FileListener(os.NewFile(uintptr(h.Proxy), "proxy")); err != nil {
		return nil, fmt.Errorf("inherit the proxy socket: %w", err)
	}
	s.ready = os.NewFile(uintptr(h.Ready), "ready")
	if h.HTTP > 0 {
		if s.httpLn, err = net.FileListener(os.NewFile(uintptr(h.HTTP), "http")); err != nil {
			return nil, fmt.Errorf("inherit the plain-HTTP socket: %w", err)
		}
	}
	if h.Peer > 0 {
		if s.peerLn, err = net.FileListener(os.NewFile(uintptr(h.Peer), "peer")); err != nil {
			return nil, fmt.Errorf("inherit the peer socket: %w", err)
		}
	}
	for i := range h.Groups {
		for j := range h.Groups[i].Instances {
			if i < len(h.Pipes) && j < len(h.Pipes[i]) && h.Pipes[i][j] > 0 {
				fd := h.Pipes[i][j]
				if h.Groups[i].Instances[j].Output, err = supervisor.InheritedPipe(uintptr(fd), fmt.Sprintf("output:%d", fd)); err != nil {
					return nil, err
				}
			}
		}
	}
	s.log.Info("taking over from the previous baton process", "groups", len(h.Groups))
	return &h, nil
}

// groups returns the handed instances (none without a handoff).
func (h *handoff) groups() []coordinator.HandedGroup {
	if h == nil {
		return nil
	}
	return h.Groups
}

// signalReady tells the previous process that this one serves.
func (s *Server) signalReady() {
	if s.ready == nil {
		return
	}
	_, _ = s.ready.Write([]byte{1})
	s.ready.Close()
	s.ready = nil
}

// listenerFile shares a listener's socket with the next process; nil for
// a listener this baton does not have (what names it in errors).
func listenerFile(ln net.Listener, what string) (*os.File, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, nil
	}
	f, err := tl.File()
	if err != nil {
		return nil, fmt.Errorf("restart: share the %s socket: %w", what, err)
	}
	return f, nil
}
