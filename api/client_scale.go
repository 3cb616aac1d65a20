package api

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/batonhq/baton"
)

// ScaleOptions is a scale request with what every operation takes.
type ScaleOptions struct {
	ScaleRequest
	Policy  baton.Policy
	Author  string
	Message string
}

// Scale queues a scale of app's slot (o.Slot "" is production) and
// returns the queued operation; follow it like a deployment.
func (c *Client) Scale(ctx context.Context, app string, o ScaleOptions) (baton.Deployment, error) {
	b, err := json.Marshal(o.ScaleRequest)
	if err != nil {
		return baton.Deployment{}, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"on_conflict": string(o.Policy), "author": o.Author, "message": o.Message} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var d baton.Deployment
	_, err = c.do(ctx, "POST", "/api/v1/apps/"+url.PathEscape(app)+"/scale?"+q.Encode(), strings.NewReader(string(b)), nil, &d)
	return d, err
}

// DrainHost asks host id to drain (drain) or to take instances again, and
// returns the host as it stands.
func (c *Client) DrainHost(ctx context.Context, id string, drain bool) (baton.Host, error) {
	op := "undrain"
	if drain {
		op = "drain"
	}
	var h baton.Host
	_, err := c.do(ctx, "POST", "/api/v1/hosts/"+url.PathEscape(id)+"/"+op, nil, nil, &h)
	return h, err
}
