package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// startShutdownServer serves handler with closeUnusedOnShutdown, reports
// each connection the server has taken (StateNew) on accepted, and closes
// closed once Shutdown closed the unused ones.
func startShutdownServer(t *testing.T, handler http.Handler) (srv *http.Server, addr string, accepted chan struct{}, closed <-chan struct{}) {
	t.Helper()
	accepted = make(chan struct{}, 16)
	srv = &http.Server{Handler: handler, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted <- struct{}{}
		}
	}}
	closed = closeUnusedOnShutdown(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String(), accepted, closed
}

// A connection that never sent a request does not hold Shutdown: net/http
// alone waits until it is five seconds old.
func TestShutdownClosesConnectionsThatSentNothing(t *testing.T) {
	srv, addr, accepted, _ := startShutdownServer(t, http.NotFoundHandler())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-accepted // the server holds it, in StateNew
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection that sent nothing: %v (want it closed, not waited for)", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the unused connection: read %d bytes, %v; want it closed", n, err)
	}
}

// A request in progress when Shutdown begins still gets its answer.
func TestShutdownLetsRequestsInProgressFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv, addr, _, closed := startShutdownServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}))
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && string(body) != "done" {
				err = errors.New("body " + string(body))
			}
		}
		answered <- err
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	<-closed // Shutdown began and closed the unused connections: not this one
	close(release)
	if err := <-answered; err != nil {
		t.Fatalf("the request in progress: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
