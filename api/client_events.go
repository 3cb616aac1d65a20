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

// WatchEvents follows an app's event stream (every app's with app ""),
// calling fn with each event, until ctx ends or fn returns false. A broken
// stream is resumed with Last-Event-ID; after is where to start (-1: with
// a "status" snapshot).
func (c *Client) WatchEvents(ctx context.Context, app string, after int64, fn func(AppEvent) bool) error {
	p := "/api/v1/events"
	if app != "" {
		p = "/api/v1/apps/" + url.PathEscape(app) + "/events"
	}
	return reconnect(ctx, func() (bool, error) { return c.watchOnce(ctx, p, &after, fn) })
}

// watchOnce reads one connection of an event stream; stop reports that
// fn or a refusal ended the watch.
func (c *Client) watchOnce(ctx context.Context, p string, after *int64, fn func(AppEvent) bool) (stop bool, err error) {
	req, err := c.newRequest(ctx, "GET", p, nil)
	if err != nil {
		return true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *after >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false, baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return true, decodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data == "" {
				continue
			}
			var ev AppEvent
			if json.Unmarshal([]byte(data), &ev) == nil {
				*after = max(*after, ev.ID)
				if !fn(ev) {
					return true, nil
				}
			}
			data = ""
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	return false, baton.Errorf(baton.EUNAVAILABLE, "event stream %s ended", p)
}
