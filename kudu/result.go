package kudu

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// Status is Kudu's DeployStatus.
type Status int

// Kudu's deployment statuses. Clients poll until Failed or Success.
const (
	StatusPending   Status = 0
	StatusBuilding  Status = 1
	StatusDeploying Status = 2
	StatusFailed    Status = 3
	StatusSuccess   Status = 4
)

// Result is a deployment as Kudu shows it (its DeployResult), with
// baton's own members after Kudu's.
type Result struct {
	ID                 string     `json:"id"`
	Status             Status     `json:"status"`
	StatusText         string     `json:"status_text"`
	AuthorEmail        string     `json:"author_email"`
	Author             string     `json:"author"`
	Deployer           string     `json:"deployer"`
	Message            string     `json:"message"`
	Progress           string     `json:"progress"`
	ReceivedTime       time.Time  `json:"received_time"`
	StartTime          time.Time  `json:"start_time"`
	EndTime            *time.Time `json:"end_time"`
	LastSuccessEndTime *time.Time `json:"last_success_end_time"`
	Complete           bool       `json:"complete"`
	Active             bool       `json:"active"`
	IsTemp             bool       `json:"is_temp"`
	IsReadonly         bool       `json:"is_readonly"`
	URL                string     `json:"url"`
	LogURL             string     `json:"log_url"`
	SiteName           string     `json:"site_name"`

	// baton's members.
	State    baton.State `json:"state"`
	Phase    baton.Phase `json:"phase"`
	Slot     string      `json:"slot"`
	Revision string      `json:"revision"`
	Commit   string      `json:"commit"`
	// QueuePosition is 1 for the next deployment to run, 0 when not queued.
	QueuePosition int        `json:"queue_position"`
	StartedAt     *time.Time `json:"started_at"`
	Error         string     `json:"error"`
}

// view is what a Result is made from besides the deployment itself.
type view struct {
	base     string // the site's SCM root URL
	deployer string
	queuePos int
	live     bool // its revision serves its slot
	now      time.Time
}

// statusOf maps baton's state and phase to Kudu's status: a queued
// deployment is pending; extracting and building are building; every
// later phase is deploying; cancelled and superseded are failed, with
// the reason in status_text.
func statusOf(d baton.Deployment) Status {
	switch d.State {
	case baton.StateQueued:
		return StatusPending
	case baton.StateRunning:
		switch d.Phase {
		case baton.PhaseNone, baton.PhaseExtracting, baton.PhaseBuilding:
			return StatusBuilding
		}
		return StatusDeploying
	case baton.StateSucceeded:
		return StatusSuccess
	}
	return StatusFailed
}

// result renders d for a Kudu client.
func result(d baton.Deployment, v view) Result {
	name, email := splitAuthor(d.Author)
	res := Result{
		ID: d.ID, Status: statusOf(d), Author: name, AuthorEmail: email, Deployer: v.deployer,
		Message: d.Message, ReceivedTime: d.CreatedAt, StartTime: d.CreatedAt, EndTime: d.FinishedAt,
		Complete: d.State.Final(), Active: v.live,
		// baton's history is immutable: Kudu's "redeploy this entry" does
		// not apply to it.
		IsReadonly: true,
		URL:        v.base + "/api/deployments/" + d.ID,
		LogURL:     v.base + "/api/deployments/" + d.ID + "/log",
		SiteName:   d.App,
		State:      d.State, Phase: d.Phase, Slot: d.Slot, Revision: d.Revision, Commit: d.Commit,
		QueuePosition: v.queuePos, StartedAt: d.StartedAt, Error: d.Error,
	}
	if d.StartedAt != nil {
		res.StartTime = *d.StartedAt
	}
	if d.State == baton.StateSucceeded {
		res.LastSuccessEndTime = d.FinishedAt
	}
	res.StatusText, res.Progress = describe(d, v)
	return res
}

// describe returns status_text and progress: a sentence on where the
// deployment is, and for running ones the phase and its age.
func describe(d baton.Deployment, v view) (text, progress string) {
	switch d.State {
	case baton.StateQueued:
		if v.queuePos > 0 {
			text = fmt.Sprintf("Queued: position %d; it starts when the deployments before it finish", v.queuePos)
			progress = fmt.Sprintf("queued (position %d)", v.queuePos)
			return text, progress
		}
		return "Queued", "queued"
	case baton.StateRunning:
		phase := string(d.Phase)
		if phase == "" {
			phase = "starting up"
		}
		progress = phase
		if d.PhaseStartedAt != nil {
			progress += fmt.Sprintf(" for %s", v.now.Sub(*d.PhaseStartedAt).Round(time.Second))
		}
		if statusOf(d) == StatusBuilding {
			return "Building: phase " + phase, progress
		}
		return "Deploying: phase " + phase, progress
	case baton.StateSucceeded:
		if d.Revision != "" {
			return "Deployment successful: " + d.Revision + " serves slot " + d.Slot, ""
		}
		return "Deployment successful", ""
	}
	if d.Error != "" {
		return d.Error, ""
	}
	return "Deployment " + string(d.State), ""
}

// author keeps name and e-mail in baton's one author field, git-style.
func author(name, email string) string {
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	if email == "" {
		return name
	}
	if name == "" {
		return "<" + email + ">"
	}
	return name + " <" + email + ">"
}

var authorEmail = regexp.MustCompile(`^(.*?)\s*<([^<>]*)>$`)

// splitAuthor undoes author.
func splitAuthor(a string) (name, email string) {
	if m := authorEmail.FindStringSubmatch(a); m != nil {
		return m[1], m[2]
	}
	return a, ""
}
