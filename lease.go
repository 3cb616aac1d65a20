package baton

import "time"

// Lease is the lock on a key (an app, later a shared resource) held by one
// running operation. Token strictly increases for each new holder of the
// same key, so writes carrying an older token can be refused.
type Lease struct {
	Key        string    `json:"key"`
	Holder     string    `json:"holder"`
	Token      int64     `json:"token"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Expired reports whether the lease had lapsed at now.
func (l *Lease) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt) }

// AppLeaseKey is the lease key of an app's lock.
func AppLeaseKey(app string) string { return "app:" + app }

// ResourceLeaseKey is the lease key of a shared resource's lock (global
// across apps). Lock order: the app first, then resources in ascending name
// order, so two deployments can never wait for each other.
func ResourceLeaseKey(name string) string { return "resource:" + name }

// ErrStaleToken is returned by fenced writes whose token is no longer the
// current holder's.
var ErrStaleToken = &Error{Code: ECONFLICT, Message: "the lock this operation held has passed to another operation (stale fencing token)"}
