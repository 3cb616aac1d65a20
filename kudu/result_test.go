package kudu

import (
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestStatusOf(t *testing.T) {
	tests := []struct {
		state baton.State
		phase baton.Phase
		want  Status
	}{
		{baton.StateQueued, baton.PhaseNone, StatusPending},
		{baton.StateRunning, baton.PhaseNone, StatusBuilding},
		{baton.StateRunning, baton.PhaseExtracting, StatusBuilding},
		{baton.StateRunning, baton.PhaseBuilding, StatusBuilding},
		{baton.StateRunning, baton.PhaseReleasing, StatusDeploying},
		{baton.StateRunning, baton.PhaseStarting, StatusDeploying},
		{baton.StateRunning, baton.PhaseHealthChecking, StatusDeploying},
		{baton.StateRunning, baton.PhaseWarming, StatusDeploying},
		{baton.StateRunning, baton.PhaseSwitching, StatusDeploying},
		{baton.StateRunning, baton.PhaseDraining, StatusDeploying},
		{baton.StateSucceeded, baton.PhaseDraining, StatusSuccess},
		{baton.StateFailed, baton.PhaseBuilding, StatusFailed},
		{baton.StateCancelled, baton.PhaseNone, StatusFailed},
		{baton.StateSuperseded, baton.PhaseNone, StatusFailed},
	}
	for _, tt := range tests {
		if got := statusOf(baton.Deployment{State: tt.state, Phase: tt.phase}); got != tt.want {
			t.Errorf("statusOf(%s, %q) = %d, want %d", tt.state, tt.phase, got, tt.want)
		}
	}
}

func TestResult(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	started, phaseAt, finished := t0.Add(time.Second), t0.Add(3*time.Second), t0.Add(9*time.Second)
	running := baton.Deployment{ID: "d-1", App: "hello", Slot: "production", State: baton.StateRunning, Phase: baton.PhaseStarting,
		Author: "Ada Lovelace <ada@example.com>", Message: "m", CreatedAt: t0, StartedAt: &started, PhaseStartedAt: &phaseAt, Revision: "hello--000002"}
	r := result(running, view{base: "http://h/kudu/hello", deployer: "GitHub", now: t0.Add(5 * time.Second)})
	if r.Status != StatusDeploying || r.Complete || r.Author != "Ada Lovelace" || r.AuthorEmail != "ada@example.com" || r.Deployer != "GitHub" ||
		!r.StartTime.Equal(started) || !r.ReceivedTime.Equal(t0) || r.EndTime != nil || r.Progress != "starting for 2s" ||
		r.StatusText != "Deploying: phase starting" || r.URL != "http://h/kudu/hello/api/deployments/d-1" ||
		r.LogURL != "http://h/kudu/hello/api/deployments/d-1/log" || r.SiteName != "hello" || !r.IsReadonly {
		t.Fatalf("running: %+v", r)
	}

	queued := baton.Deployment{ID: "d-2", App: "hello", State: baton.StateQueued, CreatedAt: t0}
	r = result(queued, view{queuePos: 2})
	if r.Status != StatusPending || !r.StartTime.Equal(t0) || r.QueuePosition != 2 || r.Progress != "queued (position 2)" {
		t.Fatalf("queued: %+v", r)
	}

	done := running
	done.State, done.FinishedAt = baton.StateSucceeded, &finished
	r = result(done, view{live: true})
	if r.Status != StatusSuccess || !r.Complete || !r.Active || r.EndTime == nil || r.LastSuccessEndTime == nil || r.Progress != "" {
		t.Fatalf("succeeded: %+v", r)
	}

	failed := done
	failed.State, failed.Error = baton.StateFailed, "build command failed: exit status 2"
	r = result(failed, view{})
	if r.Status != StatusFailed || r.StatusText != failed.Error || r.LastSuccessEndTime != nil || r.Active {
		t.Fatalf("failed: %+v", r)
	}
}

func TestAuthor(t *testing.T) {
	tests := []struct{ name, email, stored string }{
		{"Ada", "ada@example.com", "Ada <ada@example.com>"},
		{"Ada", "", "Ada"},
		{"", "ada@example.com", "<ada@example.com>"},
		{"$hello", "", "$hello"},
	}
	for _, tt := range tests {
		got := author(tt.name, tt.email)
		if got != tt.stored {
			t.Errorf("author(%q, %q) = %q, want %q", tt.name, tt.email, got, tt.stored)
		}
		if n, e := splitAuthor(got); n != tt.name || e != tt.email {
			t.Errorf("splitAuthor(%q) = %q, %q", got, n, e)
		}
	}
}

func TestDeployerOf(t *testing.T) {
	lines := []baton.LogLine{{Text: "queued (queue policy)"}, {Text: deployerLine("zipdeploy", `GitHub "actions"`)}, {Text: "phase extracting"}}
	if got := deployerOf(lines); got != `GitHub "actions"` {
		t.Fatalf("deployerOf = %q", got)
	}
	if got := deployerOf(lines[:1]); got != "baton" {
		t.Fatalf("deployerOf without a Kudu line = %q", got)
	}
}

func TestAppOfHost(t *testing.T) {
	tests := []struct {
		host, domain, app string
		ok                bool
	}{
		{"hello.scm.localhost:7070", "localhost", "hello", true},
		{"Hello.SCM.LocalHost.", "localhost", "hello", true},
		{"my-app.scm.apps.example.com", "apps.example.com", "my-app", true},
		{"hello.localhost:7070", "localhost", "", false},
		{"scm.localhost", "localhost", "", false},
		{"a.b.scm.localhost", "localhost", "", false},
		{"bad--name.scm.localhost", "localhost", "", false},
		{"127.0.0.1:7070", "localhost", "", false},
	}
	for _, tt := range tests {
		app, ok := AppOfHost(tt.host, tt.domain)
		if app != tt.app || ok != tt.ok {
			t.Errorf("AppOfHost(%q, %q) = %q, %v; want %q, %v", tt.host, tt.domain, app, ok, tt.app, tt.ok)
		}
	}
}

func TestCredentialsOf(t *testing.T) {
	tests := []struct {
		header string
		want   Credentials
		ok     bool
	}{
		{"Basic JGhlbGxvOnNlY3JldA==", Credentials{Scheme: "Basic", User: "$hello", Secret: "secret"}, true}, // $hello:secret
		{"Bearer eyJ0eXAi", Credentials{Scheme: "Bearer", Secret: "eyJ0eXAi"}, true},
		{"bearer  tok ", Credentials{Scheme: "Bearer", Secret: "tok"}, true},
		{"", Credentials{}, false},
		{"Bearer", Credentials{}, false},
		{"Basic !!!", Credentials{}, false},
		{"Digest x", Credentials{}, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		got, ok := credentialsOf(r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("credentialsOf(%q) = %+v, %v; want %+v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
