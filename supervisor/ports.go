package supervisor

import (
	"fmt"
	"net"
	"sync"
)

// maxPortAttempts bounds how often allocate asks the kernel again when it
// hands out a port that another group already owns.
const maxPortAttempts = 100

// portSet hands out free 127.0.0.1 ports and remembers which ones belong to
// groups that are still running. The kernel only guarantees a port is free
// while we hold it; once the probe listener is closed it may give the same
// port out again, so without this set two groups started close together
// could be told to bind the same port.
//
// A port is still only "probably free": any other program on the machine can
// take it between the probe and the app binding it. The app then exits and
// the caller sees an ordinary start failure.
type portSet struct {
	mu    sync.Mutex
	owned map[int]struct{}
}

// allocate returns n distinct free ports and marks them owned.
func (p *portSet) allocate(n int) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned == nil {
		p.owned = make(map[int]struct{})
	}
	ports := make([]int, 0, n)
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts >= maxPortAttempts {
			p.releaseLocked(ports)
			return nil, fmt.Errorf("allocate port: no unused port after %d attempts", attempts)
		}
		port, err := probePort()
		if err != nil {
			p.releaseLocked(ports)
			return nil, fmt.Errorf("allocate port: %w", err)
		}
		if _, taken := p.owned[port]; taken {
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

// probePort asks the kernel for a free port by binding port 0.
func probePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}
