// Command chart draws bench/proxies.sh's results as an SVG: for every
// workload, each proxy's requests per second as a ratio to the upstream
// served directly, with lines at 1.0 (direct) and at the project's target,
// and a panel of p99 latency per path for one workload.
//
//	chart -in bench/results.json -out docs/proxy-bench.svg
//
// With -from-md it reads the tables of a results.md instead (every table:
// an extra LOADER=go table's points are kept with their load client) and
// -json writes them as results.json:
//
//	chart -from-md bench/results.md -json bench/results.json -out docs/proxy-bench.svg
//
// The chart shows the points of one load client, the run's unless -loader
// says otherwise.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// config is what the flags ask for.
type config struct {
	in, fromMD, jsonOut, out string
	chart                    chartOptions
}

func main() {
	var c config
	flag.StringVar(&c.in, "in", "bench/results.json", "results.json to draw")
	flag.StringVar(&c.fromMD, "from-md", "", "read this results.md instead of -in")
	flag.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&c.out, "out", "docs/proxy-bench.svg", `SVG to write ("" writes none, "-" stdout)`)
	flag.StringVar(&c.chart.Loader, "loader", "", "draw the points of this load client (default: the run's)")
	flag.Float64Var(&c.chart.Target, "target", 0.6, "target ratio to direct, drawn as a dashed line")
	flag.StringVar(&c.chart.LatencyWorkload, "p99-workload", "small GET, keep-alive", "workload of the p99 latency panel")
	flag.IntVar(&c.chart.LatencyConns, "p99-conns", 16, "connections of the p99 latency panel")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	r, err := load(c)
	if err != nil {
		return err
	}
	if c.jsonOut != "" {
		var buf bytes.Buffer
		if err := writeResults(&buf, r); err != nil {
			return err
		}
		if err := writeFile(c.jsonOut, buf.Bytes()); err != nil {
			return err
		}
	}
	if c.out == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := renderSVG(&buf, r, c.chart); err != nil {
		return err
	}
	if c.out == "-" {
		_, err := os.Stdout.Write(buf.Bytes())
		return err
	}
	return writeFile(c.out, buf.Bytes())
}

// load reads the results from -from-md if given, else from -in.
func load(c config) (*Results, error) {
	if c.fromMD == "" {
		return readResults(c.in)
	}
	f, err := os.Open(c.fromMD)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := parseMarkdown(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.fromMD, err)
	}
	return r, nil
}

// writeFile replaces name with b through a temporary file in the same
// directory, so a reader never sees half a chart.
func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".chart-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
