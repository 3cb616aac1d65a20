package gitdeploy

import (
	"log/slog"
	"net/http"

	"github.com/batonhq/baton/api"
)

// writeProblem answers with an application/problem+json document; git
// clients show the status, curl and browsers the sentence.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	api.WriteProblem(w, r, slog.New(slog.DiscardHandler), err)
}
