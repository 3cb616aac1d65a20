package gitdeploy

import (
	"encoding/json"
	"net/http"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// statusOf maps error codes to HTTP statuses. It repeats the API's table,
// which is not exported; both must agree.
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
	baton.EINTERNAL:      http.StatusInternalServerError,
	baton.EUNAVAILABLE:   http.StatusServiceUnavailable,
}

// writeProblem answers with an application/problem+json document; git
// clients show the status, curl and browsers the sentence.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	code := baton.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = baton.EINTERNAL, http.StatusInternalServerError
	}
	p := api.Problem{
		Type:     "https://baton.dev/problems/" + code,
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   baton.ErrorMessage(err),
		Instance: r.URL.Path,
		Code:     code,
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}
