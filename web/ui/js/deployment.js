// The deployment page: what the deployment is, its phases as a timeline,
// its log streaming live over SSE, and the buttons that cancel it (or
// complete a swap waiting in preview).

import { get, post, path, openStream, EventStream } from './api.js';
import { h, appLink, stateBadge, timeEl, shortCommit, fmtDuration, durationOf, since, problemArea, statusArea, showProblem, renderIfChanged, fmtClock } from './dom.js';
import { markFresh } from './live.js';
import { ActionContext } from './actions.js';
import { timeline, parseLine, phaseOf } from './timeline.js';

const finalStates = ['succeeded', 'failed', 'cancelled', 'superseded'];

// renderDeployment shows deployment id's page in main.
export function renderDeployment(main, scope, id) {
  document.title = `${id} · baton`;
  const problems = problemArea();
  const actionProblems = problemArea();
  const status = statusArea();
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Apps'), ' / …');
  const head = h('div', { class: 'dep-head' });
  const buttons = h('div', { class: 'buttons' });
  const phasesEl = h('div', { class: 'phases' });
  const stream = h('span', { class: 'muted', 'data-stream': 'connecting' }, 'connecting…');
  const logEl = h('pre', { class: 'log', tabindex: 0, 'aria-label': `Log of ${id}`, 'data-lines': 0 });
  // Announces the state once per change, not every log line.
  const announce = h('p', { class: 'sr-only', role: 'status' });
  main.append(crumbs, h('h1', { tabindex: -1 }, 'Deployment ', h('span', { class: 'mono' }, id)), announce, problems, actionProblems, status, head, buttons,
    h('section', { id: 'phases', 'aria-labelledby': 'phases-title' }, h('h2', { id: 'phases-title' }, 'Phases'), phasesEl),
    h('section', { id: 'log', 'aria-labelledby': 'log-title' },
      h('h2', { id: 'log-title' }, 'Log ', h('small', {}, '(', stream, ') ', h('a', { href: `/api/v1/deployments/${encodeURIComponent(id)}/log` }, 'plain text'))),
      logEl));

  let dep = null;
  const phases = [];
  let lastLine = 0;

  const actions = new ActionContext(actionProblems, status, async () => {
    // The stream brings state changes; a failed action may need the truth.
    try {
      show(await get(path`/deployments/${id}`));
    } catch {
      // The stream or the next action reports it.
    }
  });

  function show(d) {
    if (!scope.alive) return;
    const changed = !dep || dep.state !== d.state || dep.phase !== d.phase;
    dep = d;
    document.title = `${d.state} · ${d.id} · baton`;
    if (changed) announce.textContent = `${d.kind} ${d.state}${d.phase && !finalStates.includes(d.state) ? ', phase ' + d.phase : ''}`;
    crumbs.replaceChildren(h('a', { href: '#/' }, 'Apps'), ' / ', appLink(d.app), ' / ', d.id);
    renderIfChanged(head, d, () => details(d));
    renderIfChanged(buttons, [d.state, d.phase, d.kind], () => actionButtons(d, actions));
    drawPhases();
  }

  function drawPhases() {
    if (dep) phasesEl.replaceChildren(timeline(dep, phases));
  }

  function addLine(data) {
    const { time, text } = parseLine(data);
    const p = phaseOf(text);
    if (p && time !== null) {
      phases.push({ name: p, time });
      drawPhases();
    }
    // Follow the end of the log unless the reader scrolled up.
    const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 24;
    logEl.append(h('span', { class: p ? 'line phase-line' : 'line' },
      time !== null ? h('span', { class: 'ts' }, fmtClock(new Date(time)) + '.' + String(time % 1000).padStart(3, '0') + ' ') : null,
      text + '\n'));
    logEl.dataset.lines = String(Number(logEl.dataset.lines) + 1);
    if (atEnd) logEl.scrollTop = logEl.scrollHeight;
  }

  function setStream(state, text) {
    stream.dataset.stream = state;
    stream.textContent = text;
  }

  (async () => {
    try {
      show(await get(path`/deployments/${id}`));
      markFresh(true);
    } catch (e) {
      if (!scope.alive) return;
      showProblem(problems, `Could not load ${id}`, e);
      setStream('closed', 'not available');
      markFresh(false);
      return;
    }
    if (!scope.alive) return;
    const es = openStream(path`/deployments/${id}/log`);
    scope.onDispose(() => es.close());
    es.addEventListener('open', () => setStream('live', 'live'));
    es.addEventListener('log', (ev) => {
      // The browser resumes with Last-Event-ID after a drop; skip a line
      // seen twice anyway.
      const n = Number(ev.lastEventId);
      if (n && n <= lastLine) return;
      if (n) lastLine = n;
      addLine(ev.data);
      markFresh(true);
    });
    es.addEventListener('deployment', (ev) => {
      show(JSON.parse(ev.data));
      markFresh(true);
    });
    es.addEventListener('end', (ev) => {
      // The server closes the stream after "end"; without close() the
      // stream would reconnect and replay the end.
      es.close();
      show(JSON.parse(ev.data));
      setStream('ended', 'ended');
      markFresh(true);
    });
    es.addEventListener('error', (ev) => {
      if (es.readyState === EventStream.CLOSED) {
        setStream('closed', 'stream closed; reload to retry');
        if (ev.error) showProblem(problems, 'The log stream stopped', ev.error);
        markFresh(false);
      } else if (stream.dataset.stream !== 'ended') {
        setStream('reconnecting', 'reconnecting…');
      }
    });
  })();

  // The current phase's duration grows while the deployment runs.
  scope.every(1000, () => {
    if (dep && !finalStates.includes(dep.state)) drawPhases();
  });
}

function row(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

function details(d) {
  const ms = durationOf(d);
  const running = d.started_at && !d.finished_at;
  return [
    h('p', { class: 'dep-state' }, stateBadge(d.state), d.phase && !finalStates.includes(d.state) ? [' phase ', h('strong', { 'data-phase': d.phase }, d.phase)] : null),
    d.error ? h('p', { class: 'banner bad', 'data-error': '' }, d.error) : null,
    h('dl', { class: 'facts' },
      row('App', appLink(d.app), ` · slot ${d.slot}`),
      row('Kind', d.kind, d.on_conflict ? ` · on conflict: ${d.on_conflict}` : ''),
      row('Revision', h('span', { class: 'mono' }, d.revision || '–')),
      row('Commit', h('span', { class: 'mono', title: d.commit }, shortCommit(d.commit) || '–'), d.author ? ` by ${d.author}` : ''),
      row('Message', d.message || '–'),
      row('Queued', timeEl(d.created_at)),
      row('Started', timeEl(d.started_at)),
      row('Finished', timeEl(d.finished_at)),
      row('Duration', running ? since(d.started_at) : ms === null ? '–' : fmtDuration(ms)),
      d.artifact_digest ? row('Artifact', h('span', { class: 'mono' }, `${d.artifact_type || ''} sha256:${d.artifact_digest.slice(0, 12)}`)) : null),
  ];
}

function actionButtons(d, actions) {
  if (finalStates.includes(d.state)) return [];
  const out = [];
  if (d.kind === 'swap' && d.phase === 'awaiting-completion') {
    out.push(actions.button('Complete swap', { class: 'primary', 'data-key': `complete-${d.id}` }, 'Completing…', async () => {
      const r = await post(path`/swaps/${d.id}/complete`);
      return `Swap ${r.id} is ${r.state}.`;
    }));
  }
  out.push(actions.button(d.kind === 'swap' && d.phase === 'awaiting-completion' ? 'Cancel swap' : 'Cancel', { class: 'danger', 'data-key': `cancel-${d.id}`, 'aria-label': `Cancel ${d.kind} ${d.id}` }, 'Cancelling…', async () => {
    const r = await post(path`/deployments/${d.id}/cancel`, { reason: 'from the dashboard' });
    return `${r.kind} ${r.id} is ${r.state}.`;
  }));
  return out;
}
