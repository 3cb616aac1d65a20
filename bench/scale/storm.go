package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bench/internal/harness"
)

// stormResult is the answer to one deployment request of the storm.
type stormResult struct {
	version string
	latency time.Duration
	status  int    // 0: no HTTP answer
	err     string // transport error, or the problem's code and detail
	d       baton.Deployment
	final   baton.Deployment
}

// stormReport is what the storm measured.
type stormReport struct {
	app      string
	n        int
	policy   string
	accept   []time.Duration // latency of every answered request
	byStatus map[int]int
	problems map[string]int // "STATUS CODE: detail" of refusals, counted
	noAnswer []string
	// acceptAll: first request sent → last answer; idle: → app idle.
	acceptAll, idle time.Duration
	byState         map[baton.State]int
	notFinal        []string
	overlaps        []string
	last            baton.Deployment // the accepted deployment with the highest seq
	lastServes      bool
	lastServesErr   string
	// runMean is the mean run time (started → finished) of those that ran.
	runMean time.Duration
}

// stormStage sends o.storm deployment requests for one app at once, then
// follows every accepted one to its final state.
func (s *scale) stormStage(ctx context.Context) error {
	app := appName(0)
	n := s.o.storm
	step("deployment storm: %d concurrent requests to %s (on_conflict=%s, no Idempotency-Key; thin artifacts, each its own version)", n, app, s.o.policy)
	res := make([]stormResult, n)
	arts := make([][]byte, n)
	for i := range n {
		res[i].version = fmt.Sprintf("storm-%04d", i)
		var err error
		if arts[i], err = harness.ThinZip(s.o.hello, res[i].version, "50ms"); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: n,
	}}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("%s/api/v1/apps/%s/slots/production/deployments?on_conflict=%s&message=storm", s.c.BaseURL, app, s.o.policy)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(arts[i]))
			if err != nil {
				r.err = err.Error()
				return
			}
			req.Header.Set("Authorization", "Bearer "+s.b.Token)
			req.Header.Set("Content-Type", "application/zip")
			<-gate
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				r.err = err.Error()
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.latency = time.Since(t)
			if err != nil {
				r.err = "reading the answer: " + err.Error()
				return
			}
			r.status = resp.StatusCode
			if resp.StatusCode == http.StatusAccepted {
				if err := json.Unmarshal(body, &r.d); err != nil || r.d.ID == "" {
					r.err = fmt.Sprintf("202 without a deployment: %.200s", body)
				}
				return
			}
			var p api.Problem
			if json.Unmarshal(body, &p) == nil && p.Code != "" {
				r.err = fmt.Sprintf("%s: %s", p.Code, p.Detail)
			} else {
				r.err = fmt.Sprintf("%.200s", body)
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	rep := &stormReport{app: app, n: n, policy: s.o.policy, acceptAll: time.Since(start),
		byStatus: map[int]int{}, problems: map[string]int{}, byState: map[baton.State]int{}}
	s.rep.storm = rep
	var accepted []*stormResult
	for i := range res {
		r := &res[i]
		switch {
		case r.status == 0:
			rep.noAnswer = append(rep.noAnswer, r.err)
			continue
		case r.status == http.StatusAccepted && r.d.ID != "":
			accepted = append(accepted, r)
		default:
			rep.problems[fmt.Sprintf("%d %s", r.status, r.err)]++
		}
		rep.byStatus[r.status]++
		rep.accept = append(rep.accept, r.latency)
	}
	st := harness.Sorted(rep.accept)
	step("storm answered in %s: %d accepted, %d refused, %d without an answer; accept latency p50 %s ms, p99 %s ms, max %s ms",
		ms(rep.acceptAll), len(accepted), len(rep.accept)-len(accepted), len(rep.noAnswer),
		harness.Ms(harness.Percentile(st, 0.5)), harness.Ms(harness.Percentile(st, 0.99)), harness.Ms(harness.Percentile(st, 1)))

	step("waiting until %s has nothing running or queued (GET /api/v1/apps/%s/wait)", app, app)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := s.c.WaitIdle(wctx, app); err != nil {
		return fmt.Errorf("wait for %s to be idle after the storm: %w", app, err)
	}
	rep.idle = time.Since(start)
	step("%s idle %s after the storm began; reading all %d accepted deployments", app, ms(rep.idle), len(accepted))
	if err := s.followAll(wctx, accepted, rep); err != nil {
		return err
	}
	for _, r := range accepted {
		rep.byState[r.final.State]++
		if r.final.Seq > rep.last.Seq {
			rep.last = r.final
		}
	}
	rep.overlaps = overlaps(accepted)
	var runs []time.Duration
	for _, r := range accepted {
		if r.final.StartedAt != nil && r.final.FinishedAt != nil {
			runs = append(runs, r.final.FinishedAt.Sub(*r.final.StartedAt))
		}
	}
	rep.runMean = harness.Mean(runs)
	// What serves now must be the newest accepted request's version.
	var want string
	for _, r := range accepted {
		if r.final.ID == rep.last.ID {
			want = r.version
		}
	}
	err := s.b.WaitHTTP(ctx, 5*time.Second, "http://"+s.b.ProxyAddr+"/", app+".localhost", func(status int, body []byte) bool {
		return status == 200 && bytes.Contains(body, []byte(`"version":"`+want+`"`))
	})
	rep.lastServes = err == nil
	if err != nil {
		rep.lastServesErr = err.Error()
	}
	step("final states: %v; newest accepted %s %s, serving its version: %v", rep.byState, rep.last.ID, rep.last.State, rep.lastServes)
	return nil
}

// followAll reads every accepted deployment until it is final, polling the
// ones that are not (there should be none once the app is idle) until ctx
// ends.
func (s *scale) followAll(ctx context.Context, accepted []*stormResult, rep *stormReport) error {
	pending := accepted
	for len(pending) > 0 {
		var mu sync.Mutex
		var still []*stormResult
		err := forEach(ctx, len(pending), s.o.workers, func(ctx context.Context, i int) error {
			r := pending[i]
			d, err := s.c.Deployment(ctx, r.d.ID)
			if err != nil {
				return fmt.Errorf("read deployment %s: %w", r.d.ID, err)
			}
			r.final = d
			if !d.State.Final() {
				mu.Lock()
				still = append(still, r)
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				for _, r := range pending {
					rep.notFinal = append(rep.notFinal, fmt.Sprintf("%s %s", r.d.ID, r.final.State))
				}
				return nil
			}
			return err
		}
		if len(still) > 0 && len(still) == len(pending) {
			step("%d accepted deployments not final yet although the app was idle; polling", len(still))
		}
		pending = still
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				for _, r := range pending {
					rep.notFinal = append(rep.notFinal, fmt.Sprintf("%s %s", r.d.ID, r.final.State))
				}
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// overlaps lists deployments that ran at the same time as another one.
func overlaps(accepted []*stormResult) []string {
	var ran []baton.Deployment
	for _, r := range accepted {
		if r.final.StartedAt != nil && r.final.FinishedAt != nil {
			ran = append(ran, r.final)
		}
	}
	sort.Slice(ran, func(i, j int) bool { return ran[i].StartedAt.Before(*ran[j].StartedAt) })
	var out []string
	for i := 1; i < len(ran); i++ {
		if ran[i].StartedAt.Before(*ran[i-1].FinishedAt) {
			out = append(out, fmt.Sprintf("%s started %s before %s finished", ran[i].ID, ran[i-1].FinishedAt.Sub(*ran[i].StartedAt), ran[i-1].ID))
		}
	}
	return out
}
