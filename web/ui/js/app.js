// The app page: conflicts with their fixes, the running operation and the
// queue, every slot with its revisions and settings, the deployment
// history and the swaps.

import { get, post, path } from './api.js';
import { h, section, deploymentLink, since, timeEl, problemArea, statusArea, showProblem, clearProblem, renderIfChanged, table, fmtTime } from './dom.js';
import { Watcher, refresher, markFresh } from './live.js';
import { ActionContext } from './actions.js';
import { conflictsPanel } from './conflicts.js';
import { slotSection } from './slots.js';
import { deploymentsTable, swapsTable } from './history.js';
import { trafficPanel, trafficWindow } from './traffic.js';

// historyWindow is how many operations are fetched to find the swaps among
// them: the API has no filter by kind.
const historyWindow = 200;

// renderApp shows app's page in main.
export function renderApp(main, scope, app) {
  document.title = `${app} · baton`;
  // Loading and acting report apart: a successful refresh right after a
  // failed action must not wipe the action's problem.
  const problems = problemArea();
  const actionProblems = problemArea();
  const status = statusArea();
  const head = h('div', { class: 'app-head' });
  const parts = { conflicts: h('div'), ops: h('div'), slots: h('div'), traffic: h('div'), deployments: h('div'), swaps: h('div') };
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Apps'), ' / ', app),
    h('h1', { tabindex: -1 }, app), head, problems, actionProblems, status,
    parts.conflicts, parts.ops, parts.slots, parts.traffic, parts.deployments, parts.swaps);

  const refresh = refresher(scope, async () => {
    let st, ds, settings, traffic;
    try {
      [st, ds] = await Promise.all([get(path`/apps/${app}/status`), get(path`/apps/${app}/deployments?limit=${historyWindow}`)]);
      // A slot's settings failing to load should not hide the rest.
      settings = await Promise.all(st.slots.map((s) => get(path`/apps/${app}/slots/${s.name}/settings`).catch((e) => e)));
      traffic = await get(path`/apps/${app}/traffic?window=${trafficWindow}`).catch((e) => e);
    } catch (e) {
      if (!scope.alive) return;
      showProblem(problems, `Could not load ${app}`, e);
      markFresh(false);
      return;
    }
    if (!scope.alive) return;
    clearProblem(problems);
    markFresh(true);
    watcher.sync(st.running ? [st.running.id] : []);
    renderIfChanged(head, [st.revision_mode, st.frozen], () => appHead(st));
    renderIfChanged(parts.conflicts, st.conflicts, () => conflictsPanel(app, st.conflicts, actions));
    renderIfChanged(parts.ops, [st.running, st.queue], () => operations(st, actions));
    renderIfChanged(parts.slots, [st.slots, settings.map((s) => (s instanceof Error ? s.message : s))],
      () => section('slots', 'Slots', st.slots.map((s, i) => slotSection(s, settings[i]))));
    renderIfChanged(parts.traffic, traffic instanceof Error ? traffic.message : traffic, () => trafficPanel(traffic));
    renderIfChanged(parts.deployments, ds.slice(0, 20), () => section('deployments', 'Last 20 deployments', deploymentsTable(ds.slice(0, 20))));
    const swaps = ds.filter((d) => d.kind === 'swap').slice(0, 20);
    renderIfChanged(parts.swaps, swaps, () => section('swaps', 'Swap history', swapsTable(swaps)));
  });
  const actions = new ActionContext(actionProblems, status, refresh);
  const watcher = new Watcher(scope, () => refresh.soon());
  scope.every(3000, refresh);
  refresh();
}

function appHead(st) {
  return [
    h('p', { class: 'muted' }, `${st.revision_mode} revision mode`,
      st.revision_mode === 'single' ? ': one active revision per slot' : ': several revisions per slot share its traffic by weight'),
    st.frozen && h('p', { class: 'banner bad' }, h('strong', {}, 'Frozen: '), st.frozen.reason,
      h('span', { class: 'muted' }, ` (by ${st.frozen.by} at ${fmtTime(st.frozen.at)}); new deployments are refused.`)),
  ];
}

function cancelButton(actions, d) {
  return actions.button('Cancel', { class: 'danger', 'data-key': `cancel-${d.id}`, 'aria-label': `Cancel ${d.kind} ${d.id}` }, 'Cancelling…', async () => {
    const r = await post(path`/deployments/${d.id}/cancel`, { reason: 'from the dashboard' });
    return `${r.kind} ${r.id} is ${r.state}.`;
  });
}

// operations shows the running operation and the queue, each cancellable.
function operations(st, actions) {
  const running = st.running
    ? h('p', { class: 'op running', 'data-running': st.running.id },
      'Running: ', st.running.kind, ' ', deploymentLink(st.running.id),
      st.running.phase ? [' in phase ', h('strong', {}, st.running.phase)] : '',
      st.running.started_at ? [' for ', since(st.running.started_at)] : '',
      st.running.author ? ` by ${st.running.author}` : '', ' ', cancelButton(actions, st.running))
    : h('p', { class: 'op idle' }, 'Nothing is running.');
  const queue = st.queue.length
    ? table('Queue, next first', ['Operation', 'Kind', 'Queued at', 'Author', 'Message', ''],
      st.queue.map((d) => h('tr', { 'data-deployment': d.id },
        h('td', {}, deploymentLink(d.id)), h('td', {}, d.kind), h('td', {}, timeEl(d.created_at)),
        h('td', {}, d.author || '–'), h('td', {}, d.message || ''), h('td', {}, cancelButton(actions, d)))))
    : h('p', { class: 'muted' }, 'The queue is empty.');
  return section('operations', 'Running and queued', running, queue);
}
