package server

import (
	"net"
	"net/http"
	"sync"
)

// closeUnusedOnShutdown makes srv's Shutdown close the connections that
// have not sent a byte yet at once, as it does idle keep-alive ones.
// net/http counts such a connection as idle only once it is five seconds
// old, and clients leave them: Go's transport dials one for a request that
// then goes out on a connection freed meanwhile and keeps it, browsers
// pre-connect. One of them held baton's stop for five seconds (seen in
// `make bench-scale`, the first restart after a few API calls at once).
// A request whose first bytes arrive in the instant it is closed is cut,
// as an idle connection's is at shutdown. The channel returned is closed
// once Shutdown has closed them (for tests).
func closeUnusedOnShutdown(srv *http.Server) <-chan struct{} {
	closed := make(chan struct{})
	var mu sync.Mutex
	unused := map[net.Conn]struct{}{}
	next := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		mu.Lock()
		if st == http.StateNew {
			unused[c] = struct{}{}
		} else {
			delete(unused, c)
		}
		mu.Unlock()
		if next != nil {
			next(c, st)
		}
	}
	// Shutdown runs this once it has closed the listeners: no connection
	// arrives after it.
	srv.RegisterOnShutdown(func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range unused {
			c.Close()
			delete(unused, c)
		}
		close(closed)
	})
	return closed
}
