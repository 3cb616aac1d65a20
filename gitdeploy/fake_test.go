package gitdeploy

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// fakeBaton stands in for the coordinator and store: the seam the git
// endpoint talks through. The e2e tests run the real ones.
type fakeBaton struct {
	mu        sync.Mutex
	apps      map[string]bool
	deps      []baton.Deployment
	logs      map[string][]baton.LogLine
	artifacts map[string][]byte
	requests  []baton.SubmitRequest
	changes   chan struct{}
	wg        sync.WaitGroup
	// decide gives a submitted deployment its end: a refusal (error), or
	// the final state and reason. nil succeeds.
	decide func(req baton.SubmitRequest) (baton.State, string, error)
	// afterSuccess runs before a deployment is recorded as succeeded, so
	// the push sees what it did.
	afterSuccess func(d baton.Deployment)
	// sameCommitUnchanged answers a push of the commit that serves (the
	// newest succeeded deployment's) as Unchanged, as the coordinator
	// does for the same artifact, unless it is forced.
	sameCommitUnchanged bool
}

func newFakeBaton(t *testing.T, apps ...string) *fakeBaton {
	f := &fakeBaton{apps: map[string]bool{}, logs: map[string][]baton.LogLine{}, artifacts: map[string][]byte{}, changes: make(chan struct{})}
	for _, a := range apps {
		f.apps[a] = true
	}
	t.Cleanup(f.wg.Wait)
	return f
}

func (f *fakeBaton) Changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

func (f *fakeBaton) notifyLocked() {
	close(f.changes)
	f.changes = make(chan struct{})
}

// Submit records the deployment as queued and finishes it from another
// goroutine, so the push has to wait for it like for the real one.
func (f *fakeBaton) Submit(ctx context.Context, req baton.SubmitRequest) (baton.SubmitResult, error) {
	art, err := io.ReadAll(req.Artifact)
	if err != nil {
		return baton.SubmitResult{}, err
	}
	state, reason := baton.StateSucceeded, ""
	f.mu.Lock()
	decide := f.decide
	if live, ok := f.liveLocked(req.App, req.Slot); ok && f.sameCommitUnchanged && !req.Force && live.Commit == req.Commit {
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		return baton.SubmitResult{Deployment: live, Unchanged: true}, nil
	}
	f.mu.Unlock()
	if decide != nil {
		if state, reason, err = decide(req); err != nil {
			return baton.SubmitResult{}, err
		}
	}
	f.mu.Lock()
	d := f.addLocked(baton.Deployment{App: req.App, Slot: req.Slot, State: baton.StateQueued, Policy: req.Policy,
		Commit: req.Commit, Author: req.Author, Message: req.Message})
	f.artifacts[d.ID] = art
	f.requests = append(f.requests, req)
	f.logLocked(d.ID, "queued deploy ("+string(req.Policy)+" policy)")
	f.notifyLocked()
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.finish(d.ID, state, reason)
	}()
	return baton.SubmitResult{Deployment: d}, nil
}

// liveLocked returns the newest succeeded deployment of app's slot: the
// one whose revision serves.
func (f *fakeBaton) liveLocked(app, slot string) (baton.Deployment, bool) {
	for i := len(f.deps) - 1; i >= 0; i-- {
		if d := f.deps[i]; d.App == app && d.Slot == slot && d.State == baton.StateSucceeded {
			return d, true
		}
	}
	return baton.Deployment{}, false
}

// Revision returns a revision of a succeeded deployment, active if it
// serves.
func (f *fakeBaton) Revision(_ context.Context, name string) (baton.Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.deps {
		if d.Revision == name {
			live, _ := f.liveLocked(d.App, d.Slot)
			return baton.Revision{Name: name, App: d.App, Slot: d.Slot, Deployment: d.ID, Active: live.ID == d.ID}, nil
		}
	}
	return baton.Revision{}, baton.Errorf(baton.ENOTFOUND, "revision %q does not exist", name)
}

// addLocked records a deployment with the next id and sequence number.
func (f *fakeBaton) addLocked(d baton.Deployment) baton.Deployment {
	d.Seq = int64(len(f.deps) + 1)
	d.ID = fmt.Sprintf("d-%d", d.Seq)
	d.Kind = baton.KindDeploy
	d.CreatedAt = time.Now()
	f.deps = append(f.deps, d)
	return d
}

func (f *fakeBaton) logLocked(id string, text string) {
	f.logs[id] = append(f.logs[id], baton.LogLine{ID: int64(len(f.logs[id]) + 1), Time: time.Now(), Text: text})
}

func (f *fakeBaton) finish(id string, state baton.State, reason string) {
	f.mu.Lock()
	after, d := f.afterSuccess, f.deps[f.index(id)]
	f.mu.Unlock()
	if state == baton.StateSucceeded && after != nil {
		after(d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.index(id)
	f.logLocked(id, "phase extracting")
	f.deps[i].State, f.deps[i].Error = state, reason
	if state == baton.StateSucceeded {
		f.deps[i].Revision = fmt.Sprintf("%s--%06d", f.deps[i].App, f.deps[i].Seq)
	}
	f.logLocked(id, "deployment "+string(state))
	f.notifyLocked()
}

func (f *fakeBaton) setDecide(fn func(baton.SubmitRequest) (baton.State, string, error)) {
	f.mu.Lock()
	f.decide = fn
	f.mu.Unlock()
}

func (f *fakeBaton) setAfterSuccess(fn func(baton.Deployment)) {
	f.mu.Lock()
	f.afterSuccess = fn
	f.mu.Unlock()
}

func (f *fakeBaton) index(id string) int {
	for i, d := range f.deps {
		if d.ID == id {
			return i
		}
	}
	panic("no deployment " + id)
}

// succeeded records a deployment that went live without a push.
func (f *fakeBaton) succeeded(app, commit string) baton.Deployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.addLocked(baton.Deployment{App: app, Slot: baton.ProductionSlot, State: baton.StateSucceeded, Commit: commit})
	i := f.index(d.ID)
	f.deps[i].Revision = fmt.Sprintf("%s--%06d", app, d.Seq)
	f.notifyLocked()
	return f.deps[i]
}

func (f *fakeBaton) App(_ context.Context, name string) (baton.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.apps[name] {
		return baton.App{}, baton.Errorf(baton.ENOTFOUND, "app %q does not exist", name)
	}
	return baton.App{Name: name, Slots: []baton.Slot{{App: name, Name: baton.ProductionSlot, LiveRevision: name + "--000001"}}}, nil
}

func (f *fakeBaton) Deployment(_ context.Context, id string) (baton.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deps[f.index(id)], nil
}

func (f *fakeBaton) Deployments(_ context.Context, fl baton.DeploymentFilter) ([]baton.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []baton.Deployment
	for _, d := range f.deps {
		ok := d.App == fl.App || fl.App == ""
		if len(fl.States) > 0 {
			in := false
			for _, s := range fl.States {
				in = in || d.State == s
			}
			ok = ok && in
		}
		if ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return (out[i].Seq < out[j].Seq) == fl.Oldest })
	if fl.Limit > 0 && len(out) > fl.Limit {
		out = out[:fl.Limit]
	}
	return out, nil
}

func (f *fakeBaton) Log(_ context.Context, id string, after int64) ([]baton.LogLine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []baton.LogLine
	for _, l := range f.logs[id] {
		if l.ID > after {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeBaton) submitted() []baton.SubmitRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]baton.SubmitRequest(nil), f.requests...)
}
