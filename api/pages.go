package api

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/batonhq/baton"
)

// maxPage is the largest page the app lists answer (limit).
const maxPage = 1000

// appsPage picks the apps a list call asks for: ?app=NAME (repeatable)
// names them (each must exist), otherwise every app by name from after
// ?after=NAME, at most ?limit=N of them. When more follow, a Link header
// (rel="next") gives the next page's URL; without limit every app is
// answered, as before pagination.
func (s *Server) appsPage(w http.ResponseWriter, r *http.Request) ([]baton.App, error) {
	q := r.URL.Query()
	if names := q["app"]; len(names) > 0 {
		out := make([]baton.App, 0, len(names))
		for _, n := range names {
			a, err := s.Store.App(r.Context(), n)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		return out, nil
	}
	limit, err := QueryLimit(r, 0, maxPage)
	if err != nil {
		return nil, err
	}
	apps, err := s.Store.Apps(r.Context())
	if err != nil {
		return nil, err
	}
	if after := q.Get("after"); after != "" {
		apps = apps[sort.Search(len(apps), func(i int) bool { return apps[i].Name > after }):]
	}
	if limit > 0 && len(apps) > limit {
		apps = apps[:limit]
		next := url.Values{"limit": {strconv.Itoa(limit)}, "after": {apps[limit-1].Name}}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	return apps, nil
}
