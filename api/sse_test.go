package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// TestSSEStreamWire: the head, an event with and without id, a JSON
// event, a retry and a comment, as the wire carries them.
func TestSSEStreamWire(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := newSSE(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	s.start()
	s.retry(time.Second)
	s.event("7", "log", []byte("a line"))
	s.eventJSON("", "end", map[string]int{"n": 1})
	s.keepAlive()
	if got := rec.Header().Get("Content-Type"); got != "text/event-stream" || rec.Code != http.StatusOK || !rec.Flushed {
		t.Fatalf("head: %d %q flushed %t", rec.Code, got, rec.Flushed)
	}
	want := "retry: 1000\n\nid: 7\nevent: log\ndata: a line\n\nevent: end\ndata: {\"n\":1}\n\n: keepalive\n\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("body:\n%q\nwant\n%q", got, want)
	}
}

// noFlush is a ResponseWriter that cannot flush.
type noFlush struct{ http.ResponseWriter }

func TestSSEStreamNeedsFlusher(t *testing.T) {
	if _, err := newSSE(noFlush{httptest.NewRecorder()}); baton.ErrorCode(err) != baton.EINTERNAL {
		t.Fatalf("newSSE without Flush = %v, want EINTERNAL", err)
	}
}

func TestResumeSeq(t *testing.T) {
	for _, tc := range []struct {
		header, after string
		want          int64
	}{
		{"", "", -1},
		{"12", "", 12},
		{"", "12", 12},
		{"12", "3", 12}, // the header wins
		{"x", "", -1},
		{"-4", "", -1},
	} {
		r := httptest.NewRequest("GET", "/?after="+tc.after, nil)
		if tc.header != "" {
			r.Header.Set("Last-Event-ID", tc.header)
		}
		if got := resumeSeq(r); got != tc.want {
			t.Errorf("Last-Event-ID %q after %q: %d, want %d", tc.header, tc.after, got, tc.want)
		}
	}
}
