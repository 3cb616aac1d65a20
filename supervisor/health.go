package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// failuresToUnhealthy is how many checks in a row must fail before a
// healthy instance is reported unhealthy, so one slow answer (a GC pause,
// a busy moment) does not pull an instance out of rotation. A single passing
// check makes an instance healthy again, and an instance whose process
// exits is unhealthy at once.
const failuresToUnhealthy = 2

// maxHealthBody is how much of a health response is read before the
// connection is closed; the body is never looked at.
const maxHealthBody = 64 << 10

// HealthCheck is the HTTP check every instance must pass: GET Path must
// answer 2xx within Timeout. It is repeated every Interval for as long as
// the instance runs. Zero fields take baton's manifest defaults.
type HealthCheck struct {
	Path     string
	Interval time.Duration
	Timeout  time.Duration
}

// checker performs health checks for one group.
type checker struct {
	client  *http.Client
	path    string
	timeout time.Duration
}

// newChecker returns a checker with its own client: keep-alives off so a
// check always proves a fresh connection can be made (and no idle
// connection or its goroutines outlive the group), redirects not followed
// because only 2xx counts.
func newChecker(h HealthCheck) *checker {
	transport := &http.Transport{
		Proxy:                 nil, // checks go to 127.0.0.1, never through a proxy
		DialContext:           (&net.Dialer{Timeout: h.Timeout}).DialContext,
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: h.Timeout,
	}
	return &checker{
		client: &http.Client{
			Transport: transport,
			Timeout:   h.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		path:    h.Path,
		timeout: h.Timeout,
	}
}

// check requests the health path of addr once. It returns whether the
// instance passed and a short description of the result for people
// ("ok", "status 500", "connection refused").
func (c *checker) check(ctx context.Context, addr string) (ok bool, result string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.path, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return false, c.describe(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Sprintf("status %d", resp.StatusCode)
	}
	return true, "ok"
}

// describe turns a failed request into the few words an operator needs.
func (c *checker) describe(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", c.timeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	default:
		return err.Error()
	}
}

// close releases the checker's transport.
func (c *checker) close() {
	c.client.CloseIdleConnections()
}

// StartingRecheck is how long to wait before checking again an instance
// that has not passed a check yet, elapsed after its start: 5 ms during
// its first 100 ms, then as long as it has been starting (the waits
// double), never longer than interval (the manifest's). The first check,
// made as the process starts, almost never passes; an app that listens
// 15 ms later (examples/hello does) would otherwise wait a whole interval
// (500 ms by default) before its deployment goes on. A refused connection
// costs the app nothing, and an app slow to start is asked about twenty
// times more than the interval alone would ask it, most in its first
// 100 ms.
func StartingRecheck(elapsed, interval time.Duration) time.Duration {
	wait := 5 * time.Millisecond
	if elapsed > 100*time.Millisecond {
		wait = elapsed
	}
	return min(wait, interval)
}

// healthLoop checks the instance at once, again and again at the waits of
// StartingRecheck until it passes, and then every interval until ctx ends
// (the process exited or the group is stopping).
func (in *instance) healthLoop(ctx context.Context) {
	interval := in.g.spec.Health.Interval
	start := time.Now()
	passed := false
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		ok, result := in.g.checker.check(ctx, in.addr)
		if ctx.Err() != nil {
			// The check was cut short by the exit or stop, not by the app.
			return
		}
		if ok {
			ok, result = in.confirmOwner(result)
		}
		passed = in.recordCheck(ok, result) || passed
		wait := interval
		if !passed {
			wait = StartingRecheck(time.Since(start), interval)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// confirmOwner, before the instance first counts as healthy, checks that
// its own process (or a descendant) listens on its port: a passed check
// answered by another program must not make it healthy (portowner.go).
// When /proc cannot tell, the check stands.
func (in *instance) confirmOwner(result string) (bool, string) {
	in.g.mu.Lock()
	healthy, p := in.healthy, in.proc
	in.g.mu.Unlock()
	if healthy {
		return true, result
	}
	if p == nil {
		return false, "the instance's process is not running"
	}
	owned, err := listensOn(p.pid, in.port)
	if err == nil && !owned {
		return false, fmt.Sprintf("port %d answers, but not from this instance's process: another program listens there", in.port)
	}
	return true, result
}

// recordCheck applies one check result and reports a transition. It
// returns whether the instance is healthy now.
func (in *instance) recordCheck(ok bool, result string) bool {
	g := in.g
	g.mu.Lock()
	in.lastCheck = result
	changed := false
	if ok {
		in.failures = 0
		if !in.healthy {
			in.healthy, changed = true, true
		}
	} else {
		in.failures++
		if in.healthy && in.failures >= failuresToUnhealthy {
			in.healthy, changed = false, true
		}
	}
	healthy := in.healthy
	report := changed && g.live && !g.stopping
	if changed {
		g.broadcastLocked()
	}
	g.mu.Unlock()

	if changed {
		g.log.Info("instance health changed", "instance", in.index, "addr", in.addr, "healthy", healthy, "check", result)
	}
	if report && g.spec.OnHealth != nil {
		g.spec.OnHealth(in.addr, healthy)
	}
	return healthy
}
