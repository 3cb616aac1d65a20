package kudu

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// fakeStore keeps apps, deployments and logs in memory.
type fakeStore struct {
	mu    sync.Mutex
	apps  map[string]baton.App
	ds    map[string]baton.Deployment
	logs  map[string][]baton.LogLine
	revs  map[string]baton.Revision
	seq   int64
	lines int64
}

func newFakeStore(apps ...string) *fakeStore {
	s := &fakeStore{apps: map[string]baton.App{}, ds: map[string]baton.Deployment{}, logs: map[string][]baton.LogLine{}, revs: map[string]baton.Revision{}}
	for _, a := range apps {
		s.apps[a] = baton.App{Name: a, Slots: []baton.Slot{{App: a, Name: baton.ProductionSlot}}}
	}
	return s
}

func (s *fakeStore) App(_ context.Context, name string) (baton.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[name]
	if !ok {
		return a, baton.Errorf(baton.ENOTFOUND, "app %q does not exist", name)
	}
	return a, nil
}

func (s *fakeStore) Deployment(_ context.Context, id string) (baton.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.ds[id]
	if !ok {
		return d, baton.Errorf(baton.ENOTFOUND, "deployment %q does not exist", id)
	}
	return d, nil
}

func (s *fakeStore) Deployments(_ context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []baton.Deployment
	for _, d := range s.ds {
		if f.App != "" && d.App != f.App {
			continue
		}
		if len(f.States) > 0 && !containsState(f.States, d.State) {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return (out[i].Seq > out[j].Seq) != f.Oldest })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func containsState(states []baton.State, s baton.State) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

func (s *fakeStore) Log(_ context.Context, id string, after int64) ([]baton.LogLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []baton.LogLine
	for _, l := range s.logs[id] {
		if l.ID > after {
			out = append(out, l)
		}
	}
	return out, nil
}

func (s *fakeStore) AppendLog(_ context.Context, id string, lines ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range lines {
		s.lines++
		s.logs[id] = append(s.logs[id], baton.LogLine{ID: s.lines, Time: time.Now(), Text: l})
	}
	return nil
}

func (s *fakeStore) Revision(_ context.Context, name string) (baton.Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.revs[name]
	if !ok {
		return r, baton.Errorf(baton.ENOTFOUND, "revision %q does not exist", name)
	}
	return r, nil
}

// setLive makes rev (created by deployment dep from artifact digest) the
// live revision of app's production slot.
func (s *fakeStore) setLive(app, rev, dep, digest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revs[rev] = baton.Revision{Name: rev, App: app, Slot: baton.ProductionSlot, Deployment: dep, ArtifactDigest: digest}
	a := s.apps[app]
	a.Slots = []baton.Slot{{App: app, Name: baton.ProductionSlot, LiveRevision: rev}}
	s.apps[app] = a
}

// put adds or replaces a deployment, giving new ones the next seq.
func (s *fakeStore) put(d baton.Deployment) baton.Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Seq == 0 {
		s.seq++
		d.Seq = s.seq
	}
	if d.Slot == "" {
		d.Slot = baton.ProductionSlot
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	s.ds[d.ID] = d
	return d
}

// fakeDeployer queues deployments in a fakeStore, or refuses with err, or
// answers that live (a deployment in the store) is unchanged.
type fakeDeployer struct {
	store     *fakeStore
	err       error
	live      string
	submitted chan baton.SubmitRequest // each request, its artifact read into a strings.Reader

	mu      sync.Mutex
	changed chan struct{}
	n       int
}

func newFakeDeployer(s *fakeStore) *fakeDeployer {
	return &fakeDeployer{store: s, submitted: make(chan baton.SubmitRequest, 10), changed: make(chan struct{})}
}

func (f *fakeDeployer) Submit(_ context.Context, req baton.SubmitRequest) (baton.SubmitResult, error) {
	body, _ := io.ReadAll(req.Artifact)
	req.Artifact = strings.NewReader(string(body))
	if f.err != nil {
		f.submitted <- req
		return baton.SubmitResult{}, f.err
	}
	if f.live != "" && !req.Force {
		f.submitted <- req
		d, err := f.store.Deployment(context.Background(), f.live)
		return baton.SubmitResult{Deployment: d, Unchanged: true}, err
	}
	f.mu.Lock()
	f.n++
	id := fmt.Sprintf("d-%012d", f.n)
	f.mu.Unlock()
	d := f.store.put(baton.Deployment{ID: id, App: req.App, Slot: req.Slot, State: baton.StateQueued, Policy: req.Policy,
		Message: req.Message, Author: req.Author, Commit: req.Commit})
	f.store.AppendLog(context.Background(), id, "queued ("+string(req.Policy)+" policy)")
	f.submitted <- req
	return baton.SubmitResult{Deployment: d}, nil
}

func (f *fakeDeployer) Changes() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// notify wakes everything waiting on Changes.
func (f *fakeDeployer) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// testSite is a Handler behind a mux the way baton mounts it, with an
// httptest server in front.
type testSite struct {
	t     *testing.T
	store *fakeStore
	dep   *fakeDeployer
	h     *Handler
	srv   *httptest.Server
}

func newTestSite(t *testing.T, cfg Config) *testSite {
	t.Helper()
	st := newFakeStore("hello", "other")
	dep := newFakeDeployer(st)
	cfg.Store, cfg.Deployer = st, dep
	h := New(cfg)
	api := http.NewServeMux()
	api.Handle(PathPattern, h.PathHandler())
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "the API", http.StatusTeapot) })
	srv := httptest.NewServer(h.HostHandler("localhost", api))
	t.Cleanup(srv.Close)
	return &testSite{t: t, store: st, dep: dep, h: h, srv: srv}
}

// do sends a request with Basic credentials to path under /kudu/hello.
func (s *testSite) do(method, path, body string, header ...string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+"/kudu/hello"+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.SetBasicAuth("$hello", "secret")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return s.send(req)
}

func (s *testSite) send(req *http.Request) (*http.Response, string) {
	s.t.Helper()
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
