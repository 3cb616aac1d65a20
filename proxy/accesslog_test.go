package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
)

// lockedBuffer is an io.Writer the test reads after Close.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

type accessLine struct {
	Time, Host, App, Slot, Revision, Method, Target, Cause, Client string
	Status                                                         int
	DurationMS                                                     float64 `json:"duration_ms"`
	BytesIn                                                        int64   `json:"bytes_in"`
	BytesOut                                                       int64   `json:"bytes_out"`
}

// TestAccessLogLineForEveryRequest: under 16 connections on each data
// plane, the access log has exactly one line per request, each valid JSON
// naming the request and its answer.
func TestAccessLogLineForEveryRequest(t *testing.T) {
	for _, plane := range []string{"Serve", "ServeHTTP"} {
		t.Run(plane, func(t *testing.T) {
			var out lockedBuffer
			al := NewAccessLog(&out)
			al.Open()
			up := startUpstream(t, "a--000001")
			p := newTestProxy(t, Config{AccessLog: al})
			p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", addrOf(up))})
			base := ""
			if plane == "Serve" {
				base = startServe(t, p)
			} else {
				s := httptest.NewServer(p)
				t.Cleanup(s.Close)
				base = s.URL
			}
			client := newClient(t, 16)
			const conns, each = 16, 20
			var wg sync.WaitGroup
			for i := range conns {
				wg.Go(func() {
					for j := range each {
						host := "a.localhost"
						if j == 0 {
							host = "nobody.localhost"
						}
						if _, _, err := getVia(client, fmt.Sprintf("%s/c%d/r%d", base, i, j), host); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			al.Close()

			lines := bytes.Split(bytes.TrimSuffix(out.b.Bytes(), []byte("\n")), []byte("\n"))
			if len(lines) != conns*each {
				t.Fatalf("%d lines for %d requests (%d dropped)", len(lines), conns*each, al.Dropped())
			}
			seen := map[string]bool{}
			for _, raw := range lines {
				var l accessLine
				if err := json.Unmarshal(raw, &l); err != nil {
					t.Fatalf("line %q: %v", raw, err)
				}
				seen[l.Target] = true
				switch {
				case l.Host == "nobody.localhost":
					if l.Status != 404 || l.App != "" {
						t.Errorf("unknown host: %s", raw)
					}
				case l.Status != 200 || l.App != "a" || l.Slot != "production" || l.Revision != "a--000001" ||
					l.Method != "GET" || l.BytesOut == 0 || l.Client == "" || l.Time == "":
					t.Errorf("line %s", raw)
				}
			}
			if len(seen) != conns*each {
				t.Errorf("%d distinct targets, want %d", len(seen), conns*each)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, in := range []string{"plain", `q"uote\back`, "ctl\x00\x1f\n", "utf8 ✓", "bad \xff byte"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, []byte(in)), &got); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if want := string(bytes.ToValidUTF8([]byte(in), []byte("\uFFFD"))); got != want {
			t.Errorf("%q: got %q", in, got)
		}
	}
}

// TestAccessLogOnDoesNotAllocate: with the access log on, steady
// keep-alive GETs on the data plane still allocate nothing per request
// (the line is built in a per-connection buffer and copied into the log's).
func TestAccessLogOnDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	al := NewAccessLog(io.Discard)
	al.Open()
	t.Cleanup(func() { al.Close() })
	up := startRawUpstream(t, 29)
	p := newTestProxy(t, Config{AccessLog: al})
	p.SetRoutes([]Route{route1("a.localhost", "a", "a--000001", up)})
	c := newRawClient(t, startServe(t, p), "a.localhost")
	defer c.close()
	for range 100 {
		if err := c.get(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := c.get(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per request with the access log on, want 0", allocs)
	}
}
