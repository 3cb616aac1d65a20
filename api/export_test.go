package api

// RoutePatterns lists the pattern of every API route, so the route table
// test can check that it covers them all.
func RoutePatterns() []string {
	var out []string
	for _, rt := range (&Server{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}
