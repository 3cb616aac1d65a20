package supervisor

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
)

// maxPortAttempts bounds how many candidate ports allocate tries for one
// call before it gives up.
const maxPortAttempts = 1000

// Instances listen on ports from [dynamicPortMin, dynamicPortMax), below
// the kernel's ephemeral range (Linux: 32768–60999), as Nomad does. A port
// the kernel handed out for a probe on :0 could be taken by any outgoing
// connection's source port before the app bound it: on a busy machine
// (the test suite, a host proxying thousands of connections) that
// happened, and the instance failed with "address already in use".
// Outgoing connections never take ports outside the ephemeral range.
const (
	dynamicPortMin = 20000
	dynamicPortMax = 32768
)

// portSet hands out free 127.0.0.1 ports and remembers which ones belong to
// groups that are still running. A port is free when a probe can bind it;
// the set keeps two groups started close together from being told the
// same one, and its cursor (starting at a random place, moving on with
// each port) keeps another baton on the machine, and this one, from
// reusing a port just released.
//
// A port is still only "probably free": another program can bind it
// between the probe and the app. The app then exits, the other
// program's answers to its health checks do not count (portowner.go),
// and the start fails with ErrPortTaken, which the coordinator answers by
// starting the instances again on other ports.
type portSet struct {
	mu     sync.Mutex
	owned  map[int]struct{}
	lo, hi int // the range, set on first use
	next   int // the next candidate; 0 before first use
}

// allocate returns n distinct free ports and marks them owned.
func (p *portSet) allocate(n int) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned == nil {
		p.owned = make(map[int]struct{})
	}
	if p.next == 0 {
		p.lo, p.hi = dynamicRange()
		p.next = p.lo + rand.IntN(p.hi-p.lo)
	}
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts >= maxPortAttempts {
			p.releaseLocked(ports)
			return nil, fmt.Errorf("allocate port: no free port in %d–%d after %d attempts; stop what listens there or free some", p.lo, p.hi-1, attempts)
		}
		port := p.next
		if p.next++; p.next >= p.hi {
			p.next = p.lo
		}
		if _, taken := p.owned[port]; taken || !bindable(port) {
			continue
		}
		p.owned[port] = struct{}{}
		ports = append(ports, port)
	}
	return ports, nil
}

// reserve marks the given ports owned (adopted instances keep theirs); it
// fails if one is owned already.
func (p *portSet) reserve(ports []int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned == nil {
		p.owned = make(map[int]struct{})
	}
	for _, port := range ports {
		if _, taken := p.owned[port]; taken {
			return fmt.Errorf("reserve port %d: another group owns it", port)
		}
	}
	for _, port := range ports {
		p.owned[port] = struct{}{}
	}
	return nil
}

// release gives ports back once nothing listens on them any more.
func (p *portSet) release(ports []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(ports)
}

func (p *portSet) releaseLocked(ports []int) {
	for _, port := range ports {
		delete(p.owned, port)
	}
}

// bindable reports whether a listener can bind 127.0.0.1:port now.
func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// dynamicRange is [dynamicPortMin, dynamicPortMax) cut short where the
// kernel's ephemeral range begins, if that is lower.
func dynamicRange() (lo, hi int) {
	lo, hi = dynamicPortMin, dynamicPortMax
	if elo, _, err := ephemeralRange(); err == nil && elo > lo && elo < hi {
		hi = elo
	}
	return lo, hi
}

// ephemeralRange is the kernel's range for outgoing connections' source
// ports, both ends included (Linux; an error elsewhere).
func ephemeralRange() (lo, hi int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(string(b), &lo, &hi)
	return lo, hi, err
}
