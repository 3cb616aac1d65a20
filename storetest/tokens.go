package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// newToken returns a valid token with a fresh secret; it returns the
// secret too.
func newToken(t testing.TB, name string, scope baton.Scope, apps ...string) (baton.Token, string) {
	t.Helper()
	secret, err := baton.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	return baton.Token{ID: baton.NewID("t-"), Name: name, Scope: scope, Apps: apps, Hash: baton.HashToken(secret), CreatedBy: "test"}, secret
}

// testTokens: tokens are found by the hash of their secret only, names
// are unique, last use and expiry round-trip, and the last admin token
// cannot be revoked.
func testTokens(t *testing.T, s baton.Store) {
	ctx := context.Background()
	if ts := must(s.Tokens(ctx)).on(t); len(ts) != 0 {
		t.Fatalf("a new store has tokens: %+v", ts)
	}
	admin, adminSecret := newToken(t, "admin", baton.ScopeAdmin)
	created := must(s.CreateToken(ctx, admin)).on(t)
	if created.CreatedAt.IsZero() || created.Name != "admin" {
		t.Fatalf("created = %+v", created)
	}
	again, _ := newToken(t, "admin", baton.ScopeRead)
	_, err := s.CreateToken(ctx, again)
	wantCode(t, err, baton.ECONFLICT)

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	ci, ciSecret := newToken(t, "ci", baton.ScopeDeploy, "hello", "web")
	ci.ExpiresAt = &expires
	must(s.CreateToken(ctx, ci)).on(t)

	got := must(s.TokenByHash(ctx, baton.HashToken(ciSecret))).on(t)
	if got.ID != ci.ID || got.Scope != baton.ScopeDeploy || len(got.Apps) != 2 || got.Apps[0] != "hello" ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.LastUsedAt != nil || got.CreatedBy != "test" {
		t.Fatalf("TokenByHash = %+v", got)
	}
	if got := must(s.TokenByHash(ctx, baton.HashToken(adminSecret))).on(t); got.Apps != nil || got.ExpiresAt != nil {
		t.Fatalf("admin token = %+v, want no apps and no expiry", got)
	}
	_, err = s.TokenByHash(ctx, baton.HashToken(adminSecret+"x"))
	wantCode(t, err, baton.ENOTFOUND)
	_, err = s.TokenByHash(ctx, adminSecret) // the secret itself is not a key
	wantCode(t, err, baton.ENOTFOUND)

	used := time.Now().UTC().Truncate(time.Microsecond)
	if err := s.TouchToken(ctx, ci.ID, used); err != nil {
		t.Fatal(err)
	}
	if got := must(s.TokenByHash(ctx, ci.Hash)).on(t); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Fatalf("last used = %v, want %v", got.LastUsedAt, used)
	}

	ts := must(s.Tokens(ctx)).on(t)
	if len(ts) != 2 || ts[0].Name != "admin" || ts[1].Name != "ci" {
		t.Fatalf("Tokens = %+v", ts)
	}

	invalid, _ := newToken(t, "Bad Name", baton.ScopeRead)
	_, err = s.CreateToken(ctx, invalid)
	wantCode(t, err, baton.EINVALID)
	readOnApp, _ := newToken(t, "reader", baton.ScopeRead, "hello")
	_, err = s.CreateToken(ctx, readOnApp)
	wantCode(t, err, baton.EINVALID)

	now := time.Now()
	wantCode(t, s.DeleteToken(ctx, "admin", now), baton.ECONFLICT)
	// An expired admin token does not count as a way back in.
	past := now.Add(-time.Minute)
	old, _ := newToken(t, "old-admin", baton.ScopeAdmin)
	old.ExpiresAt = &past
	must(s.CreateToken(ctx, old)).on(t)
	wantCode(t, s.DeleteToken(ctx, "admin", now), baton.ECONFLICT)
	second, _ := newToken(t, "admin2", baton.ScopeAdmin)
	must(s.CreateToken(ctx, second)).on(t)
	if err := s.DeleteToken(ctx, "admin", now); err != nil {
		t.Fatal(err)
	}
	_, err = s.TokenByHash(ctx, baton.HashToken(adminSecret))
	wantCode(t, err, baton.ENOTFOUND)
	wantCode(t, s.DeleteToken(ctx, "admin", now), baton.ENOTFOUND)
	if err := s.DeleteToken(ctx, "ci", now); err != nil {
		t.Fatal(err)
	}
}
