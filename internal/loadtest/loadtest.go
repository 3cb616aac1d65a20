// Package loadtest runs the steady request load that tests keep up across
// a deployment, a swap or a restart, and counts what it got: answers per
// app version, and failures with what went wrong.
package loadtest

import (
	"fmt"
	"sync"
	"time"
)

// Get sends one request: the answer's status, the app version it names,
// its body (for a failure's message), or the error that kept it from
// being answered.
type Get func() (status int, version, body string, err error)

// Load is requests sent by a few workers until Finish.
type Load struct {
	mu       sync.Mutex
	versions map[string]int
	failures []string
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// Start sends get on n workers, each pausing pace between its requests
// (0: none), until Finish. Anything but a 200 is a failure.
func Start(n int, pace time.Duration, get Get) *Load {
	l := &Load{versions: map[string]int{}, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go l.work(pace, get)
	}
	return l
}

func (l *Load) work(pace time.Duration, get Get) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		status, version, body, err := get()
		l.mu.Lock()
		switch {
		case err != nil:
			l.failures = append(l.failures, err.Error())
		case status != 200:
			l.failures = append(l.failures, fmt.Sprintf("status %d: %.200s", status, body))
		default:
			l.versions[version]++
		}
		l.mu.Unlock()
		if pace > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(pace):
			}
		}
	}
}

// Count is how many answers named version so far.
func (l *Load) Count(version string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[version]
}

// Finish stops the workers, waits for them, and returns the answers per
// version and the failures. It may be called more than once.
func (l *Load) Finish() (map[string]int, []string) {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions, l.failures
}
