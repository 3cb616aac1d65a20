// A deployment's phases as a timeline, from the "phase X" lines of its log
// (each line carries its timestamp).

import { h, fmtDuration, fmtClock } from './dom.js';
import { now } from './api.js';

const phaseLine = /^phase (\S+)$/;

// parseLine splits an SSE log line ("2026-11-28T14:03:05.123Z phase
// building") into its time and text.
export function parseLine(data) {
  const i = data.indexOf(' ');
  const t = Date.parse(data.slice(0, i));
  if (i < 0 || Number.isNaN(t)) return { time: null, text: data };
  return { time: t, text: data.slice(i + 1) };
}

// phaseOf is the phase a log line enters, or null.
export function phaseOf(text) {
  const m = phaseLine.exec(text);
  return m ? m[1] : null;
}

// timeline renders phases ([{name, time}]) of deployment d: each phase's
// start, duration and share of the whole; the current one still growing.
export function timeline(d, phases) {
  const final = ['succeeded', 'failed', 'cancelled', 'superseded'].includes(d.state);
  const end = final && d.finished_at ? Date.parse(d.finished_at) : now();
  const items = [];
  if (d.started_at) {
    items.push({ name: 'queued', start: Date.parse(d.created_at), end: Date.parse(d.started_at), done: true });
  }
  phases.forEach((p, i) => {
    const last = i === phases.length - 1;
    items.push({ name: p.name, start: p.time, end: last ? end : phases[i + 1].time, done: !last || final, current: last && !final });
  });
  if (!items.length) {
    return h('p', { class: 'muted' }, d.state === 'queued' ? 'Waiting in the queue; no phase has started.' : 'No phases recorded.');
  }
  const total = Math.max(1, items.reduce((s, it) => s + (it.end - it.start), 0));
  const stopped = final && d.state !== 'succeeded' ? items[items.length - 1] : null;
  return h('ol', { class: 'timeline', 'aria-label': 'Phases' }, items.map((it) => {
    const ms = it.end - it.start;
    const state = it.current ? 'current' : it === stopped ? 'stopped' : 'done';
    const label = it.current ? 'in progress' : it === stopped ? d.state : 'done';
    return h('li', { class: `phase ${state}`, 'data-phase': it.name, 'data-state': state },
      h('span', { class: 'phase-mark', 'aria-hidden': 'true' }),
      h('span', { class: 'phase-name' }, it.name),
      h('span', { class: 'sr-only' }, ` (${label})`),
      h('time', { class: 'phase-start muted', datetime: new Date(it.start).toISOString() }, fmtClock(new Date(it.start))),
      h('span', { class: 'phase-dur', 'data-ms': Math.round(ms) }, fmtDuration(ms)),
      h('span', { class: 'phase-bar', 'aria-hidden': 'true' }, h('span', { style: { width: `${Math.max(0.5, (100 * ms) / total)}%` } })));
  }));
}
