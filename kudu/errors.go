package kudu

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// Errors come in two shapes. Where Kudu has an answer (deployment not
// found, deployment in progress, …) baton answers like Kudu: JSON with a
// Message member, as ASP.NET Web API writes it, so clients that print
// .Message print a sentence. Errors Kudu never gives (queue full, frozen,
// upload too large, not an archive) are RFC 9457 problems like the rest of
// baton's API, with the same Message member added for Kudu clients.

// kuduError answers status with Kudu's error shape, plus extra members.
func kuduError(w http.ResponseWriter, status int, message string, extra map[string]any) {
	body := map[string]any{"Message": message}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

// problem is an RFC 9457 problem document with baton's members and Kudu's
// Message.
type problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail"`
	Instance   string `json:"instance,omitempty"`
	Code       string `json:"code"`
	Message    string `json:"Message"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

// problem answers err as an RFC 9457 problem. Errors that are not
// *baton.Error are logged and answered with a generic 500.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, err error) {
	code := baton.ErrorCode(err)
	status := api.StatusOf(code) // the API's table: one mapping for every adapter
	p := problem{
		Type:     "https://baton.dev/problems/" + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   baton.ErrorMessage(err),
		Instance: r.URL.Path,
		Code:     code,
		Message:  baton.ErrorMessage(err),
	}
	var e *baton.Error
	if errors.As(err, &e) && e.RetryAfterSeconds > 0 {
		p.RetryAfter = e.RetryAfterSeconds
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	if code == baton.EINTERNAL {
		h.log.Error("kudu api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
