package baton

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// ERATELIMITED refuses a request because its sender did too much at once
// (failed authentications, concurrent uploads): 429 with Retry-After.
const ERATELIMITED = "rate_limited"

// Scope is what a token may do. Scopes nest: admin ⊃ deploy ⊃ read, so a
// token has exactly one, the widest it needs.
type Scope string

// Token scopes.
const (
	// ScopeRead reads everything: apps, deployments, logs, status, metrics.
	ScopeRead Scope = "read"
	// ScopeDeploy also changes what serves an app: deploy, cancel, swap,
	// traffic, settings, revision operations; for every app or for a list.
	ScopeDeploy Scope = "deploy"
	// ScopeAdmin also manages apps, tokens, locks, freezes and the audit log.
	ScopeAdmin Scope = "admin"
)

// rank orders scopes; 0 is not a scope.
func (s Scope) rank() int {
	switch s {
	case ScopeRead:
		return 1
	case ScopeDeploy:
		return 2
	case ScopeAdmin:
		return 3
	}
	return 0
}

// Includes reports whether a token of scope s may do what needs scope need.
func (s Scope) Includes(need Scope) bool { return s.rank() > 0 && s.rank() >= need.rank() }

// ParseScope validates a scope name.
func ParseScope(s string) (Scope, error) {
	if sc := Scope(s); sc.rank() > 0 {
		return sc, nil
	}
	return "", Errorf(EINVALID, "scope %q is not one of read, deploy, admin", s)
}

// TokenPrefix starts every token secret, so leaked tokens are easy to grep
// for (secret scanners) and easy to tell from other credentials.
const TokenPrefix = "baton_"

// tokenBytes is the entropy of a token secret.
const tokenBytes = 32

// Token is an API access token. Only the SHA-256 hash of its secret is
// stored: a copy of the database does not let anyone in.
type Token struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope Scope  `json:"scope"`
	// Apps restricts a deploy token to these apps; empty means every app.
	// Reading stays global: a deploy token reads every app.
	Apps []string `json:"apps,omitempty"`
	// Hash is HashToken of the secret; never serialized.
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// NewTokenSecret returns a fresh random secret: TokenPrefix and 32 bytes
// from crypto/rand in unpadded base64url.
func NewTokenSecret() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// WellFormedToken reports whether s has the shape of a token secret. It
// lets a typo be told from a wrong token without a store lookup.
func WellFormedToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil && len(b) >= tokenBytes
}

// HashToken is what the store keeps of a secret: its SHA-256 in hex.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Expired reports whether the token had expired at now.
func (t Token) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// Allows returns nil if the token may do what needs scope need on app
// ("" for no particular app), else an EFORBIDDEN error that names the
// missing scope (and the app, for app-restricted deploy tokens).
func (t Token) Allows(need Scope, app string) error {
	if !t.Scope.Includes(need) {
		return Errorf(EFORBIDDEN, "token %q has scope %s; this needs scope %s (create one with `baton tokens create NAME --scope %s`)", t.Name, t.Scope, need, need)
	}
	if need == ScopeDeploy && t.Scope == ScopeDeploy && len(t.Apps) > 0 && !slices.Contains(t.Apps, app) {
		if app == "" {
			return Errorf(EFORBIDDEN, "token %q has scope deploy for %s only; this needs scope deploy for every app", t.Name, strings.Join(t.Apps, ", "))
		}
		return Errorf(EFORBIDDEN, "token %q has scope deploy for %s only; this needs scope deploy for app %s", t.Name, strings.Join(t.Apps, ", "), app)
	}
	return nil
}

// ValidateToken checks a token before it is stored.
func ValidateToken(t Token) error {
	if err := ValidateName("token", t.Name); err != nil {
		return err
	}
	if t.Scope.rank() == 0 {
		return Errorf(EINVALID, "scope %q is not one of read, deploy, admin", t.Scope)
	}
	if len(t.Apps) > 0 && t.Scope != ScopeDeploy {
		return Errorf(EINVALID, "only deploy tokens are limited to apps: a %s token covers every app", t.Scope)
	}
	for _, a := range t.Apps {
		if err := ValidateName("app", a); err != nil {
			return err
		}
	}
	if len(t.Hash) != sha256.Size*2 {
		return Errorf(EINVALID, "token %q has no secret hash", t.Name)
	}
	return nil
}

// TokenStore keeps access tokens (hashes, never secrets).
type TokenStore interface {
	// CreateToken stores a token; ECONFLICT if its name is taken.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// TokenByHash returns the token whose secret has the given hash;
	// ENOTFOUND if none.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// Tokens lists every token, oldest first.
	Tokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes the named token; ENOTFOUND if none. It refuses
	// (ECONFLICT) to remove the last admin token that has not expired at
	// now: nobody could manage tokens after that.
	DeleteToken(ctx context.Context, name string, now time.Time) error
	// TouchToken records that the token was used at at.
	TouchToken(ctx context.Context, id string, at time.Time) error
}
