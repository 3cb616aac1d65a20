package server

import (
	"context"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/postgres"
)

// sharing is what the coordinator needs when other controllers use the same
// store: the shared artifact store and wake-ups from the database; and the
// cluster's peer key for the proxy.
type sharing struct {
	shared  bool
	blobs   baton.BlobStore
	wake    <-chan string
	peerKey string
	stop    func() // ends the listener and the goroutine feeding wake
}

// share sets up sharing for a PostgreSQL store (nothing for SQLite). The
// goroutine it starts belongs to the server and ends in stop.
func (s *Server) share(ctx context.Context, st baton.Store) (sharing, error) {
	pg, ok := st.(*postgres.DB)
	if !ok {
		return sharing{stop: func() {}}, nil
	}
	peerKey, err := pg.PeerKey(ctx)
	if err != nil {
		return sharing{}, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	l, err := pg.Listen(lctx, postgres.ChannelDeploymentQueued, postgres.ChannelLeaseReleased, postgres.ChannelRouting)
	if err != nil {
		cancel()
		return sharing{}, err
	}
	wake := make(chan string, 64)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for n := range l.C {
			// Payloads are an app name (queued, moved) or a lease key ("app:NAME"); a
			// resource key wakes nobody (its waiters poll their deadline).
			app := n.Payload
			if k, ok := strings.CutPrefix(app, "app:"); ok {
				app = k
			} else if strings.Contains(app, ":") {
				continue
			}
			select {
			case wake <- app:
			default: // the coordinator's periodic look catches up
			}
		}
	}()
	return sharing{shared: true, blobs: pg, wake: wake, peerKey: peerKey, stop: func() { cancel(); l.Close() }}, nil
}
