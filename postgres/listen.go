package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channels the store notifies (PostgreSQL NOTIFY), always on commit of the
// change they announce.
const (
	// ChannelLeaseReleased carries a lease key ("app:NAME") whenever a lease
	// is released, broken, deleted with its app, or dropped by
	// FailInterrupted. A lease that merely expires sends nothing: a waiter
	// also wakes at the ExpiresAt it was refused with.
	ChannelLeaseReleased = "baton_lease_released"
	// ChannelDeploymentQueued carries an app name whenever Enqueue queues
	// a deployment of that app.
	ChannelDeploymentQueued = "baton_deployment_queued"
	// ChannelRouting carries an app name whenever its routing generation
	// advances (SetRouting switched it, AssignApp moved it to another
	// controller, SetPlacements placed a revision's instances) and when a
	// host reports how its placement stands (ReportPlacement).
	ChannelRouting = "baton_routing"
)

// Notification is one notification received by a Listener.
type Notification struct {
	Channel string
	// Payload is the key or app the notification is about. It is empty
	// after the listener had to reconnect: notifications may have been
	// missed, so anything on Channel may have changed.
	Payload string
}

// Listener receives notifications on a connection of its own, outside the
// pool, read by one goroutine that ends when the context passed to Listen
// is done, when Close is called, or when the DB is closed.
//
// Notifications are wake-up hints, not a log: a consumer re-reads the state
// it cares about, and still wakes on its own at the deadlines it knows of
// (a lease's expiry), because an expiring lease notifies nobody.
type Listener struct {
	// C delivers notifications in the order the database sent them; it is
	// closed when the listener stops. Delivery waits for the reader, so a
	// slow reader delays notifications but loses none.
	C <-chan Notification

	cancel context.CancelFunc
	done   chan struct{}
}

// Listen subscribes to channels. When it returns, every notification
// committed from then on is delivered on the Listener's C.
func (s *DB) Listen(ctx context.Context, channels ...string) (*Listener, error) {
	if len(channels) == 0 {
		return nil, errors.New("listen: no channels")
	}
	conn, err := s.listenConn(ctx, channels)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		closeConn(conn)
		return nil, errors.New("listen: the store is closed")
	}
	lctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	c := make(chan Notification)
	l := &Listener{C: c, cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.done)
		defer close(c)
		defer stop()
		s.listen(lctx, conn, channels, c)
	}()
	return l, nil
}

// Close stops the listener and waits until its goroutine has ended.
func (l *Listener) Close() error {
	l.cancel()
	<-l.done
	return nil
}

// listenConn opens a connection and subscribes it to channels.
func (s *DB) listenConn(ctx context.Context, channels []string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	return conn, nil
}

// Reconnection backoff of a listener whose connection broke: the first
// attempt is immediate, repeated failures wait longer and longer, and only
// a notification received resets the wait (so a connection that breaks
// as soon as it is made does not spin).
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// listen forwards notifications from conn to c until ctx is done,
// reconnecting when the connection breaks.
func (s *DB) listen(ctx context.Context, conn *pgx.Conn, channels []string, c chan<- Notification) {
	defer func() { closeConn(conn) }()
	send := func(n Notification) bool {
		select {
		case c <- n:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var backoff time.Duration
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			backoff = 0
			if !send(Notification{Channel: n.Channel, Payload: n.Payload}) {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// The connection broke (server restart, network): reconnect, then
		// tell the reader that anything may have happened meanwhile.
		closeConn(conn)
		conn = nil
		for conn == nil {
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			conn, _ = s.listenConn(ctx, channels) // nil on failure: try again
		}
		for _, ch := range channels {
			if !send(Notification{Channel: ch}) {
				return
			}
		}
	}
}

// closeConn closes conn (if any) without waiting long for a server that
// may be gone.
func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
