// Charts of an app's traffic per revision over the last minutes, drawn as
// inline SVG from the traffic report's series: request rate, error rate
// and p99, one line per revision, so a canary is judged next to the
// stable revision at a glance. Each chart has a fixed height (no layout
// jump) and a text summary for screen readers.

import { h } from './dom.js';

const svgNS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

// palette colours revisions in the order they appear; the legend names them.
const palette = ['#2f6fdf', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285'];

const W = 320;
const H = 120;
const pad = { l: 40, r: 8, t: 8, b: 18 };

const metrics = [
  { key: 'requests_per_second', title: 'Requests/s', fmt: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)) },
  { key: 'error_rate', title: 'Errors (5xx)', fmt: (v) => `${(v * 100).toFixed(0)}%`, value: (p) => p.error_rate },
  { key: 'p99_seconds', title: 'p99', fmt: (v) => (v >= 1 ? `${v.toFixed(1)}s` : `${(v * 1000).toFixed(0)}ms`), value: (p) => (p.p99_seconds < 0 ? null : p.p99_seconds) },
];

// seriesOf groups points by "slot/revision", in first-seen order.
function seriesOf(points) {
  const m = new Map();
  for (const p of points) {
    const k = `${p.slot}/${p.revision}`;
    if (!m.has(k)) m.set(k, { key: k, slot: p.slot, revision: p.revision, points: [] });
    m.get(k).points.push(p);
  }
  // A revision that answered nothing in the window has no line.
  return [...m.values()].filter((sr) => sr.points.some((p) => p.requests_per_second > 0));
}

function chart(metric, series, t0, t1) {
  const val = metric.value || ((p) => p[metric.key]);
  let top = 0;
  for (const sr of series) for (const p of sr.points) top = Math.max(top, val(p) ?? 0);
  if (metric.key === 'error_rate') top = Math.max(top, 0.05);
  if (top === 0) top = 1;
  top *= 1.1;
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v / top) * (H - pad.t - pad.b);
  const lines = series.map((sr, i) => {
    let d = '';
    let pen = false;
    for (const p of sr.points) {
      const v = val(p);
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(Date.parse(p.at)).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    return d ? s('path', { d, fill: 'none', stroke: palette[i % palette.length], 'stroke-width': 2, 'data-series': sr.key }) : null;
  });
  const last = series.map((sr) => {
    const v = [...sr.points].reverse().map(val).find((v) => v !== null && v !== undefined);
    return `${sr.revision}: ${v === undefined ? 'no requests' : metric.fmt(v)}`;
  });
  const summary = `${metric.title}, now: ${last.join('; ') || 'no data'}`;
  return h('figure', { class: 'chart', 'data-metric': metric.key },
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary, preserveAspectRatio: 'none' },
      s('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: 'axis' }),
      s('line', { x1: pad.l, y1: pad.t, x2: W - pad.r, y2: pad.t, class: 'grid' }),
      s('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'tick' }, document.createTextNode(metric.fmt(top))),
      s('text', { x: pad.l - 4, y: H - pad.b, 'text-anchor': 'end', class: 'tick' }, document.createTextNode(metric.fmt(0))),
      s('text', { x: W - pad.r, y: H - 4, 'text-anchor': 'end', class: 'tick' }, document.createTextNode('now')),
      ...lines),
    h('figcaption', {}, metric.title));
}

// trafficCharts draws the report's series (an empty note without one).
export function trafficCharts(report) {
  const points = report?.series || [];
  if (!points.length) return h('p', { class: 'muted charts-empty' }, 'The charts fill in as requests arrive (sampled every 5 seconds).');
  const series = seriesOf(points);
  if (!series.length) return h('p', { class: 'muted charts-empty' }, 'No request reached this app in the window.');
  const times = points.map((p) => Date.parse(p.at));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  return h('div', { class: 'charts-block' },
    h('ul', { class: 'legend', 'aria-label': 'Revisions in the charts' }, series.map((sr, i) =>
      h('li', { 'data-series': sr.key }, h('span', { class: 'swatch', style: { background: palette[i % palette.length] }, 'aria-hidden': 'true' }),
        `${sr.revision} (${sr.slot})`))),
    h('div', { class: 'charts' }, metrics.map((m) => chart(m, series, t0, t1))));
}
