package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
)

// AppLogOptions selects an app's instance output.
type AppLogOptions struct {
	Slot, Revision string
	// Since is where the lines start, as baton.ParseSince reads it: a
	// duration back from the server's now ("10m"; "0s": only what comes
	// from now on) or an RFC 3339 time; "" for everything kept.
	Since string
	// Limit keeps the newest lines (0: the server's default, 1000).
	Limit int
}

func (o AppLogOptions) query(follow bool) string {
	v := url.Values{}
	if o.Slot != "" {
		v.Set("slot", o.Slot)
	}
	if o.Revision != "" {
		v.Set("revision", o.Revision)
	}
	if o.Since != "" {
		v.Set("since", o.Since)
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if follow {
		v.Set("follow", "1")
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// AppLogs returns the selected lines of an app's instance output.
func (c *Client) AppLogs(ctx context.Context, app string, o AppLogOptions) ([]baton.AppLogLine, error) {
	var out []baton.AppLogLine
	_, err := c.do(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/logs"+o.query(false), nil, nil, &out)
	return out, err
}

// FollowAppLogs calls fn with each selected line of the app's instance
// output, then with each new one, across deployments, until ctx ends; it
// reconnects (resuming after the last line) when the stream breaks.
func (c *Client) FollowAppLogs(ctx context.Context, app string, o AppLogOptions, fn func(baton.AppLogLine)) error {
	lastID := ""
	err := reconnect(ctx, func() (bool, error) {
		err := c.followAppOnce(ctx, app, o, &lastID, fn)
		return err == nil, err // a stream the server ended cleanly is over
	})
	if ctx.Err() != nil {
		return nil // following until Ctrl-C is how it ends
	}
	return err
}

func (c *Client) followAppOnce(ctx context.Context, app string, o AppLogOptions, lastID *string, fn func(baton.AppLogLine)) error {
	req, err := c.newRequest(ctx, "GET", "/api/v1/apps/"+url.PathEscape(app)+"/logs"+o.query(true), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var l baton.AppLogLine
		if json.Unmarshal([]byte(data), &l) == nil {
			if l.ID != "" {
				*lastID = l.ID
			}
			fn(l)
		}
	}
	return baton.Errorf(baton.EUNAVAILABLE, "the log stream of %s ended", app)
}
