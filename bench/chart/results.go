package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Results is bench/results.json: one run of bench/proxies.sh.
type Results struct {
	// Date is when the run ended, "2006-01-02 15:04 UTC".
	Date string `json:"date"`
	// Machine describes where it ran: cores, CPU, kernel, load average.
	Machine string `json:"machine"`
	// Loader is the load client of the run: raw or go (see bench/load).
	Loader   string `json:"loader"`
	Rounds   int    `json:"rounds"`
	Duration string `json:"duration"`
	// Versions of the other proxies, by path: haproxy, nginx, caddy,
	// fasthttp.
	Versions map[string]string `json:"versions,omitempty"`
	Points   []Point           `json:"points"`
}

// Point is one workload on one path: the medians over the rounds.
type Point struct {
	// Loader is the load client of this point; results converted from a
	// results.md with an extra LOADER=go table hold points of both.
	Loader   string `json:"loader"`
	Workload string `json:"workload"`
	Conns    int    `json:"conns"`
	// Path is how the load reached the upstream: direct, baton, haproxy,
	// nginx or caddy.
	Path string  `json:"path"`
	RPS  float64 `json:"rps"`
	// Ratio is RPS over the same workload's direct RPS; null when direct
	// served nothing.
	Ratio  *float64 `json:"ratio"`
	P50ms  float64  `json:"p50_ms"`
	P99ms  float64  `json:"p99_ms"`
	P999ms float64  `json:"p999_ms"`
	Errors int64    `json:"errors"`
	// ProxyCPUus is CPU microseconds per request of the proxy's processes;
	// null for direct.
	ProxyCPUus *float64 `json:"proxy_cpu_us"`
	// UpstreamCPUus is CPU microseconds per request of the upstream.
	UpstreamCPUus float64 `json:"upstream_cpu_us"`
}

// readResults reads a results.json.
func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Points) == 0 {
		return nil, fmt.Errorf("%s: no points", path)
	}
	return &r, nil
}

// writeResults writes r as indented JSON.
func writeResults(w io.Writer, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

var (
	// "2026-11-28 12:41 UTC, 2 cores (AMD EPYC), Linux ..., load average at the end 11.23 10.67 11.69."
	mdRunLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d UTC), (.*\d+ cores.*?)\.?$`)
	// "Reproduce: `LOADER=go ROUNDS=3 DURATION=3s bench/proxies.sh`"
	mdLoader   = regexp.MustCompile(`LOADER=(\w+)`)
	mdRounds   = regexp.MustCompile(`ROUNDS=(\d+)`)
	mdDuration = regexp.MustCompile(`DURATION=(\S+)`)
	mdVersions = map[string]*regexp.Regexp{
		"haproxy":  regexp.MustCompile(`HAProxy version ([^\s,]+)`),
		"nginx":    regexp.MustCompile(`nginx (\d\S*),`),
		"caddy":    regexp.MustCompile(`Caddy (v\S+),`),
		"fasthttp": regexp.MustCompile(`valyala/fasthttp (v\S+),`),
	}
)

// parseMarkdown reads the tables of a results.md written by
// bench/proxies.sh. A table's load client, rounds and duration come from
// the "Reproduce:" line after it (no LOADER= there means raw, the
// script's default); the run's from the first table.
func parseMarkdown(r io.Reader) (*Results, error) {
	res := &Results{Versions: map[string]string{}}
	var pending []Point // rows of the table whose Reproduce line is still to come
	// other: the rows below belong to another table (proxies.sh's on/off
	// table of the request metrics), until the table ends.
	other := false
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := mdRunLine.FindStringSubmatch(line); m != nil && res.Date == "" {
			res.Date, res.Machine = m[1], m[2]
		}
		for path, re := range mdVersions {
			if m := re.FindStringSubmatch(line); m != nil && res.Versions[path] == "" {
				res.Versions[path] = m[1]
			}
		}
		switch {
		case strings.HasPrefix(line, "| workload"):
			other = !strings.HasPrefix(line, "| workload | conns | path |")
		case strings.HasPrefix(line, "|---"), other && strings.HasPrefix(line, "|"):
		case strings.HasPrefix(line, "|"):
			p, err := parseRow(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			pending = append(pending, p)
		case strings.HasPrefix(line, "Reproduce:"):
			loader := "raw"
			if m := mdLoader.FindStringSubmatch(line); m != nil {
				loader = m[1]
			}
			if res.Loader == "" {
				res.Loader = loader
				if m := mdRounds.FindStringSubmatch(line); m != nil {
					res.Rounds, _ = strconv.Atoi(m[1])
				}
				if m := mdDuration.FindStringSubmatch(line); m != nil {
					res.Duration = strings.Trim(m[1], "`")
				}
			}
			for _, p := range pending {
				p.Loader = loader
				res.Points = append(res.Points, p)
			}
			pending = nil
		}
		if !strings.HasPrefix(line, "|") {
			other = false
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, p := range pending { // a table without a Reproduce line
		p.Loader = "raw"
		res.Points = append(res.Points, p)
	}
	if res.Loader == "" {
		res.Loader = "raw"
	}
	if len(res.Points) == 0 {
		return nil, fmt.Errorf("no result table")
	}
	return res, nil
}

// parseRow parses "| workload | conns | path | req/s | ratio | p50 | p99 |
// p99.9 | errors | proxy CPU | upstream CPU |"; "-" is null.
func parseRow(line string) (Point, error) {
	cells := strings.Split(strings.Trim(line, "|"), "|")
	if len(cells) != 11 {
		return Point{}, fmt.Errorf("%d cells, want 11: %q", len(cells), line)
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	var errs []error
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	opt := func(s string) *float64 {
		if s == "-" {
			return nil
		}
		v := num(s)
		return &v
	}
	p := Point{
		Workload:      cells[0],
		Conns:         int(num(cells[1])),
		Path:          cells[2],
		RPS:           num(cells[3]),
		Ratio:         opt(cells[4]),
		P50ms:         num(cells[5]),
		P99ms:         num(cells[6]),
		P999ms:        num(cells[7]),
		Errors:        int64(num(cells[8])),
		ProxyCPUus:    opt(cells[9]),
		UpstreamCPUus: num(cells[10]),
	}
	if len(errs) > 0 {
		return Point{}, fmt.Errorf("row %q: %w", line, errs[0])
	}
	return p, nil
}
