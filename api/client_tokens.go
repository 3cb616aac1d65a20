package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/batonhq/baton"
)

// CreateToken creates a token; the answer carries its secret, shown once.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (CreatedToken, error) {
	var t CreatedToken
	b, _ := json.Marshal(req)
	_, err := c.do(ctx, "POST", "/api/v1/tokens", strings.NewReader(string(b)), nil, &t)
	return t, err
}

// Tokens lists the tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]baton.Token, error) {
	var out []baton.Token
	_, err := c.do(ctx, "GET", "/api/v1/tokens", nil, nil, &out)
	return out, err
}

// RevokeToken deletes the named token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// WhoAmI returns the token the client authenticates with.
func (c *Client) WhoAmI(ctx context.Context) (baton.Token, error) {
	var t baton.Token
	_, err := c.do(ctx, "GET", "/api/v1/whoami", nil, nil, &t)
	return t, err
}

// Audit returns the newest audit entries first, at most limit.
func (c *Client) Audit(ctx context.Context, limit int) ([]baton.AuditEntry, error) {
	var out []baton.AuditEntry
	_, err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/audit?limit=%d", limit), nil, nil, &out)
	return out, err
}

// GC runs a collection of what the retention policy no longer keeps, or
// with dryRun reports what one would remove.
func (c *Client) GC(ctx context.Context, dryRun bool) (baton.GCReport, error) {
	var rep baton.GCReport
	_, err := c.do(ctx, "POST", fmt.Sprintf("/api/v1/gc?dry_run=%t", dryRun), nil, nil, &rep)
	return rep, err
}
