// Package api serves baton's REST API (JSON, RFC 9457 problems, SSE logs)
// and holds the Go client the CLI uses to call it.
package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/batonhq/baton"
)

// statusOf maps error codes to HTTP statuses; codeOf is its inverse, used by
// the client. This table is the only place the mapping lives.
var statusOf = map[string]int{
	baton.EINVALID:       http.StatusBadRequest,
	baton.EUNAUTHORIZED:  http.StatusUnauthorized,
	baton.EFORBIDDEN:     http.StatusForbidden,
	baton.ENOTFOUND:      http.StatusNotFound,
	baton.ECONFLICT:      http.StatusConflict,
	baton.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	baton.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	baton.EFROZEN:        http.StatusLocked,
	baton.EQUEUEFULL:     http.StatusTooManyRequests,
	baton.ERATELIMITED:   http.StatusTooManyRequests,
	baton.EINTERNAL:      http.StatusInternalServerError,
	baton.EUNAVAILABLE:   http.StatusServiceUnavailable,
}

var titleOf = map[string]string{
	baton.EINVALID:       "Invalid request",
	baton.EUNAUTHORIZED:  "Authentication required",
	baton.EFORBIDDEN:     "Not allowed",
	baton.ENOTFOUND:      "Not found",
	baton.ECONFLICT:      "Conflict",
	baton.ETOOLARGE:      "Too large",
	baton.EUNPROCESSABLE: "Unusable input",
	baton.EFROZEN:        "Deployments frozen",
	baton.EQUEUEFULL:     "Deployment queue full",
	baton.ERATELIMITED:   "Too many requests",
	baton.EINTERNAL:      "Internal error",
	baton.EUNAVAILABLE:   "Unavailable",
}

// Problem is an RFC 9457 problem document with baton's extension members.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// Code is baton's error code (baton.ECONFLICT, …).
	Code string `json:"code"`
	// Conflict names what holds the app, on 409 and 429.
	Conflict   *baton.ConflictDetail `json:"conflict,omitempty"`
	RetryAfter int                   `json:"retry_after,omitempty"`
}

func codeOf(status int) string {
	if status == http.StatusTooManyRequests {
		return baton.EQUEUEFULL // the 429 baton gave before it had rate limits
	}
	for code, s := range statusOf {
		if s == status {
			return code
		}
	}
	if status >= 500 {
		return baton.EINTERNAL
	}
	return baton.EINVALID
}

// StatusOf is the HTTP status of a baton error code (500 for an unknown
// one): the other HTTP adapters (Kudu, git) answer with the same table.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// WriteProblem answers with the RFC 9457 problem for err, as the API does.
func WriteProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeError(w, r, log, err)
}

// writeError answers with the problem for err. Errors that are not
// *baton.Error are logged and answered with a generic 500.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := baton.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	p := Problem{
		Type:     "https://baton.dev/problems/" + code,
		Title:    titleOf[code],
		Status:   status,
		Detail:   baton.ErrorMessage(err),
		Instance: r.URL.Path,
		Code:     code,
	}
	var e *baton.Error
	if errors.As(err, &e) {
		p.Conflict = e.Conflict
		if e.RetryAfterSeconds > 0 {
			p.RetryAfter = e.RetryAfterSeconds
			w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
		}
	}
	if code == baton.EINTERNAL {
		log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// The body may be unread (an upload refused before it began):
		// net/http would read up to 256 KiB more of it before answering,
		// so a client streaming its upload would see the answer only
		// after sending that much, and one waiting on it never. Closing
		// the connection after the answer sends it now. (Not on HTTP/2,
		// where this would end the client's other streams.)
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers v as indented JSON, for people reading it with curl.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeList answers a list of every app (or a page of it) as compact
// JSON: with 1,000 apps the indented status is 778 KiB, and indenting it
// takes longer than reading it from the store.
func writeList(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
