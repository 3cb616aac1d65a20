// The app page's traffic panel: per revision, the request rate, error
// rate and p99 the proxy measured over the last minutes, so a canary can
// be judged next to the stable revision at a glance.

import { h, section, table } from './dom.js';

// trafficWindow is the window the panel asks for (GET .../traffic?window=).
export const trafficWindow = '5m';

const fmtRate = (r) => (r >= 10 ? r.toFixed(0) : r.toFixed(2));
const fmtPct = (e) => `${(e * 100).toFixed(e > 0 && e < 0.01 ? 2 : 1)}%`;
const fmtP99 = (s) => (s < 0 ? '–' : s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`);

// trafficPanel shows a TrafficReport (or the Error loading it ended with).
export function trafficPanel(report) {
  let body;
  if (report instanceof Error) {
    body = h('p', { class: 'problem' }, `Could not load the traffic: ${report.message}`);
  } else if (!report.request_metrics) {
    body = h('p', { class: 'muted' }, 'Request metrics are off on this baton (', h('code', {}, 'baton serve --request-metrics=false'), ').');
  } else if (!report.revisions.length) {
    body = h('p', { class: 'muted' }, 'No request reached this app in the last 5 minutes.');
  } else {
    body = table('Traffic per revision, last 5 minutes', ['Slot', 'Revision', 'Requests/s', 'Errors (5xx)', 'p99'],
      report.revisions.map((r) => h('tr', { 'data-traffic-revision': r.revision || '(none)', 'data-requests': r.requests },
        h('td', {}, r.slot),
        h('td', { class: 'mono' }, r.revision || h('span', { class: 'muted' }, 'before a revision was chosen')),
        h('td', { class: 'num' }, fmtRate(r.requests_per_second)),
        h('td', { class: r.error_rate > 0 ? 'num bad' : 'num' }, fmtPct(r.error_rate)),
        h('td', { class: 'num' }, fmtP99(r.p99_seconds)))));
  }
  return section('traffic', 'Traffic, last 5 minutes', body);
}
