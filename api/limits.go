package api

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// failLimiter counts failed authentications per address with a token
// bucket: FailLimit failures at once, then one per minute/FailLimit.
type failLimiter struct {
	mu        sync.Mutex
	perMinute float64
	buckets   map[string]*bucket
}

type bucket struct {
	left float64 // failures still allowed
	at   time.Time
}

// maxTrackedAddrs bounds the memory a flood from many addresses can take;
// past it, addresses whose bucket is full again are forgotten.
const maxTrackedAddrs = 10000

func newFailLimiter(perMinute int) *failLimiter {
	return &failLimiter{perMinute: float64(perMinute), buckets: map[string]*bucket{}}
}

// refill returns addr's bucket as of now, nil if it is full.
func (l *failLimiter) refill(addr string, now time.Time) *bucket {
	b := l.buckets[addr]
	if b == nil {
		return nil
	}
	if el := now.Sub(b.at); el > 0 {
		b.left += el.Minutes() * l.perMinute
		b.at = now
	}
	if b.left >= l.perMinute {
		delete(l.buckets, addr)
		return nil
	}
	return b
}

// wait returns how long addr must wait before it may try again; 0 if it may.
func (l *failLimiter) wait(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr, now)
	if b == nil || b.left >= 1 {
		return 0
	}
	return time.Duration((1 - b.left) / l.perMinute * float64(time.Minute))
}

// fail records a failed authentication of addr.
func (l *failLimiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(addr, now)
	if b == nil {
		if len(l.buckets) >= maxTrackedAddrs {
			for a := range l.buckets {
				l.refill(a, now)
			}
		}
		b = &bucket{left: l.perMinute, at: now}
		l.buckets[addr] = b
	}
	b.left = max(b.left-1, 0)
}

// uploadSlots bounds the artifact uploads in progress at once: each holds
// a connection and writes to disk until its body is stored. An upload that
// finds them all taken waits up to wait (a burst of CI pipelines is served
// in turn), then is refused.
type uploadSlots struct {
	ch   chan struct{}
	wait time.Duration
}

// acquire takes a slot or refuses with ERATELIMITED; release gives it back.
func (u uploadSlots) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-u.ch }
	select {
	case u.ch <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(u.wait)
	defer t.Stop()
	select {
	case u.ch <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, baton.Errorf(baton.EUNAVAILABLE, "the upload was abandoned while it waited for a slot")
	case <-t.C:
		e := baton.Errorf(baton.ERATELIMITED, "%d uploads are in progress, the most this server takes at once, and none ended within %s; retry in a few seconds", cap(u.ch), u.wait)
		e.RetryAfterSeconds = 5
		return nil, e
	}
}

// uploadIdle is how long an upload may send nothing before the server
// drops it: a stalled client must not hold an upload slot forever.
const uploadIdle = time.Minute

// idleBody is a request body whose every read must make progress within
// uploadIdle. The deadline is cleared at the end of the body, so the rest
// of the request (and the server's watch for a disconnect) is unaffected.
type idleBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(uploadIdle))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
