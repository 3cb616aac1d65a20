package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/server"
)

// TestAppLogStreamAnswersAtOnce: following the output of an app that
// writes none answers with the stream's head at once, not only when a
// first line or the keep-alive comes (15 s later).
func TestAppLogStreamAnswersAtOnce(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/api/v1/apps/other/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["read"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no answer within 10s: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("answer %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
