// Small DOM helpers. Every piece of data reaches the page as a text node or
// an attribute value, never as HTML: log lines, commit messages and
// settings are written by whoever deploys.

import { now } from './api.js';

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child…).
// Attributes that are false, null or undefined are left out; children that
// are null, false or undefined are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'style' && typeof v === 'object') {
      // CSSOM, not a style attribute: the page's CSP forbids inline styles.
      Object.assign(el.style, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// fmtDuration is a human duration: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fmtTime is a local date and time, "2026-11-28 14:03:05".
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(d)}`;
}

// fmtClock is a local time of day, "14:03:05".
export function fmtClock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// timeEl is a <time> element showing a local date and time.
export function timeEl(iso) {
  return iso ? h('time', { datetime: iso }, fmtTime(iso)) : '–';
}

// since is an element showing the time elapsed since iso, kept current by
// tickAges.
export function since(iso) {
  if (!iso) return '–';
  return h('time', { datetime: iso, 'data-since': iso }, fmtDuration(now() - Date.parse(iso)));
}

// tickAges refreshes every element made by since().
export function tickAges(root = document) {
  for (const el of root.querySelectorAll('[data-since]')) {
    el.textContent = fmtDuration(now() - Date.parse(el.dataset.since));
  }
}

// shortCommit is the first 12 characters of a commit id.
export function shortCommit(c) {
  return c ? c.slice(0, 12) : '';
}

// durationOf is how long a deployment ran (or has run so far).
export function durationOf(d) {
  if (!d.started_at) return null;
  const end = d.finished_at ? Date.parse(d.finished_at) : now();
  return end - Date.parse(d.started_at);
}

// stateBadge shows a deployment state as text with a colour; the colour
// only repeats what the word says.
export function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state }, state);
}

// trafficBar is a meter of a revision's share of its slot's traffic.
export function trafficBar(rev, weight) {
  return h('div', {
    class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': weight,
    'aria-label': `traffic to ${rev}`,
  }, h('span', { style: { width: `${weight}%` } }));
}

// deploymentLink links to a deployment's page.
export function deploymentLink(id) {
  return h('a', { href: `#/deployments/${encodeURIComponent(id)}`, class: 'mono' }, id);
}

// appLink links to an app's page.
export function appLink(app) {
  return h('a', { href: `#/apps/${encodeURIComponent(app)}` }, app);
}

// section is a titled region of a page.
export function section(id, title, ...children) {
  return h('section', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...children);
}

// table is a scrollable table with a header row.
export function table(caption, headers, rows, attrs = {}) {
  return h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', attrs,
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

// plural is "1 conflict", "2 conflicts".
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// scaleText is a slot's scale in words, as the CLI says it: "3 instances,
// at most 1 per host".
export function scaleText(instances, maxPerHost) {
  return `${plural(instances, 'instance')}${maxPerHost > 0 ? `, at most ${maxPerHost} per host` : ''}`;
}

// hostsText says where a revision's instances run and how each host's
// share stands: "3 instances: 1 on h1 (healthy), 2 on h2 (starting)".
export function hostsText(hosts) {
  const ps = [...hosts].sort((a, b) => a.host.localeCompare(b.host));
  const n = ps.reduce((sum, p) => sum + p.instances, 0);
  return `${plural(n, 'instance')}: ${ps.map((p) => `${p.instances} on ${p.host} (${p.state}${p.message ? `: ${p.message}` : ''})`).join(', ')}`;
}

// problemArea is a page's place for errors; role=alert makes screen readers
// announce a new one.
export function problemArea() {
  return h('div', { class: 'problems', role: 'alert' });
}

// showProblem puts "what: detail (status code)" into area. An unchanged
// text is left alone so that it is not announced again on every refresh.
export function showProblem(area, what, err) {
  const p = err.problem || {};
  const suffix = err.status ? ` (HTTP ${err.status}${p.code ? ' ' + p.code : ''})` : '';
  const text = `${what}: ${err.message}${suffix}`;
  if (area.dataset.text === text) return;
  area.dataset.text = text;
  area.replaceChildren(h('p', { class: 'problem' }, h('strong', {}, `${what}: `), err.message, h('span', { class: 'muted' }, suffix)));
}

// clearProblem empties area.
export function clearProblem(area) {
  delete area.dataset.text;
  area.replaceChildren();
}

// statusArea is a page's place for the outcome of an action (role=status:
// announced politely).
export function statusArea() {
  return h('div', { class: 'notice', role: 'status' });
}

const shown = new WeakMap();

// renderIfChanged replaces container's children with build() when data
// differs from what it last showed. Unchanged data leaves the DOM (focus,
// selection, open details) alone; a re-render moves focus to the element
// with the same data-key as the one that had it.
export function renderIfChanged(container, data, build) {
  const sig = JSON.stringify(data);
  if (shown.get(container) === sig) return false;
  shown.set(container, sig);
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  const open = [...container.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key);
  container.replaceChildren(...[build()].flat().filter(Boolean));
  for (const k of open) container.querySelector(`details[data-key="${CSS.escape(k)}"]`)?.setAttribute('open', '');
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
  return true;
}
