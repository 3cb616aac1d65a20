package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func defaultOptions() chartOptions {
	return chartOptions{Target: 0.6, LatencyWorkload: "small GET, keep-alive", LatencyConns: 16}
}

// element is one element of a parsed SVG.
type element struct {
	name  string
	attrs map[string]string
}

// parseSVG decodes an SVG strictly, failing the test unless it is
// well-formed XML, and returns its elements in document order.
func parseSVG(t testing.TB, b []byte) []element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var els []element
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			e := element{name: se.Name.Local, attrs: map[string]string{}}
			for _, a := range se.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			els = append(els, e)
		}
	}
	if len(els) == 0 || els[0].name != "svg" {
		t.Fatalf("root element is not <svg>")
	}
	return els
}

func render(t testing.TB, r *Results, o chartOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := renderSVG(&buf, r, o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func num(t testing.TB, e element, attr string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attrs[attr], 64)
	if err != nil {
		t.Fatalf("<%s> %s=%q: %v", e.name, attr, e.attrs[attr], err)
	}
	return v
}

func withClass(els []element, class string) []element {
	var out []element
	for _, e := range els {
		if e.attrs["class"] == class {
			out = append(out, e)
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.01*math.Max(1, math.Abs(b)) }

func TestRenderSVG(t *testing.T) {
	r, err := readResults("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	els := parseSVG(t, render(t, r, defaultOptions()))

	root := els[0]
	w, h := num(t, root, "width"), num(t, root, "height")
	if want := fmt.Sprintf("0 0 %.0f %.0f", w, h); root.attrs["viewBox"] != want {
		t.Errorf("viewBox %q, want %q", root.attrs["viewBox"], want)
	}
	if root.attrs["font-family"] != "sans-serif" || root.attrs["xmlns"] != "http://www.w3.org/2000/svg" {
		t.Errorf("root attributes %v: want the SVG namespace and font-family sans-serif", root.attrs)
	}

	// One bar per workload and path of the run's load client, direct
	// excepted: the fixture's two LOADER=go points draw none.
	bars := map[string]element{}
	for _, e := range withClass(els, "bar") {
		key := e.attrs["data-workload"] + "/" + e.attrs["data-conns"] + "/" + e.attrs["data-path"]
		if _, dup := bars[key]; dup {
			t.Errorf("two bars for %s", key)
		}
		bars[key] = e
		if x := num(t, e, "x") + num(t, e, "width"); x > w {
			t.Errorf("bar %s ends at x=%.1f, beyond the width %.0f", key, x, w)
		}
	}
	var want []string
	for _, wl := range []string{"small GET, keep-alive/16", "64 KiB GET, keep-alive/64"} {
		for _, p := range []string{"baton", "nginx", "caddy"} {
			want = append(want, wl+"/"+p)
		}
	}
	if len(bars) != len(want) {
		t.Errorf("%d bars, want %d: %v", len(bars), len(want), keys(bars))
	}
	for _, k := range want {
		if _, ok := bars[k]; !ok {
			t.Errorf("no bar for %s", k)
		}
	}

	// Lengths proportional to the ratios, from one origin, and the direct
	// and target lines on the same scale.
	small := bars["small GET, keep-alive/16/baton"]
	for _, tt := range []struct {
		bar   string
		ratio float64
	}{
		{"small GET, keep-alive/16/nginx", 0.25},
		{"small GET, keep-alive/16/caddy", 0.1},
		{"64 KiB GET, keep-alive/64/baton", 1.15},
	} {
		b := bars[tt.bar]
		if got, want := num(t, b, "width")/num(t, small, "width"), tt.ratio/0.5; !near(got, want) {
			t.Errorf("width %s / width of baton at 0.5 = %.3f, want %.3f", tt.bar, got, want)
		}
		if num(t, b, "x") != num(t, small, "x") {
			t.Errorf("bar %s starts at x=%s, baton's at %s", tt.bar, b.attrs["x"], small.attrs["x"])
		}
	}
	x0, unit := num(t, small, "x"), num(t, small, "width")/0.5
	for class, ratio := range map[string]float64{"direct": 1, "target": 0.6} {
		lines := withClass(els, class)
		if len(lines) != 1 {
			t.Errorf("%d lines of class %s, want 1", len(lines), class)
			continue
		}
		if got, want := num(t, lines[0], "x1"), x0+ratio*unit; !near(got, want) {
			t.Errorf("%s line at x=%.2f, want %.2f", class, got, want)
		}
	}

	// The p99 panel: every path of the small GET at 16, direct included.
	p99 := map[string]float64{}
	for _, e := range withClass(els, "p99-bar") {
		p99[e.attrs["data-path"]] = num(t, e, "width")
	}
	if len(p99) != 4 || p99["direct"] == 0 {
		t.Fatalf("p99 bars %v, want direct, baton, nginx and caddy", p99)
	}
	if got, want := p99["caddy"]/p99["direct"], 12.0/4; !near(got, want) {
		t.Errorf("p99 width caddy / direct = %.3f, want %.3f", got, want)
	}
}

func TestRenderSVGLoader(t *testing.T) {
	r, err := readResults("testdata/results.json")
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.Loader = "go"
	els := parseSVG(t, render(t, r, o))
	if bars := withClass(els, "bar"); len(bars) != 1 || bars[0].attrs["data-path"] != "baton" || bars[0].attrs["data-ratio"] != "0.6" {
		t.Errorf("bars of LOADER=go: %v, want one, baton at 0.6", bars)
	}

	// Without the p99 panel's workload (a run with ONLY=) the panel is
	// left out.
	o.LatencyConns = 99
	if bars := withClass(parseSVG(t, render(t, r, o)), "p99-bar"); len(bars) != 0 {
		t.Errorf("%d p99 bars for a workload the results do not have", len(bars))
	}

	o.Loader = "wrk"
	if err := renderSVG(io.Discard, r, o); err == nil {
		t.Error("a load client without points drew a chart")
	}
}

func TestRenderSVGEscapes(t *testing.T) {
	r := &Results{Date: "today", Machine: `a <"quoted"> & machine`, Loader: "raw", Points: []Point{
		{Workload: "GET <&>", Conns: 1, Path: "direct", RPS: 10, Ratio: ptr(1.0)},
		{Workload: "GET <&>", Conns: 1, Path: `x"y`, RPS: 5, Ratio: ptr(0.5)},
	}}
	els := parseSVG(t, render(t, r, defaultOptions()))
	bars := withClass(els, "bar")
	if len(bars) != 1 || bars[0].attrs["data-workload"] != "GET <&>" || bars[0].attrs["data-path"] != `x"y` {
		t.Errorf("bars %v, want one for workload %q, path %q", bars, "GET <&>", `x"y`)
	}
}

func TestParseMarkdown(t *testing.T) {
	md := `# Proxy benchmark

2026-11-28 12:41 UTC, 2 cores (AMD EPYC), Linux 6.18.44, load average at the end 11.23 10.67 11.69.
Upstream: bench/upstream. Load: bench/load (raw HTTP/1.1, closed loop), 3 interleaved rounds of 3s per point, median shown.
baton: bench/batonproxy. HAProxy version 2.6.12-1+deb12u4, 2 threads, http-reuse always; nginx 1.22.1, 2 workers, upstream keepalive; Caddy v2.11.9, reverse_proxy.

| workload | conns | path | req/s | ratio to direct | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU µs/req | upstream CPU µs/req |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
| small GET, keep-alive | 1 | direct | 11626 | 1.00 | 0.07 | 0.28 | 1.81 | 0 | - | 63.6 |
| small GET, keep-alive | 1 | baton | 5420 | 0.47 | 0.16 | 0.49 | 2.57 | 3 | 81.6 | 90.9 |

## What baton's request metrics cost

| workload | conns | req/s on | req/s off | on ÷ off | CPU µs/req on | CPU µs/req off |
|---|---:|---:|---:|---:|---:|---:|
| small GET, keep-alive | 1 | 3960 | 4519 | 0.876 | 89.2 | 77.1 |

Reproduce: ` + "`ROUNDS=3 DURATION=3s bench/proxies.sh`" + `

## The same with net/http's client as the load (LOADER=go)

| workload | conns | path | req/s | ratio to direct | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU µs/req | upstream CPU µs/req |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|
| small GET, keep-alive | 16 | direct | 0 | - | 0.00 | 0.00 | 0.00 | 12 | - | 0 |

Reproduce: ` + "`LOADER=go ROUNDS=1 DURATION=1s bench/proxies.sh`" + `
`
	got, err := parseMarkdown(strings.NewReader(md))
	if err != nil {
		t.Fatal(err)
	}
	want := &Results{
		Date:     "2026-11-28 12:41 UTC",
		Machine:  "2 cores (AMD EPYC), Linux 6.18.44, load average at the end 11.23 10.67 11.69",
		Loader:   "raw",
		Rounds:   3,
		Duration: "3s",
		Versions: map[string]string{"haproxy": "2.6.12-1+deb12u4", "nginx": "1.22.1", "caddy": "v2.11.9"},
		Points: []Point{
			{Loader: "raw", Workload: "small GET, keep-alive", Conns: 1, Path: "direct", RPS: 11626, Ratio: ptr(1.0),
				P50ms: 0.07, P99ms: 0.28, P999ms: 1.81, UpstreamCPUus: 63.6},
			{Loader: "raw", Workload: "small GET, keep-alive", Conns: 1, Path: "baton", RPS: 5420, Ratio: ptr(0.47),
				P50ms: 0.16, P99ms: 0.49, P999ms: 2.57, Errors: 3, ProxyCPUus: ptr(81.6), UpstreamCPUus: 90.9},
			{Loader: "go", Workload: "small GET, keep-alive", Conns: 16, Path: "direct", Errors: 12},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMarkdown:\n got %s\nwant %s", dump(got), dump(want))
	}

	for _, bad := range []string{
		"no table at all\n",
		"| a | b |\n",
		"| small GET | many | direct | 1 | 1.00 | 0 | 0 | 0 | 0 | - | 0 |\n",
	} {
		if _, err := parseMarkdown(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMarkdown(%q): no error", bad)
		}
	}
}

// TestCommittedResults keeps what the repository shows consistent: each
// table in bench/ (hey's run and the raw client's), its JSON and its
// chart in docs/.
func TestCommittedResults(t *testing.T) {
	for _, c := range []struct{ md, json, svg string }{
		{"results.md", "results.json", "proxy-bench.svg"},
		{"results-raw.md", "results-raw.json", "proxy-bench-raw.svg"},
	} {
		t.Run(c.md, func(t *testing.T) {
			regen := fmt.Sprintf("regenerate with: go run ./bench/chart -from-md bench/%s -json bench/%s -out docs/%s (or run bench/proxies.sh)", c.md, c.json, c.svg)
			f, err := os.Open("../" + c.md)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fromMD, err := parseMarkdown(f)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := readResults("../" + c.json)
			if err != nil {
				t.Fatalf("%v; %s", err, regen)
			}
			if !reflect.DeepEqual(fromMD, fromJSON) {
				t.Errorf("bench/%s does not hold the figures of bench/%s; %s", c.json, c.md, regen)
			}
			svg, err := os.ReadFile("../../docs/" + c.svg)
			if err != nil {
				t.Fatalf("%v; %s", err, regen)
			}
			if !bytes.Equal(svg, render(t, fromJSON, defaultOptions())) {
				t.Errorf("docs/%s is not the chart of bench/%s; %s", c.svg, c.json, regen)
			}
		})
	}
}

func TestNiceStep(t *testing.T) {
	for _, tt := range []struct{ span, want float64 }{
		{12, 2}, {1.1, 0.2}, {65, 20}, {0.3, 0.05}, {0, 1},
	} {
		if got := niceStep(tt.span, 6); !near(got, tt.want) {
			t.Errorf("niceStep(%g, 6) = %g, want %g", tt.span, got, tt.want)
		}
	}
}

func ptr(v float64) *float64 { return &v }

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func dump(r *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+v", *r)
	for _, p := range r.Points {
		fmt.Fprintf(&b, "\n  %+v ratio=%v proxy=%v", p, deref(p.Ratio), deref(p.ProxyCPUus))
	}
	return b.String()
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
