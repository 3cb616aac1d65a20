package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/batonhq/baton"
)

// CreateHook adds a webhook.
func (c *Client) CreateHook(ctx context.Context, req HookRequest) (baton.Hook, error) {
	var h baton.Hook
	b, _ := json.Marshal(req)
	_, err := c.do(ctx, "POST", "/api/v1/hooks", strings.NewReader(string(b)), nil, &h)
	return h, err
}

// Hooks lists the webhooks (never their secrets).
func (c *Client) Hooks(ctx context.Context) ([]baton.Hook, error) {
	var out []baton.Hook
	_, err := c.do(ctx, "GET", "/api/v1/hooks", nil, nil, &out)
	return out, err
}

// RemoveHook deletes a webhook and its deliveries.
func (c *Client) RemoveHook(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/hooks/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// TestHook queues a ping event for a webhook and returns its event id.
func (c *Client) TestHook(ctx context.Context, id string) (string, error) {
	var out PingResult
	_, err := c.do(ctx, "POST", "/api/v1/hooks/"+url.PathEscape(id)+"/test", nil, nil, &out)
	return out.EventID, err
}

// Deliveries lists the newest webhook deliveries, of one hook or (hook "")
// of all, at most limit.
func (c *Client) Deliveries(ctx context.Context, hook string, limit int) ([]baton.Delivery, error) {
	var out []baton.Delivery
	path := "/api/v1/hooks/deliveries"
	if hook != "" {
		path = "/api/v1/hooks/" + url.PathEscape(hook) + "/deliveries"
	}
	_, err := c.do(ctx, "GET", fmt.Sprintf("%s?limit=%d", path, limit), nil, nil, &out)
	return out, err
}
