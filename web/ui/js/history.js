// History tables on the app page: the last deployments and the swaps.

import { h, table, stateBadge, shortCommit, fmtDuration, durationOf, fmtTime, since } from './dom.js';

function timeLink(d) {
  return h('a', { href: `#/deployments/${encodeURIComponent(d.id)}`, title: d.id, 'aria-label': `${d.kind} ${d.id} at ${fmtTime(d.created_at)}` },
    h('time', { datetime: d.created_at }, fmtTime(d.created_at)));
}

function duration(d) {
  // A running operation's duration ticks in place (see tickAges).
  if (d.started_at && !d.finished_at) return since(d.started_at);
  const ms = durationOf(d);
  return ms === null ? '–' : fmtDuration(ms);
}

// deploymentsTable lists deployments and other operations, newest first.
export function deploymentsTable(ds) {
  if (!ds.length) return h('p', { class: 'muted' }, 'Nothing deployed yet.');
  return table('Deployments, newest first', ['Time', 'Status', 'Kind', 'Revision', 'Commit', 'Message', 'Duration'],
    ds.map((d) => h('tr', { 'data-deployment': d.id, 'data-state': d.state },
      h('td', {}, timeLink(d)),
      h('td', {}, stateBadge(d.state), d.state === 'running' && d.phase ? h('div', { class: 'muted' }, d.phase) : null),
      h('td', {}, d.kind, d.slot !== 'production' ? h('div', { class: 'muted' }, d.slot) : null),
      h('td', { class: 'mono' }, d.revision || '–'),
      h('td', {}, h('span', { class: 'mono', title: d.commit }, shortCommit(d.commit) || '–'), d.author ? h('div', { class: 'muted' }, d.author) : null),
      h('td', { class: 'message' }, d.message || '', d.error ? h('div', { class: 'muted error-text' }, d.error) : null),
      h('td', { class: 'num' }, duration(d)))));
}

function swapSlots(d) {
  try {
    const p = JSON.parse(d.params || '{}');
    return `${p.source || '?'} ⇄ ${p.target || 'production'}${p.preview ? ' (preview)' : ''}`;
  } catch {
    return '?';
  }
}

// swapsTable lists swap operations, newest first.
export function swapsTable(swaps) {
  if (!swaps.length) return h('p', { class: 'muted' }, 'No swaps yet.');
  return table('Swaps, newest first', ['Time', 'Status', 'Slots', 'Revision', 'Duration', 'Outcome'],
    swaps.map((d) => h('tr', { 'data-deployment': d.id, 'data-state': d.state },
      h('td', {}, timeLink(d)),
      h('td', {}, stateBadge(d.state), d.phase && !['succeeded', 'failed', 'cancelled', 'superseded'].includes(d.state) ? h('div', { class: 'muted' }, d.phase) : null),
      h('td', {}, swapSlots(d)),
      h('td', { class: 'mono' }, d.revision || '–'),
      h('td', { class: 'num' }, duration(d)),
      h('td', { class: 'message' }, d.error || d.message || ''))));
}
