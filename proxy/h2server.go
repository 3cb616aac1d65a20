package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file is baton's HTTP/2 server, for the TLS connections that
// negotiate h2 (tls.go); h2stream.go holds a stream's request and
// response. It replaces net/http's HTTP/2 server, which cost twice the
// CPU of HTTP/1.1 per request: there every frame a handler writes goes
// through the connection's serving goroutine and back, and a response's
// HEADERS and DATA leave as two TLS records in two syscalls. Here a
// connection has one goroutine, which reads and dispatches frames; each
// stream runs ServeHTTP on a goroutine of its own, as before, and writes
// its frames itself under the connection's write lock, its head and a
// body that fits the flow-control windows in one TLS record. Writers that
// queue behind each other share one flush: the last one flushes.
//
// x/net's Framer reads and writes frames (it checks their sizes and
// flags, joins CONTINUATION frames and decodes header blocks) and its
// HPACK encoder compresses response heads. The rules of RFC 9113 that
// concern streams, flow control and errors are here; where net/http's
// server departs from the RFC (h2spec: repeated settings, malformed
// requests answered 400 instead of reset), this one follows the RFC.

const (
	// h2MaxFrameSize is the largest frame read (SETTINGS_MAX_FRAME_SIZE):
	// RFC 9113's initial 16 KiB, which no client needs more than.
	h2MaxFrameSize = 16 << 10
	// h2HeaderTableSize is the HPACK dynamic table size of the decoder.
	h2HeaderTableSize = 4096
	// h2MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS, as net/http's.
	h2MaxStreams = 250
	// h2StreamWindow and h2ConnWindow are how much of request bodies a
	// client may send ahead of what the instance has read, per stream and
	// in all: they bound what a connection buffers.
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 1 << 20
	// h2PrefaceTimeout bounds the wait for the client's preface.
	h2PrefaceTimeout = 10 * time.Second
	// h2GoAwayLinger is how long a connection closed for an error keeps
	// reading, so that the GOAWAY reaches the client before a reset.
	h2GoAwayLinger = time.Second
	// h2MaxWindow is the largest flow-control window (RFC 9113 6.9.1).
	h2MaxWindow = 1<<31 - 1
)

// h2ServerContext stands for the http.Server in a stream's context
// (http.ServerContextKey): ReverseProxy and forwardPooled abort a
// response cut short only for requests that came through a server.
var h2ServerContext = new(http.Server)

// h2Server holds the HTTP/2 connections of a Proxy.
type h2Server struct {
	p *Proxy

	mu       sync.Mutex
	sessions map[*h2Session]struct{}
	shutting bool
	// gone is closed when sessions becomes empty after shutting is set.
	gone chan struct{}
	// handlers counts streams whose ServeHTTP runs; idle is closed when
	// it reaches zero after shutdown asked for it.
	handlers int
	idle     chan struct{}
}

func newH2Server(p *Proxy) *h2Server {
	return &h2Server{p: p, sessions: make(map[*h2Session]struct{})}
}

// serveH2 serves tc, which negotiated h2, on a goroutine of its own.
func (p *Proxy) serveH2(tc *tls.Conn) {
	s := &p.srv
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		tc.Close()
		return
	}
	if s.h2 == nil {
		s.h2 = newH2Server(p)
	}
	h := s.h2
	s.wg.Add(1)
	s.mu.Unlock()
	sess := newH2Session(h, tc)
	if !h.add(sess) {
		s.wg.Done()
		tc.Close()
		return
	}
	go func() {
		defer s.wg.Done()
		defer h.remove(sess)
		sess.serve()
	}()
}

func (h *h2Server) add(s *h2Session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutting {
		return false
	}
	h.sessions[s] = struct{}{}
	return true
}

func (h *h2Server) remove(s *h2Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, s)
	if h.shutting && len(h.sessions) == 0 && h.gone != nil {
		close(h.gone)
		h.gone = nil
	}
}

// openConns is how many HTTP/2 connections are open now.
func (h *h2Server) openConns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *h2Server) handlerStarted() {
	h.mu.Lock()
	h.handlers++
	h.mu.Unlock()
}

func (h *h2Server) handlerDone() {
	h.mu.Lock()
	h.handlers--
	if h.handlers == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
	h.mu.Unlock()
}

// shutdown sends every connection a GOAWAY and waits until their streams
// have finished and they closed, then until every handler returned. When
// ctx ends first it closes the connections and returns ctx's cause.
func (h *h2Server) shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutting = true
	gone := make(chan struct{})
	if len(h.sessions) == 0 {
		close(gone)
	} else {
		h.gone = gone
	}
	sessions := make([]*h2Session, 0, len(h.sessions))
	for s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	// When ctx ends the connections close, which also ends a GOAWAY's
	// write to a client that reads nothing.
	stop := context.AfterFunc(ctx, func() {
		for _, s := range sessions {
			s.c.Close()
		}
	})
	defer stop()
	for _, s := range sessions {
		s.goAway(http2.ErrCodeNo)
	}
	var err error
	select {
	case <-gone:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	// Handlers of closed connections see their requests cancelled and
	// return promptly; until then they hold their upstreams' counts.
	h.mu.Lock()
	var idle chan struct{}
	if h.handlers > 0 {
		idle = make(chan struct{})
		h.idle = idle
	}
	h.mu.Unlock()
	if idle != nil {
		<-idle
	}
	return err
}

// h2Session is one client's HTTP/2 connection.
type h2Session struct {
	h        *h2Server
	c        *tls.Conn
	tlsState *tls.ConnectionState
	remote   string
	ctx      context.Context // the streams' parent, cancelled when the connection ends
	cancel   context.CancelFunc
	fr       *http2.Framer // reads; only serve uses it
	canon    map[string]string

	// The write side, under wmu: the frames of every stream go through
	// one buffer, HPACK encoder and deadline.
	wmu      sync.Mutex
	writers  atomic.Int32 // writers holding or waiting for wmu
	bw       *bufio.Writer
	wfr      *http2.Framer
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	werr     error     // the first write error: the connection is done
	deadline time.Time // the write deadline last set
	// maxFrame is the client's SETTINGS_MAX_FRAME_SIZE, for writers.
	maxFrame atomic.Int32

	// The rest is under mu. cond is signalled when a send window grows
	// or a stream or the connection ends. mu may be taken while holding
	// wmu (a stream's end is noted as it is written), never the other
	// way round: nothing writes while holding mu.
	mu           sync.Mutex
	cond         sync.Cond
	streams      map[uint32]*h2Stream // open (not closed) streams
	maxStreamID  uint32               // highest stream the client opened
	sendWindow   int64                // the connection's, for response bodies
	initWindow   int64                // SETTINGS_INITIAL_WINDOW_SIZE of the client
	recvWindow   int64                // how much more the client may send in all
	recvUnacked  int64                // request bytes read but not yet given back
	settingsAckd bool                 // the client acknowledged our SETTINGS
	running      int                  // streams whose handler runs
	queued       []*h2Stream          // streams waiting for a handler slot
	goingAway    bool                 // GOAWAY sent: no new streams
	closed       bool                 // the connection ended
	idleTimer    *time.Timer
}

func newH2Session(h *h2Server, tc *tls.Conn) *h2Session {
	st := tc.ConnectionState()
	s := &h2Session{
		h: h, c: tc, tlsState: &st, remote: tc.RemoteAddr().String(),
		streams:    make(map[uint32]*h2Stream),
		sendWindow: 65535, initWindow: 65535,
		recvWindow: h2ConnWindow,
		canon:      make(map[string]string),
	}
	s.cond.L = &s.mu
	s.maxFrame.Store(16 << 10)
	ctx := context.WithValue(context.Background(), http.ServerContextKey, h2ServerContext)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, tc.LocalAddr())
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.fr = http2.NewFramer(nil, tc)
	s.fr.SetMaxReadFrameSize(h2MaxFrameSize)
	s.fr.MaxHeaderListSize = uint32(s.h.p.maxHeaderBytes + 10*32) // as net/http's
	s.fr.ReadMetaHeaders = hpack.NewDecoder(h2HeaderTableSize, nil)
	s.bw = bufio.NewWriterSize(tc, 16<<10+frameHeaderLen)
	s.wfr = http2.NewFramer(s.bw, nil)
	s.henc = hpack.NewEncoder(&s.hbuf)
	return s
}

// frameHeaderLen is the length of an HTTP/2 frame header (RFC 9113 4.1).
const frameHeaderLen = 9

// serve reads the client's frames until the connection ends, then ends
// its streams.
func (s *h2Session) serve() {
	defer s.end()
	s.c.SetReadDeadline(time.Now().Add(min(h2PrefaceTimeout, s.h.p.idleTimeout)))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(s.c, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return
	}
	err := s.write(func() error {
		if err := s.wfr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: s.fr.MaxHeaderListSize},
		); err != nil {
			return err
		}
		return s.wfr.WriteWindowUpdate(0, h2ConnWindow-65535)
	})
	if err != nil {
		return
	}
	first := true
	for {
		f, err := s.fr.ReadFrame()
		if first && err == nil {
			// The preface ends with a SETTINGS frame (RFC 9113 3.4).
			if _, ok := f.(*http2.SettingsFrame); !ok {
				err = http2.ConnectionError(http2.ErrCodeProtocol)
			} else {
				first = false
				s.c.SetReadDeadline(time.Time{})
				s.armIdle()
			}
		}
		if err == nil {
			err = s.process(f)
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		var ce http2.ConnectionError
		switch {
		case errors.As(err, &se):
			if f == nil && s.fr.ErrorDetail() != nil && se.StreamID%2 == 1 {
				// The framer refused a request's header fields (it says
				// why only of those): the stream was opened and is closed
				// now, so HEADERS opening it, or a lower one, again is a
				// connection error.
				s.mu.Lock()
				if !s.goingAway {
					s.maxStreamID = max(s.maxStreamID, se.StreamID)
				}
				s.mu.Unlock()
			}
			s.resetStream(se.StreamID, se.Code)
			continue
		case errors.Is(err, http2.ErrFrameTooLarge):
			ce = http2.ConnectionError(http2.ErrCodeFrameSize)
		case errors.As(err, &ce):
		default:
			return // the client left, or the connection broke
		}
		if f != nil {
			s.mu.Lock()
			if !s.goingAway {
				// A GOAWAY already sent named the last stream; it stands.
				s.maxStreamID = max(s.maxStreamID, f.Header().StreamID)
			}
			s.mu.Unlock()
		}
		s.h.p.log.Debug("proxy: HTTP/2 connection error", "client", s.remote, "err", err)
		s.closeWithError(http2.ErrCode(ce))
		return
	}
}

// closeWithError sends a GOAWAY with code and lingers a moment reading
// (see h2GoAwayLinger) before serve returns.
func (s *h2Session) closeWithError(code http2.ErrCode) {
	s.mu.Lock()
	s.goingAway = true
	last := s.maxStreamID
	s.mu.Unlock()
	if s.write(func() error { return s.wfr.WriteGoAway(last, code, nil) }) != nil {
		return
	}
	s.c.CloseWrite()
	s.c.SetReadDeadline(time.Now().Add(h2GoAwayLinger))
	io.Copy(io.Discard, io.LimitReader(s.c, 1<<20))
}

// end cancels what is left of the connection's streams and closes it.
func (s *h2Session) end() {
	s.mu.Lock()
	s.closed = true
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	for _, st := range s.streams {
		st.closeLocked(errH2ConnClosed)
	}
	s.queued = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	s.c.Close()
}

var (
	errH2ConnClosed   = errors.New("the HTTP/2 connection closed")
	errH2StreamClosed = errors.New("the HTTP/2 stream was reset")
)

// write runs fn, which writes frames with wfr, under the write lock. The
// last of the writers that queued behind each other flushes the buffer,
// so that a burst of responses leaves in as few TLS records as fit. An
// error ends the connection.
func (s *h2Session) write(fn func() error) error {
	s.writers.Add(1)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.werr
	if err == nil {
		// A client that takes longer than the idle timeout to take any
		// bytes is gone; the deadline moves only when half of it passed.
		// (fn may write to the connection too, when the buffer fills.)
		if now := time.Now(); s.deadline.Sub(now) < s.h.p.idleTimeout/2 {
			s.deadline = now.Add(s.h.p.idleTimeout)
			s.c.SetWriteDeadline(s.deadline)
		}
		err = fn()
	}
	if s.writers.Add(-1) == 0 && err == nil && s.bw.Buffered() > 0 {
		err = s.bw.Flush()
	}
	if err != nil && s.werr == nil {
		s.werr = err
		s.c.NetConn().Close() // serve's read fails and ends the rest; a broken connection takes no close_notify
	}
	return err
}

// process handles one frame from the client.
func (s *h2Session) process(f http2.Frame) error {
	s.mu.Lock()
	if s.goingAway && f.Header().StreamID > s.maxStreamID {
		// A stream begun after the GOAWAY is ignored (RFC 9113 6.8);
		// its data still counts against the connection's window.
		df, ok := f.(*http2.DataFrame)
		s.mu.Unlock()
		if ok {
			return s.discardData(df)
		}
		return nil
	}
	s.mu.Unlock()
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return s.processSettings(f)
	case *http2.MetaHeadersFrame:
		return s.processHeaders(f)
	case *http2.DataFrame:
		return s.processData(f)
	case *http2.WindowUpdateFrame:
		return s.processWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		data := f.Data
		return s.write(func() error { return s.wfr.WritePing(true, data) })
	case *http2.RSTStreamFrame:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.idleLocked(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st := s.streams[f.StreamID]; st != nil {
			st.reset.Store(true) // nothing more may be sent on it
			st.closeLocked(errH2StreamClosed)
		}
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		s.goAway(http2.ErrCodeNo) // the client is leaving: finish what runs
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients do not push
	}
	return nil // unknown frame types are ignored (RFC 9113 4.1)
}

// idleLocked reports whether stream id is idle: never opened.
func (s *h2Session) idleLocked(id uint32) bool {
	return id%2 == 1 && id > s.maxStreamID || id%2 == 0 && id != 0
}

func (s *h2Session) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		s.mu.Lock()
		s.settingsAckd = true
		s.mu.Unlock()
		return nil
	}
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	var tableSize uint32
	tableSet := false
	s.mu.Lock()
	// Repeated settings apply in order: the last value stands (6.5.3).
	err := f.ForeachSetting(func(set http2.Setting) error {
		if err := set.Valid(); err != nil {
			return err
		}
		switch set.ID {
		case http2.SettingInitialWindowSize:
			growth := int64(set.Val) - s.initWindow
			s.initWindow = int64(set.Val)
			for _, st := range s.streams {
				st.sendWindow += growth
				if st.sendWindow > h2MaxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
		case http2.SettingMaxFrameSize:
			s.maxFrame.Store(int32(set.Val))
		case http2.SettingHeaderTableSize:
			tableSize, tableSet = set.Val, true
		}
		return nil
	})
	s.cond.Broadcast()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.write(func() error {
		if tableSet {
			s.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return s.wfr.WriteSettingsAck()
	})
}

func (s *h2Session) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.StreamID == 0 {
		s.sendWindow += int64(f.Increment)
		if s.sendWindow > h2MaxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		s.cond.Broadcast()
		return nil
	}
	if s.idleLocked(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := s.streams[f.StreamID]
	if st == nil {
		return nil // a closed stream: updates may cross its end
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > h2MaxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	s.cond.Broadcast()
	return nil
}

func (s *h2Session) processData(f *http2.DataFrame) error {
	id := f.StreamID
	s.mu.Lock()
	if id == 0 || s.idleLocked(id) {
		s.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := s.streams[id]
	if st == nil || st.remoteDone || st.body == nil {
		s.mu.Unlock()
		if err := s.discardData(f); err != nil {
			return err
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	n := int64(f.Length)
	if n > s.recvWindow {
		s.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	if n > st.recvWindow {
		s.mu.Unlock()
		if err := s.discardData(f); err != nil {
			return err
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	s.recvWindow -= n
	st.recvWindow -= n
	data := f.Data()
	b := st.body
	if b.declared >= 0 && b.received+int64(len(data)) > b.declared {
		// More than its Content-Length: malformed (RFC 9113 8.1.1).
		unread := b.fail(errBodyOverLength)
		s.mu.Unlock()
		s.giveBack(nil, n+unread)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	b.received += int64(len(data))
	padding := n - int64(len(data))
	if b.err != nil {
		// The handler closed the body: nothing reads the data.
		padding += int64(len(data))
	} else if len(data) > 0 {
		b.appendLocked(data)
	}
	var err error
	if f.StreamEnded() {
		err = st.remoteEndLocked()
	}
	s.mu.Unlock()
	if padding > 0 {
		s.giveBack(st, padding)
	}
	return err
}

var errBodyOverLength = errors.New("the request body is longer than its Content-Length")

// discardData counts f against the connection's window and gives it
// back at once: its stream reads nothing.
func (s *h2Session) discardData(f *http2.DataFrame) error {
	n := int64(f.Length)
	if n == 0 {
		return nil
	}
	s.mu.Lock()
	if n > s.recvWindow {
		s.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	s.recvWindow -= n
	s.mu.Unlock()
	s.giveBack(nil, n)
	return nil
}

// giveBack returns n bytes of window to the client: the connection's,
// and st's when st is not nil. Updates go out once a quarter of a window
// is due, not for every read.
func (s *h2Session) giveBack(st *h2Stream, n int64) {
	var connInc, streamInc int64
	s.mu.Lock()
	s.recvUnacked += n
	if s.recvUnacked >= h2ConnWindow/4 {
		connInc, s.recvUnacked = s.recvUnacked, 0
		s.recvWindow += connInc
	}
	if st != nil && !st.remoteDone && st.body != nil && st.body.err == nil {
		st.recvUnacked += n
		if st.recvUnacked >= h2StreamWindow/4 {
			streamInc, st.recvUnacked = st.recvUnacked, 0
			st.recvWindow += streamInc
		}
	}
	s.mu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return
	}
	s.write(func() error {
		if connInc > 0 {
			if err := s.wfr.WriteWindowUpdate(0, uint32(connInc)); err != nil {
				return err
			}
		}
		if streamInc > 0 && !st.reset.Load() {
			return s.wfr.WriteWindowUpdate(st.id, uint32(streamInc))
		}
		return nil
	})
}

// resetStream sends RST_STREAM with code for stream id and closes it,
// if it is open.
func (s *h2Session) resetStream(id uint32, code http2.ErrCode) {
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st != nil {
		st.resetWith(code)
		return
	}
	s.write(func() error { return s.wfr.WriteRSTStream(id, code) })
}

// resetWith closes st and sends RST_STREAM with code, unless a reset
// went either way already: nothing may follow one (RFC 9113 5.4.2). The
// reset is marked before the stream closes: closing wakes its handler,
// whose response must not go out ahead of the RST_STREAM.
func (st *h2Stream) resetWith(code http2.ErrCode) {
	s := st.s
	first := !st.reset.Swap(true)
	s.mu.Lock()
	st.closeLocked(errH2StreamClosed)
	s.mu.Unlock()
	if first {
		s.write(func() error { return s.wfr.WriteRSTStream(st.id, code) })
	}
}

// goAway starts a graceful end: the client is told the last stream that
// is served, new ones are ignored, and the connection closes once the
// streams in progress finish.
func (s *h2Session) goAway(code http2.ErrCode) {
	s.mu.Lock()
	if s.goingAway || s.closed {
		s.mu.Unlock()
		return
	}
	s.goingAway = true
	last := s.maxStreamID
	done := len(s.streams) == 0 && s.running == 0
	s.mu.Unlock()
	s.write(func() error { return s.wfr.WriteGoAway(last, code, nil) })
	if done {
		s.stop()
	}
}

// stop ends serve's read, and so the connection, without waiting here.
func (s *h2Session) stop() { s.c.SetReadDeadline(aLongTimeAgo) }

// armIdle starts the idle timer when nothing runs on the connection: it
// closes the connection after the idle timeout, with a GOAWAY.
func (s *h2Session) armIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armIdleLocked()
}

func (s *h2Session) armIdleLocked() {
	if len(s.streams) > 0 || s.running > 0 || s.closed {
		return
	}
	if s.goingAway {
		s.stop() // everything the GOAWAY let finish has finished
		return
	}
	if s.idleTimer == nil {
		s.idleTimer = time.AfterFunc(s.h.p.idleTimeout, s.idleFired)
		return
	}
	s.idleTimer.Reset(s.h.p.idleTimeout)
}

func (s *h2Session) idleFired() {
	s.mu.Lock()
	busy := len(s.streams) > 0 || s.running > 0
	s.mu.Unlock()
	if !busy {
		s.goAway(http2.ErrCodeNo)
	}
}

// processHeaders opens a stream for a request, or ends a request body
// with its trailers.
func (s *h2Session) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	s.mu.Lock()
	if st := s.streams[id]; st != nil {
		defer s.mu.Unlock()
		if st.remoteDone {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return st.trailersLocked(f)
	}
	if id <= s.maxStreamID {
		s.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if s.goingAway {
		// A GOAWAY went out since process looked: the stream is past
		// its last one and is not served (the client may retry it).
		s.mu.Unlock()
		return nil
	}
	s.maxStreamID = id
	if len(s.streams) >= h2MaxStreams {
		code := http2.ErrCodeProtocol // over the limit it was told
		if !s.settingsAckd {
			code = http2.ErrCodeRefusedStream
		}
		s.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: code}
	}
	s.mu.Unlock()
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	st, req, err := s.newStream(f)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.cancel()
		return nil
	}
	st.sendWindow = s.initWindow
	s.streams[id] = st
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	if f.StreamEnded() {
		st.remoteDone = true
	}
	if s.running >= h2MaxStreams {
		// Streams the client reset still hold their handlers for a
		// moment; a client resetting streams as fast as it opens them
		// must not start handlers without bound (CVE-2023-44487).
		if len(s.queued) >= 4*h2MaxStreams {
			s.mu.Unlock()
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		st.req = req
		s.queued = append(s.queued, st)
		s.mu.Unlock()
		return nil
	}
	s.running++
	s.mu.Unlock()
	s.start(st, req)
	return nil
}

// start runs ServeHTTP for st's request on a goroutine of its own.
func (s *h2Session) start(st *h2Stream, req *http.Request) {
	s.h.handlerStarted()
	go st.run(req)
}

// handlerReturned notes that a stream's handler returned; a queued
// stream takes its place.
func (s *h2Session) handlerReturned() {
	s.mu.Lock()
	s.running--
	var next *h2Stream
	if len(s.queued) > 0 && !s.closed {
		next, s.queued = s.queued[0], s.queued[1:]
		s.running++
	}
	s.armIdleLocked()
	s.mu.Unlock()
	s.h.handlerDone()
	if next != nil {
		req := next.req
		next.req = nil
		s.start(next, req)
	}
}

// canonicalKey is http.CanonicalHeaderKey for a field name as h2 sends
// it (lower case), without allocating again for names the connection
// sent before.
func (s *h2Session) canonicalKey(name string) string {
	if k, ok := s.canon[name]; ok {
		return k
	}
	k := http.CanonicalHeaderKey(name)
	if len(s.canon) < 128 {
		s.canon[name] = k
	}
	return k
}
