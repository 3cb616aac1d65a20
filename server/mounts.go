package server

import "net/http"

// mounts returns handlers served on the API listener beside the REST API,
// keyed by http.ServeMux pattern (for example "/git/").
func (s *Server) mounts() map[string]http.Handler {
	return map[string]http.Handler{}
}

// wrapAPI lets a handler take requests by Host before the API's routes (for
// example APP.scm.DOMAIN); it returns h unchanged when nothing needs to.
func (s *Server) wrapAPI(h http.Handler) http.Handler {
	return h
}
