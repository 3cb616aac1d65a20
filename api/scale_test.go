package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/server"
)

// answer sends one request as caller and returns the status with the
// problem it answered (zero for a success) and the raw body.
func (e *authEnv) answer(caller, method, path, body string) (int, api.Problem, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[caller])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	var p api.Problem
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Fatalf("%s %s: %d answered %q, want application/problem+json: %s", method, path, resp.StatusCode, ct, raw)
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			e.t.Fatalf("%s %s: problem %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, p, raw
}

// TestScaleRefusals: every request the scale route refuses gets a problem
// whose sentence says what to send instead, and queues nothing.
func TestScaleRefusals(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	before := e.state()
	for _, tc := range []struct {
		name, path, body string
		status           int
		detail           string
	}{
		{"no body", "/api/v1/apps/hello/scale", "", 400, `a scale needs a JSON body: {"instances": 3}`},
		{"no instances", "/api/v1/apps/hello/scale", `{"slot":"staging"}`, 400, `instances is 0: give how many instances each revision of the slot runs, from 1 to 64`},
		{"negative instances", "/api/v1/apps/hello/scale", `{"instances":-2}`, 400, `instances is -2`},
		{"too many instances", "/api/v1/apps/hello/scale", `{"instances":65}`, 400, `instances must be between 1 and 64, got 65`},
		{"negative cap", "/api/v1/apps/hello/scale", `{"instances":2,"max_per_host":-1}`, 400, `max per host must be between 0 (no cap) and 64, got -1`},
		{"cap too high", "/api/v1/apps/hello/scale", `{"instances":2,"max_per_host":65}`, 400, `max per host must be between 0 (no cap) and 64, got 65`},
		{"rebalance is baton's own", "/api/v1/apps/hello/scale", `{"instances":2,"rebalance":true}`, 400, `unknown field "rebalance"`},
		{"instances as a string", "/api/v1/apps/hello/scale", `{"instances":"3"}`, 400, `request body is not the JSON this route takes`},
		{"unknown slot", "/api/v1/apps/hello/scale", `{"slot":"qa","instances":2}`, 404, "app hello has no slot \"qa\"; its slots are production, staging (create one with `baton slots create hello qa`)"},
		{"unknown app", "/api/v1/apps/nope/scale", `{"instances":2}`, 404, `nope`},
		{"bad policy", "/api/v1/apps/hello/scale?on_conflict=maybe", `{"instances":2}`, 400, `maybe`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, p, raw := e.answer("deploy", "POST", tc.path, tc.body)
			if status != tc.status || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("%d %s\nwant %d with %q", status, raw, tc.status, tc.detail)
			}
		})
	}
	if after := e.state(); !slices.Equal(before.Deployments["hello"], after.Deployments["hello"]) {
		t.Fatalf("refused scales changed hello's operations:\nbefore %v\nafter  %v", before.Deployments["hello"], after.Deployments["hello"])
	}
}

// TestScaleQueuesOperation: a scale is an ordinary operation of the app's
// queue: 202 with its Location, kind scale with the slot's new scale as
// its params, the author and message given, an audit entry; a frozen app
// takes it (scale is recovery, like rollback).
func TestScaleQueuesOperation(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx := context.Background()
	status, p, raw := e.answer("deploy", "POST", "/api/v1/apps/hello/scale?author=ci&message=more+capacity", `{"slot":"staging","instances":3,"max_per_host":1}`)
	if status != http.StatusAccepted {
		t.Fatalf("scale: %d %+v", status, p)
	}
	var d baton.Deployment
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.App != "hello" || d.Slot != "staging" || d.Kind != baton.KindScale || d.Author != "ci" || d.Message != "more capacity" {
		t.Fatalf("queued operation: %+v", d)
	}
	sp, err := baton.DecodeParams[baton.ScaleParams](d.Kind, d.Params)
	if err != nil {
		t.Fatal(err)
	}
	if sp != (baton.ScaleParams{Instances: 3, MaxPerHost: 1}) {
		t.Fatalf("params %+v, want 3 instances, at most 1 per host", sp)
	}
	admin := e.client("admin")
	stored, err := admin.Deployment(ctx, d.ID)
	if err != nil || stored.Kind != baton.KindScale || stored.Params != d.Params {
		t.Fatalf("stored operation %+v %v", stored, err)
	}
	es, err := admin.Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(a baton.AuditEntry) bool {
		return a.Actor == "deployer" && a.Action == "scale" && a.Target == "hello/staging" && a.Outcome == "ok" &&
			a.Detail == d.ID+" 3 instances, at most 1 per host"
	}) {
		t.Fatalf("audit log lacks the scale: %+v", es)
	}

	// Through the client, on a frozen app, production by default.
	if _, err := admin.Freeze(ctx, "hello", "incident 3", false); err != nil {
		t.Fatal(err)
	}
	d2, err := e.client("deploy").Scale(ctx, "hello", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 1}, Author: "ops"})
	if err != nil {
		t.Fatalf("scale of a frozen app: %v", err)
	}
	sp, err = baton.DecodeParams[baton.ScaleParams](d2.Kind, d2.Params)
	if err != nil || d2.Slot != baton.ProductionSlot || d2.Author != "ops" || sp != (baton.ScaleParams{Instances: 1}) {
		t.Fatalf("client scale: %+v %+v %v", d2, sp, err)
	}
	// A deploy token of another app is refused, naming the app.
	_, err = e.client("other").Scale(ctx, "hello", api.ScaleOptions{ScaleRequest: api.ScaleRequest{Instances: 2}})
	if baton.ErrorCode(err) != baton.EFORBIDDEN || !strings.Contains(baton.ErrorMessage(err), "deploy for app hello") {
		t.Fatalf("another app's deploy token: %v", err)
	}
}

// TestDrainUnknownHost: drain and undrain of a host that does not share
// the store are 404 problems naming the hosts that do; the attempt is
// audited.
func TestDrainUnknownHost(t *testing.T) {
	e := newAuthEnv(t, server.Config{})
	ctx := context.Background()
	admin := e.client("admin")
	hs, err := admin.Hosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 {
		t.Fatalf("hosts of a lone baton: %+v", hs)
	}
	for _, op := range []string{"drain", "undrain"} {
		status, p, raw := e.answer("admin", "POST", "/api/v1/hosts/h-none/"+op, "")
		want := `no host "h-none" shares this store; the hosts are: ` + hs[0].ID + " (`baton hosts` lists them)"
		if status != http.StatusNotFound || p.Code != baton.ENOTFOUND || p.Detail != want {
			t.Fatalf("%s of an unknown host: %d %s\nwant 404 %q", op, status, raw, want)
		}
	}
	_, err = admin.DrainHost(ctx, "h-none", true)
	if baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("client drain of an unknown host: %v", err)
	}
	es, err := admin.Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(a baton.AuditEntry) bool {
		return a.Action == "host.undrain" && a.Target == "h-none" && strings.HasPrefix(a.Outcome, "refused: no host")
	}) {
		t.Fatalf("audit log lacks the refused undrain: %+v", es)
	}
}
