package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// chartOptions says what to draw from a Results.
type chartOptions struct {
	// Loader selects the points of one load client; "" means the run's.
	Loader string
	// Target is the project's goal for the ratio to direct, drawn as a
	// dashed line.
	Target float64
	// LatencyWorkload and LatencyConns pick the workload of the p99
	// panel; the panel is left out when the results do not have it.
	LatencyWorkload string
	LatencyConns    int
}

// Layout, in SVG user units (pixels at 100 %).
const (
	width      = 960.0
	plotLeft   = 210.0 // room for the workload labels
	plotRight  = width - 80
	barHeight  = 13.0
	barGap     = 3.0
	bandPad    = 10.0
	titleSize  = 18
	labelSize  = 12
	valueSize  = 11
	gridColour = "#dde1e6"
	textColour = "#222"
	mutedText  = "#555"
	// halo keeps a value label readable where a line crosses it.
	halo = `stroke="#ffffff" stroke-width="3" paint-order="stroke"`
)

// Colours of the paths (Okabe–Ito, told apart with colour blindness too).
var pathColours = map[string]string{
	"direct":  "#999999",
	"baton":   "#0072B2",
	"haproxy": "#E69F00",
	"nginx":   "#009E73",
	"caddy":   "#CC79A7",
	// the references: fasthttp, and the floor no proxy can go below
	"fasthttp": "#56B4E9",
	"floor":    "#000000",
}

var spareColours = []string{"#F0E442", "#D55E00", "#882255", "#44AA99"}

var pathNames = map[string]string{"haproxy": "HAProxy", "caddy": "Caddy", "floor": "floor (TCP relay)"}

// group is one workload at one connection count: a group of bars.
type group struct {
	workload string
	conns    int
	points   map[string]Point // by path
}

// renderSVG draws r as an SVG: bars of the ratio to direct per workload
// and path, and a panel of p99 latency per path for one workload.
func renderSVG(w io.Writer, r *Results, o chartOptions) error {
	loader := o.Loader
	if loader == "" {
		loader = r.Loader
	}
	var (
		groups []*group
		paths  []string // in order of first appearance, as the script runs them
		seen   = map[string]bool{}
	)
	byKey := map[string]*group{}
	for _, p := range r.Points {
		if p.Loader != loader && p.Loader != "" {
			continue
		}
		key := fmt.Sprintf("%s|%d", p.Workload, p.Conns)
		g := byKey[key]
		if g == nil {
			g = &group{workload: p.Workload, conns: p.Conns, points: map[string]Point{}}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.points[p.Path] = p
		if !seen[p.Path] {
			seen[p.Path] = true
			paths = append(paths, p.Path)
		}
	}
	if len(groups) == 0 {
		return fmt.Errorf("no points for load client %q", loader)
	}
	var proxies []string // the bars of each group: every path but direct
	for _, p := range paths {
		if p != "direct" {
			proxies = append(proxies, p)
		}
	}
	colours := map[string]string{}
	spare := 0
	for _, p := range paths {
		if c, ok := pathColours[p]; ok {
			colours[p] = c
		} else {
			colours[p] = spareColours[spare%len(spareColours)]
			spare++
		}
	}

	var b strings.Builder
	y := 30.0
	text(&b, 24, y, titleSize, "start", textColour, `font-weight="bold"`,
		"Requests per second through each proxy, relative to direct (higher is better)")
	y += 22
	text(&b, 24, y, labelSize, "start", mutedText, "", strings.TrimSpace(r.Date+" · "+r.Machine))
	y += 16
	text(&b, 24, y, labelSize, "start", mutedText, "", runLine(r, loader))

	// Legend: one swatch per bar colour, then the two reference lines,
	// wrapped onto more rows when they do not fit the width.
	y += 26
	x := 24.0
	item := func(w float64) (float64, float64) {
		if x+w > width-24 && x > 24 {
			x, y = 24, y+20
		}
		ix := x
		x += w + 22
		return ix, y
	}
	for _, p := range proxies {
		name := displayName(p, r.Versions)
		ix, iy := item(17 + textWidth(name, labelSize))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", ix, iy-10, colours[p])
		text(&b, ix+17, iy, labelSize, "start", textColour, "", name)
	}
	ix, iy := item(23 + textWidth("direct = 1.0", labelSize))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="2"/>`+"\n", ix, iy-4, ix+18, iy-4)
	text(&b, ix+23, iy, labelSize, "start", textColour, "", "direct = 1.0")
	target := fmt.Sprintf("target %s×", trimFloat(o.Target))
	ix, iy = item(23 + textWidth(target, labelSize))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#D55E00" stroke-width="2" stroke-dasharray="5 3"/>`+"\n", ix, iy-4, ix+18, iy-4)
	text(&b, ix+23, iy, labelSize, "start", textColour, "", target)

	// Ratio panel.
	maxRatio := 1.0
	for _, g := range groups {
		for _, p := range g.points {
			if p.Ratio != nil {
				maxRatio = max(maxRatio, *p.Ratio)
			}
		}
	}
	// Steps of 0.2, with room right of the direct line for value labels.
	xMax := 0.2 * math.Ceil((maxRatio+0.1)/0.2)
	scale := func(v float64) float64 { return plotLeft + v/xMax*(plotRight-plotLeft) }

	top := y + 30
	bandHeight := float64(len(proxies))*barHeight + float64(len(proxies)-1)*barGap + 2*bandPad
	bottom := top + float64(len(groups))*bandHeight
	for i, g := range groups {
		gy := top + float64(i)*bandHeight
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4f6f8"/>`+"\n", 16.0, gy, plotRight-16, bandHeight)
		}
		groupLabel(&b, g, gy+bandHeight/2)
	}
	axis(&b, top, bottom, xMax, 0.2, scale, func(v float64) string {
		if v == 0 {
			return "0"
		}
		return fmt.Sprintf("%.1f×", v)
	})
	var values strings.Builder // drawn last, over the reference lines
	for i, g := range groups {
		by := top + float64(i)*bandHeight + bandPad
		for _, path := range proxies {
			p, ok := g.points[path]
			switch {
			case !ok:
				// the path was not run for this workload: no bar
			case p.Ratio == nil:
				text(&b, plotLeft+4, by+barHeight-2, valueSize, "start", mutedText, "", path+": no direct figure")
			default:
				bw := scale(*p.Ratio) - plotLeft
				fmt.Fprintf(&b, `<rect class="bar" data-workload="%s" data-conns="%d" data-path="%s" data-ratio="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s">`,
					esc(g.workload), g.conns, esc(path), trimFloat(*p.Ratio), plotLeft, by, bw, barHeight, colours[path])
				fmt.Fprintf(&b, "<title>%s</title></rect>\n", esc(fmt.Sprintf("%s, %s, %d conns: %.2f× direct, %s req/s, p99 %.2f ms",
					displayName(path, nil), g.workload, g.conns, *p.Ratio, thousands(p.RPS), p.P99ms)))
				text(&values, plotLeft+bw+4, by+barHeight-2, valueSize, "start", textColour, halo, fmt.Sprintf("%.2f", *p.Ratio))
			}
			by += barHeight + barGap
		}
	}
	y = bottom + 40
	text(&b, (plotLeft+plotRight)/2, y, labelSize, "middle", textColour, "",
		"req/s through the proxy ÷ req/s straight to the upstream, same workload, same run")
	// Reference lines over the bars.
	fmt.Fprintf(&b, `<line class="direct" x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="#333" stroke-width="2"/>`+"\n", scale(1), top-6, scale(1), bottom)
	text(&b, scale(1), top-10, valueSize, "middle", textColour, "", "direct")
	fmt.Fprintf(&b, `<line class="target" x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="#D55E00" stroke-width="2" stroke-dasharray="5 3"/>`+"\n", scale(o.Target), top-6, scale(o.Target), bottom)
	text(&b, scale(o.Target), top-10, valueSize, "middle", "#B34700", "", "target")
	b.WriteString(values.String())

	if g := byKey[fmt.Sprintf("%s|%d", o.LatencyWorkload, o.LatencyConns)]; g != nil {
		y = latencyPanel(&b, g, paths, colours, r.Versions, y+50)
	}

	height := math.Ceil(y + 24)
	if _, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", width, height, width, height); err != nil {
		return err
	}
	fmt.Fprintf(w, "<title>%s</title>\n", esc("Proxy benchmark: req/s relative to direct, "+r.Date))
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	io.WriteString(w, b.String())
	_, err := io.WriteString(w, "</svg>\n")
	return err
}

// latencyPanel draws p99 latency of every path, direct included, for one
// workload, starting at y; it returns the y below it.
func latencyPanel(b *strings.Builder, g *group, paths []string, colours, versions map[string]string, y float64) float64 {
	text(b, 24, y, 15, "start", textColour, `font-weight="bold"`,
		fmt.Sprintf("p99 latency, %s, %d connections (ms, lower is better)", g.workload, g.conns))
	top := y + 22
	maxMs := 0.0
	for _, p := range g.points {
		maxMs = max(maxMs, p.P99ms)
	}
	step := niceStep(maxMs*1.1, 6)
	xMax := step * math.Ceil(maxMs*1.1/step)
	if xMax <= 0 {
		xMax, step = 1, 0.2
	}
	scale := func(v float64) float64 { return plotLeft + v/xMax*(plotRight-plotLeft) }
	const h, gap = barHeight + 3, 5.0
	n := 0
	for _, path := range paths {
		if _, ok := g.points[path]; ok {
			n++
		}
	}
	bottom := top + float64(n)*(h+gap)
	axis(b, top-4, bottom, xMax, step, scale, func(v float64) string { return trimFloat(v) })
	y = top
	for _, path := range paths {
		p, ok := g.points[path]
		if !ok {
			continue
		}
		text(b, plotLeft-12, y+h-3, labelSize, "end", textColour, "", displayName(path, versions))
		bw := scale(p.P99ms) - plotLeft
		fmt.Fprintf(b, `<rect class="p99-bar" data-path="%s" data-p99="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s">`,
			esc(path), trimFloat(p.P99ms), plotLeft, y, bw, h, colours[path])
		fmt.Fprintf(b, "<title>%s</title></rect>\n", esc(fmt.Sprintf("%s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms",
			displayName(path, nil), p.P50ms, p.P99ms, p.P999ms)))
		text(b, plotLeft+bw+4, y+h-3, valueSize, "start", textColour, halo, fmt.Sprintf("%.2f ms", p.P99ms))
		y += h + gap
	}
	return bottom + 24
}

// groupLabel writes a workload's name split at its commas, and its
// connection count, right-aligned left of the plot and centred on cy.
func groupLabel(b *strings.Builder, g *group, cy float64) {
	lines := strings.Split(g.workload, ", ")
	lines = append(lines, fmt.Sprintf("%d connection%s", g.conns, plural(g.conns)))
	const lh = 14.0
	y := cy - lh*float64(len(lines)-1)/2 + 4
	for i, l := range lines {
		colour, extra := textColour, ""
		if i == 0 {
			extra = `font-weight="bold"`
		}
		if i == len(lines)-1 {
			colour = mutedText
		}
		text(b, plotLeft-12, y, labelSize, "end", colour, extra, l)
		y += lh
	}
}

// axis draws vertical grid lines every step from 0 to xMax between top and
// bottom, with their labels below.
func axis(b *strings.Builder, top, bottom, xMax, step float64, scale func(float64) float64, label func(float64) string) {
	for i := 0; ; i++ {
		v := float64(i) * step
		if v > xMax+step/1000 {
			break
		}
		x := scale(v)
		fmt.Fprintf(b, `<line x1="%.2f" y1="%.1f" x2="%.2f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", x, top, x, bottom, gridColour)
		text(b, x, bottom+16, valueSize, "middle", mutedText, "", label(v))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-width="1"/>`+"\n", plotLeft, bottom, plotRight, bottom)
}

// runLine says how the figures were taken.
func runLine(r *Results, loader string) string {
	client := "raw HTTP/1.1 client (bench/load)"
	switch loader {
	case "go":
		client = "Go net/http client (bench/load -client go)"
	case "wrk":
		client = "wrk"
	case "hey":
		client = "hey (Go net/http client)"
	}
	s := "Load: " + client + ", closed loop, all programs on the same cores"
	switch {
	case r.Rounds == 1:
		s += fmt.Sprintf("; one round of %s per point", r.Duration)
	case r.Rounds > 1:
		s += fmt.Sprintf("; median of %d interleaved rounds of %s per point", r.Rounds, r.Duration)
	}
	return s
}

// displayName is a path's name in labels: "HAProxy 2.6.12" with versions.
func displayName(path string, versions map[string]string) string {
	name := path
	if n, ok := pathNames[path]; ok {
		name = n
	}
	if v, ok := versions[path]; ok && v != "" {
		v, _, _ = strings.Cut(v, "-") // 2.6.12-1+deb12u4: the packaging suffix says little
		name += " " + v
	}
	return name
}

func text(b *strings.Builder, x, y float64, size int, anchor, colour, extra, s string) {
	if extra != "" {
		extra = " " + extra
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s"%s>%s</text>`+"\n", x, y, size, anchor, colour, extra, esc(s))
}

// textWidth estimates the width of s in a sans-serif font: enough to lay
// out a legend without measuring glyphs.
func textWidth(s string, size int) float64 {
	return float64(len([]rune(s))) * float64(size) * 0.58
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceStep is a round step (1, 2, 2.5 or 5 times a power of ten) that cuts
// [0, span] into at most about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// trimFloat formats v with up to three decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := strings.TrimRight(fmt.Sprintf("%.3f", v), "0")
	return strings.TrimSuffix(s, ".")
}

// thousands formats a rate as 12,933.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
