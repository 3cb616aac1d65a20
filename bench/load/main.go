// Command load is the benchmarks' HTTP/1.1 load generator. It keeps c
// connections busy with one request at a time each (closed loop) until n
// requests are done or d has passed, whichever comes first, then prints one
// JSON line: requests, errors, requests/s and latency percentiles.
//
// It speaks HTTP/1.1 on raw sockets with a prepared request and a minimal
// response parser, so it spends as little of the shared CPU as possible:
// on a 2-core machine a heavy client would measure itself, not the proxy.
// It refuses targets outside the loopback range. With -client go it also
// speaks https: HTTP/1.1 over TLS, or HTTP/2 with -h2 (certificates are
// not verified: targets are loopback only).
//
//	load -url http://127.0.0.1:8080/ -host hello.localhost -c 16 -n 200000 -d 5s
//	load -client go -h2 -url https://127.0.0.1:8443/ -host hello.localhost -c 16
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one run prints.
type Result struct {
	Client    string  `json:"client"`
	Proto     string  `json:"proto"`
	Conns     int     `json:"conns"`
	KeepAlive bool    `json:"keepalive"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
}

type options struct {
	scheme, addr, path, host string
	// goClient: load with net/http's Client instead of raw sockets.
	goClient bool
	// h2: HTTP/2 (https only); h2Shared: every worker on one connection.
	h2, h2Shared bool
	conns        int
	n            int64
	d, warmup    time.Duration
	keepAlive    bool
}

func main() {
	var o options
	target := flag.String("url", "http://127.0.0.1:8080/", "target URL (loopback only)")
	flag.StringVar(&o.host, "host", "", "Host header (default: the URL's host)")
	flag.IntVar(&o.conns, "c", 16, "concurrent connections")
	flag.Int64Var(&o.n, "n", 1_000_000, "stop after this many requests")
	flag.DurationVar(&o.d, "d", 5*time.Second, "stop after this long")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "load before measuring (not counted)")
	flag.BoolVar(&o.keepAlive, "k", true, "keep connections alive (false: one connection per request)")
	client := flag.String("client", "raw", "raw: minimal HTTP/1.1 on sockets; go: net/http's Client (heavier, as many Go load tools)")
	flag.BoolVar(&o.h2, "h2", false, "with -client go and an https URL: HTTP/2, one connection per -c (default: HTTP/1.1 over TLS)")
	flag.BoolVar(&o.h2Shared, "h2-shared", false, "with -h2: the -c workers share one connection (concurrent streams)")
	freePorts := flag.Int("free-ports", 0, "print this many free loopback ports and exit (for scripts)")
	flag.Parse()
	if *freePorts > 0 {
		if err := printFreePorts(*freePorts); err != nil {
			fail(err)
		}
		return
	}

	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		fail(fmt.Errorf("-url %q: want http://HOST:PORT/PATH or https://…", *target))
	}
	if err := loopbackOnly(u.Host); err != nil {
		fail(err)
	}
	o.scheme, o.addr, o.path = u.Scheme, u.Host, u.RequestURI()
	switch *client {
	case "raw":
	case "go":
		o.goClient = true
	default:
		fail(fmt.Errorf("-client %q: want raw or go", *client))
	}
	if o.scheme == "https" && !o.goClient {
		fail(errors.New("https needs -client go: the raw client speaks plain HTTP/1.1 only"))
	}
	if o.h2 && o.scheme != "https" {
		fail(errors.New("-h2 needs an https:// URL (HTTP/2 over TLS)"))
	}
	if o.host == "" {
		o.host = u.Host
	}
	if o.conns < 1 || o.n < 1 || o.d <= 0 {
		fail(errors.New("-c, -n and -d must be positive"))
	}
	if o.warmup > 0 {
		w := o
		w.d, w.n = o.warmup, o.n
		run(w)
	}
	res := run(o)
	json.NewEncoder(os.Stdout).Encode(res)
	if res.Requests == 0 {
		os.Exit(1)
	}
}

// printFreePorts prints n loopback ports that were free a moment ago, for
// the benchmark script to configure the proxies it starts.
func printFreePorts(n int) error {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(2)
}

// loopbackOnly refuses any target that is not a loopback address: this
// tool generates load and must never aim it at another machine.
func loopbackOnly(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("target %q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q is not a loopback address", hostport)
	}
	return nil
}

// run drives the load and collects the result. Every worker ends when the
// shared budget of requests is used up or the deadline passes.
func run(o options) Result {
	req := []byte("GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nUser-Agent: baton-bench\r\n")
	if !o.keepAlive {
		req = append(req, "Connection: close\r\n"...)
	}
	req = append(req, "\r\n"...)

	var (
		left     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
	)
	left.Store(o.n)
	lat := make([][]time.Duration, o.conns)
	start := time.Now()
	deadline := start.Add(o.d)
	var gc *goClient
	if o.goClient {
		gc = newGoClient(o, deadline)
		defer gc.close()
	}
	for i := range o.conns {
		wg.Go(func() {
			w := worker{o: o, req: req, lat: make([]time.Duration, 0, 1<<16)}
			do := w.do
			if gc != nil {
				do = func(time.Time) error { return gc.do(i) }
			}
			for left.Add(-1) >= 0 && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := do(deadline); err != nil {
					errs.Add(1)
					s := err.Error()
					firstErr.CompareAndSwap(nil, &s)
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
			}
			w.close()
			lat[i] = w.lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	all := slices.Concat(lat...)
	slices.Sort(all)
	res := Result{
		Client: "raw", Proto: "HTTP/1.1", Conns: o.conns, KeepAlive: o.keepAlive,
		Requests: int64(len(all)), Errors: errs.Load(),
		Seconds: elapsed.Seconds(),
		RPS:     float64(len(all)) / elapsed.Seconds(),
		P50ms:   pct(all, 0.50), P99ms: pct(all, 0.99), P999ms: pct(all, 0.999),
	}
	if p := firstErr.Load(); p != nil {
		res.FirstErr = *p
	}
	if o.goClient {
		res.Client = "go"
	}
	switch {
	case o.h2 && o.h2Shared:
		res.Proto = "h2 (one connection)"
	case o.h2:
		res.Proto = "h2"
	case o.scheme == "https":
		res.Proto = "HTTP/1.1+TLS"
	}
	return res
}

func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*q), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

// worker is one connection's closed loop.
type worker struct {
	o    options
	req  []byte
	conn net.Conn
	br   *bufio.Reader
	lat  []time.Duration
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// do sends one request and reads its response to the end.
func (w *worker) do(deadline time.Time) error {
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.o.addr, 5*time.Second)
		if err != nil {
			return err
		}
		w.conn = c
		if w.br == nil {
			w.br = bufio.NewReaderSize(c, 64<<10)
		} else {
			w.br.Reset(c)
		}
	}
	// A hung server must not outlive the run's bounds.
	w.conn.SetDeadline(deadline.Add(5 * time.Second))
	keep, err := w.roundTrip()
	if err != nil || !keep || !w.o.keepAlive {
		w.close()
	}
	return err
}

func (w *worker) roundTrip() (keep bool, err error) {
	if _, err := w.conn.Write(w.req); err != nil {
		return false, err
	}
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("bad status line %q", line)
	}
	status := line[9:12]
	ok := status[0] == '2'
	statusText := string(status)
	keep = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		line, err = w.br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return false, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return false, err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		err = discardChunked(w.br)
	case length >= 0:
		_, err = w.br.Discard(int(length))
	default:
		_, err = io.Copy(io.Discard, w.br)
		keep = false
	}
	if err != nil {
		return false, err
	}
	if !ok {
		return keep, fmt.Errorf("status %s", statusText)
	}
	return keep, nil
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
