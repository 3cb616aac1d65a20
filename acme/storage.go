package acme

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/caddyserver/certmagic"
)

// Storage is a certmagic.Storage on baton's store: values in its
// CertStore (private keys sealed by the secrets wrapper), locks as leases
// of its LeaseStore, so every controller sharing the store shares the
// certificates, the ACME account and the challenge tokens, and obtains or
// renews each certificate once.
type Storage struct {
	store baton.Store
	// holder names this Storage's leases: the controller and a random
	// part, so two Storages of one controller exclude each other too.
	holder string
	// ttl is a lock's lease; it is renewed every ttl/3 while held, so a
	// controller that dies frees its locks within ttl.
	ttl time.Duration

	mu   sync.Mutex
	held map[string]*heldLock
}

type heldLock struct {
	fence baton.Fence
	stop  chan struct{}
	done  chan struct{}
}

var _ certmagic.Storage = (*Storage)(nil)

// DefaultLockTTL is how long a lock of a controller that stopped renewing
// it (it died) keeps others waiting.
const DefaultLockTTL = 30 * time.Second

// NewStorage returns a Storage on store for controller (ttl 0: DefaultLockTTL).
func NewStorage(store baton.Store, controller string, ttl time.Duration) *Storage {
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Storage{store: store, holder: "certs:" + controller + ":" + hex.EncodeToString(b[:]), ttl: ttl, held: map[string]*heldLock{}}
}

// notExist turns the store's ENOTFOUND into what certmagic expects.
func notExist(key string, err error) error {
	if baton.ErrorCode(err) == baton.ENOTFOUND {
		return fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return err
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	return s.store.PutCert(ctx, key, value)
}

// Load implements certmagic.Storage.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	e, err := s.store.Cert(ctx, key)
	if err != nil {
		return nil, notExist(key, err)
	}
	return e.Value, nil
}

// Delete implements certmagic.Storage: key and everything under it; a
// missing key is no error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := s.store.DeleteCert(ctx, key); err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		return err
	}
	return nil
}

// Exists implements certmagic.Storage: a value or a "directory".
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List implements certmagic.Storage. Recursive, it lists every value under
// path; otherwise path's direct children, values and "directories" alike.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	path = strings.TrimSuffix(path, "/")
	keys, err := s.store.CertKeys(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	if recursive {
		return keys, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		rest := k
		if path != "" {
			rest = k[len(path)+1:]
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		child := rest
		if path != "" {
			child = path + "/" + rest
		}
		if !seen[child] {
			seen[child] = true
			out = append(out, child)
		}
	}
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	e, err := s.store.Cert(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: e.Modified, Size: int64(len(e.Value)), IsTerminal: true}, nil
	}
	if baton.ErrorCode(err) != baton.ENOTFOUND {
		return certmagic.KeyInfo{}, err
	}
	keys, err := s.store.CertKeys(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// lockPoll bounds the wait between two attempts at a held lock.
const lockPoll = 250 * time.Millisecond

// Lock implements certmagic.Locker: it takes the lease of name, waiting
// while another holds it (or until ctx ends), and renews it until Unlock.
func (s *Storage) Lock(ctx context.Context, name string) error {
	key := baton.CertLockKey(name)
	wait := 10 * time.Millisecond
	for {
		l, err := s.store.AcquireLease(ctx, key, s.holder, s.ttl)
		if err == nil {
			h := &heldLock{fence: baton.Fence{Key: key, Token: l.Token}, stop: make(chan struct{}), done: make(chan struct{})}
			s.mu.Lock()
			s.held[name] = h
			s.mu.Unlock()
			go s.keep(h)
			return nil
		}
		if baton.ErrorCode(err) != baton.ECONFLICT {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, lockPoll)
	}
}

// keep renews h's lease until Unlock stops it.
func (s *Storage) keep(h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
			_, err := s.store.RenewLease(ctx, h.fence, s.ttl)
			cancel()
			if baton.ErrorCode(err) == baton.ECONFLICT || err == baton.ErrStaleToken {
				return // lost (broken by hand, or expired while the store was away)
			}
		}
	}
}

// Unlock implements certmagic.Locker.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("unlock %s: not locked here", name)
	}
	close(h.stop)
	<-h.done
	if err := s.store.ReleaseLease(ctx, h.fence); err != nil && err != baton.ErrStaleToken {
		return fmt.Errorf("unlock %s: %w", name, err)
	}
	return nil
}

// Close releases every lock still held (a controller shutting down).
func (s *Storage) Close() error {
	s.mu.Lock()
	names := make([]string, 0, len(s.held))
	for n := range s.held {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Unlock(ctx, n)
		cancel()
	}
	return nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "baton store" }
