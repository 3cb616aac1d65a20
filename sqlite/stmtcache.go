package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	msqlite "modernc.org/sqlite"
)

// maxCachedStmts bounds each connection's prepared statements: the store
// runs about two hundred distinct statements; a connection that somehow
// ran more starts its cache again.
const maxCachedStmts = 256

// cachingConnector opens SQLite connections that keep every single
// statement they run prepared, keyed by its text, and run it again from
// there. SQLite parses and plans a statement each time it is prepared;
// database/sql prepares each query passed as a string anew, and that was
// the largest part of the store's CPU time for its short statements (a
// deployment's phase writes, a lease renewal, a status read).
type cachingConnector struct{ driver.Connector }

func newCachingConnector(dsn string) (driver.Connector, error) {
	base, err := msqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return cachingConnector{base}, nil
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite: the driver's connection (%T) lacks an interface the statement cache forwards", conn)
	}
	return &cachingConn{sqliteConn: sc, stmts: map[string]*cachedStmt{}}, nil
}

// The interfaces every connection of the driver implements, which a
// wrapper must forward (modernc.org/sqlite's NewConnector says why):
// cachingConn embeds them and replaces only ExecContext, QueryContext and
// Close.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is one connection with its prepared statements. It needs no
// lock: database/sql hands a connection to one goroutine at a time.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	stmt driver.Stmt
	// busy: rows of it are open. Running the same text again before they
	// close (a query inside the loop over its own rows) prepares a
	// statement of its own, as before.
	busy bool
	// dropped from the cache while busy: closed when its rows close.
	dropped, closed bool
}

// release ends a use of the statement.
func (cs *cachedStmt) release() {
	cs.busy = false
	if cs.dropped {
		cs.close()
	}
}

func (cs *cachedStmt) close() {
	if !cs.closed {
		cs.closed = true
		cs.stmt.Close()
	}
}

// Unwrap is the driver's own connection (modernc.org/sqlite looks for it).
func (c *cachingConn) Unwrap() driver.Conn { return c.sqliteConn }

// prepared returns the statement for query and a function to call once
// its use ends. Scripts of several statements (migrations) are run by the
// driver as before, never cached: the statement is nil then.
func (c *cachingConn) prepared(ctx context.Context, query string) (driver.Stmt, func(), error) {
	if strings.Contains(query, ";") {
		return nil, nil, nil
	}
	if cs := c.stmts[query]; cs != nil {
		if cs.busy {
			s, err := c.PrepareContext(ctx, query)
			if err != nil {
				return nil, nil, err
			}
			return s, func() { s.Close() }, nil
		}
		cs.busy = true
		return cs.stmt, cs.release, nil
	}
	s, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if len(c.stmts) >= maxCachedStmts {
		c.forget()
	}
	cs := &cachedStmt{stmt: s, busy: true}
	c.stmts[query] = cs
	return s, cs.release, nil
}

// forget closes the cached statements no rows are open on and drops all
// of them from the cache; a busy one is closed when its rows close.
func (c *cachingConn) forget() {
	for _, cs := range c.stmts {
		if cs.busy {
			cs.dropped = true
		} else {
			cs.close()
		}
	}
	clear(c.stmts)
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, done, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	defer done()
	return s.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, done, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		done()
		return nil, err
	}
	return &releasingRows{Rows: rows, done: done}, nil
}

func (c *cachingConn) Close() error {
	for _, cs := range c.stmts {
		cs.close()
	}
	clear(c.stmts)
	return c.sqliteConn.Close()
}

// releasingRows gives its statement back to the cache when closed.
type releasingRows struct {
	driver.Rows
	done func()
}

func (r *releasingRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}
