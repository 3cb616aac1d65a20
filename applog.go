package baton

import (
	"strconv"
	"time"
)

// AppLogQuery selects lines of an app's instance output (stdout and
// stderr of its instances).
type AppLogQuery struct {
	App string
	// Slot limits it to the revisions active in one slot.
	Slot string
	// Revision selects one revision, active or not; empty: the revisions
	// active in the app's slots (or Slot).
	Revision string
	// Since keeps lines written at or after it.
	Since time.Time
	// After keeps lines after this cursor (an AppLogLine's ID): how an
	// SSE client resumes with Last-Event-ID.
	After string
	// Limit keeps the newest lines only (default 1000).
	Limit int
}

// ParseSince reads where a selection of log lines starts (`baton logs
// --since`, ?since= of the API): a duration back from now (10m, 2h; 0s
// is now: no earlier line, only what comes from now on) or an RFC 3339
// time. The CLI checks the value with it and sends it as typed; the
// server reads it against its own clock.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return at, nil
	}
	return time.Time{}, Errorf(EINVALID, "since %q: give a duration back from now (10m, 2h; 0s for only what comes from now on) or an RFC 3339 time (2026-12-06T16:00:00Z)", v)
}

// AppLogLine is one line an instance wrote.
type AppLogLine struct {
	// ID orders lines and resumes a stream: the time in Unix microseconds.
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Revision string    `json:"revision"`
	Slot     string    `json:"slot,omitempty"`
	// Instance is the instance's index within its revision.
	Instance int    `json:"instance"`
	Text     string `json:"text"`
}

// LogCursor is the ID of a line written at t.
func LogCursor(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// ParseLogCursor reads a LogCursor; ok is false for anything else.
func ParseLogCursor(s string) (t time.Time, ok bool) {
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(us).UTC(), true
}

// RevisionTraffic is what the proxy saw of one revision (or, with
// Revision empty, of a slot's requests answered before one was chosen)
// over a recent window: for the dashboard's traffic panel.
type RevisionTraffic struct {
	Slot     string `json:"slot"`
	Revision string `json:"revision"`
	// Requests answered in the window, and their rate.
	Requests          uint64  `json:"requests"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// ErrorRate is the share of 5xx answers (0 to 1).
	ErrorRate float64 `json:"error_rate"`
	// P99Seconds estimates the 99th percentile duration from the
	// histogram's buckets; -1 without requests.
	P99Seconds float64 `json:"p99_seconds"`
	// WindowSeconds is the time the figures cover.
	WindowSeconds float64 `json:"window_seconds"`
}

// TrafficPoint is one revision's traffic over one sampling interval
// ending At: a point of the dashboard's charts.
type TrafficPoint struct {
	At                time.Time `json:"at"`
	Slot              string    `json:"slot"`
	Revision          string    `json:"revision"`
	RequestsPerSecond float64   `json:"requests_per_second"`
	ErrorRate         float64   `json:"error_rate"`
	// P99Seconds is -1 without requests in the interval.
	P99Seconds float64 `json:"p99_seconds"`
}
