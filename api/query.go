package api

import (
	"net/http"
	"strconv"

	"github.com/batonhq/baton"
)

// queryLimit reads ?limit=, the most entries a list answers: def without
// it, else a whole number from 1 to most.
func QueryLimit(r *http.Request, def, most int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, baton.Errorf(baton.EINVALID, "query parameter limit=%q is out of range: send a whole number from 1 to %d, or leave it out", v, most)
	}
	return n, nil
}
