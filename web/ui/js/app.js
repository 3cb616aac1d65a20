// The app page: conflicts with their fixes, the running operation and the
// queue, the actions (deploy, swap, traffic, rollback, scale, freeze, settings) a
// token may take, every slot with its revisions and settings, the traffic
// charts, the deployment history and the swaps.
//
// The app's state comes from its event stream (GET .../events): a status
// snapshot first, then every change with the status after it; the page
// never polls status. What the stream does not carry (history, settings,
// revisions) is reloaded when an event says it may have changed; the
// traffic charts are sampled every 5 seconds.

import { get, post, path, whoami, allows } from './api.js';
import { h, section, deploymentLink, since, timeEl, problemArea, statusArea, showProblem, clearProblem, renderIfChanged, table, fmtTime } from './dom.js';
import { refresher, follow, markFresh } from './live.js';
import { ActionContext } from './actions.js';
import { conflictsPanel } from './conflicts.js';
import { slotSection } from './slots.js';
import { deploymentsTable, swapsTable } from './history.js';
import { trafficPanel, trafficWindow } from './traffic.js';
import { trafficCharts } from './charts.js';
import { deployPanel, swapPanel, trafficEditor, rollbackPanel, scalePanel, freezePanel, settingsPanel } from './manage.js';

// historyWindow is how many operations are fetched to find the swaps among
// them: the API has no filter by kind.
const historyWindow = 200;

// trafficEvery is how often the charts are sampled (the server samples
// every 5 s too).
const trafficEvery = 5000;

// renderApp shows app's page in main.
export function renderApp(main, scope, app) {
  document.title = `${app} · baton`;
  // Loading and acting report apart: a successful refresh right after a
  // failed action must not wipe the action's problem.
  const problems = problemArea();
  const actionProblems = problemArea();
  const status = statusArea();
  const head = h('div', { class: 'app-head' });
  const parts = {
    conflicts: h('div'), ops: h('div'), manage: h('div', { class: 'manage' }), weights: h('div'), slots: h('div'),
    traffic: h('div', { class: 'traffic-block' }), deployments: h('div'), swaps: h('div'),
  };
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Apps'), ' / ', app),
    h('h1', { tabindex: -1 }, app), head, problems, actionProblems, status,
    parts.conflicts, parts.ops, parts.weights, parts.manage, parts.slots, parts.traffic, parts.deployments, parts.swaps);

  let st = null;
  let who = null;
  let extras = { ds: [], settings: [], revisions: [] };
  let panels = null;

  const canDeploy = () => allows(who, 'deploy', app);
  const canAdmin = () => allows(who, 'admin', app);

  // render draws everything from the latest status and extras.
  const render = () => {
    if (!st || !scope.alive) return;
    const deployer = canDeploy();
    if (deployer && !panels) {
      panels = {
        deploy: deployPanel(app, loadExtras),
        swap: swapPanel(app, loadExtras),
        rollback: rollbackPanel(app, loadExtras),
        scale: scalePanel(app, loadExtras),
        settings: settingsPanel(app, loadExtras),
        freeze: canAdmin() ? freezePanel(app, loadExtras) : null,
      };
      parts.manage.replaceChildren(
        h('details', { class: 'actions-box', 'data-key': 'actions', open: true },
          h('summary', {}, h('h2', { class: 'inline' }, 'Actions')),
          h('div', { class: 'manage-grid' }, ...Object.values(panels).filter(Boolean).map((p) => p.el))));
    }
    if (panels) {
      for (const p of Object.values(panels)) p?.update(st, extras.revisions);
    }
    renderIfChanged(head, [st.revision_mode, st.frozen], () => appHead(st));
    renderIfChanged(parts.conflicts, [st.conflicts, deployer], () => conflictsPanel(app, st.conflicts, deployer && actions));
    renderIfChanged(parts.ops, [st.running, st.queue, deployer], () => operations(st, deployer && actions));
    renderIfChanged(parts.weights, [deployer, st.slots.map((s) => s.revisions.map((r) => [s.name, r.name, r.traffic]))],
      () => (deployer ? trafficEditor(app, st, loadExtras) : null));
    const settings = extras.settings;
    renderIfChanged(parts.slots, [st.slots, settings.map((s) => (s instanceof Error ? s.message : s)), deployer],
      () => section('slots', 'Slots', st.slots.map((s, i) => slotSection(s, settings[i] || [], deployer ? panels.settings : null))));
    const ds = extras.ds;
    renderIfChanged(parts.deployments, ds.slice(0, 20), () => section('deployments', 'Last 20 deployments', deploymentsTable(ds.slice(0, 20))));
    const swaps = ds.filter((d) => d.kind === 'swap').slice(0, 20);
    renderIfChanged(parts.swaps, swaps, () => section('swaps', 'Swap history', swapsTable(swaps)));
  };

  // loadExtras reloads what the stream does not carry.
  const loadExtras = refresher(scope, async () => {
    if (!st) return;
    let ds;
    try {
      ds = await get(path`/apps/${app}/deployments?limit=${historyWindow}`);
    } catch (e) {
      if (!scope.alive) return;
      showProblem(problems, `Could not load ${app}'s history`, e);
      return;
    }
    // A slot's settings failing to load should not hide the rest.
    const settings = await Promise.all(st.slots.map((s) => get(path`/apps/${app}/slots/${s.name}/settings`).catch((e) => e)));
    const revisions = await get(path`/apps/${app}/revisions`).catch((e) => e);
    if (!scope.alive) return;
    clearProblem(problems);
    extras = { ds, settings, revisions };
    render();
  });

  const loadTraffic = async () => {
    const t = await get(path`/apps/${app}/traffic?window=${trafficWindow}`).catch((e) => e);
    if (!scope.alive) return;
    renderIfChanged(parts.traffic, t instanceof Error ? t.message : t, () => [
      section('charts', 'Traffic per revision', trafficCharts(t instanceof Error ? null : t)),
      trafficPanel(t),
    ]);
  };

  const actions = new ActionContext(actionProblems, status, loadExtras);

  // History, settings and revisions may change with a deployment's phase
  // or end, or with routing; .soon() coalesces a burst of events.
  follow(scope, path`/apps/${app}/events`, (e) => {
    const first = !st;
    st = e.status;
    markFresh(true);
    clearProblem(problems);
    render();
    if (first || e.type === 'status' || e.type === 'routing' || e.type === 'deployment') loadExtras.soon();
  }, (state, err) => {
    main.setAttribute('data-events', state);
    if (state !== 'open') markFresh(false);
    if (state === 'closed') showProblem(problems, `Could not follow ${app}`, err);
  });
  whoami().then((w) => {
    who = w;
    render();
  }, () => {
    // Without whoami the page shows no actions; a 401 opens the sign-in.
  });
  loadTraffic();
  scope.every(trafficEvery, loadTraffic);
}

function appHead(st) {
  return [
    h('p', { class: 'muted' }, `${st.revision_mode} revision mode`,
      st.revision_mode === 'single' ? ': one active revision per slot' : ': several revisions per slot share its traffic by weight'),
    st.frozen && h('p', { class: 'banner bad', 'data-frozen': st.frozen.reason }, h('strong', {}, 'Frozen: '), st.frozen.reason,
      h('span', { class: 'muted' }, ` (by ${st.frozen.by} at ${fmtTime(st.frozen.at)}); new deployments are refused.`)),
  ];
}

function cancelButton(actions, d) {
  return actions.button('Cancel', { class: 'danger', 'data-key': `cancel-${d.id}`, 'aria-label': `Cancel ${d.kind} ${d.id}` }, 'Cancelling…', async () => {
    const r = await post(path`/deployments/${d.id}/cancel`, { reason: 'from the dashboard' });
    return `${r.kind} ${r.id} is ${r.state}.`;
  });
}

// operations shows the running operation and the queue, each cancellable
// when actions is given (a token that may deploy).
function operations(st, actions) {
  const running = st.running
    ? h('p', { class: 'op running', 'data-running': st.running.id, 'data-phase': st.running.phase },
      'Running: ', st.running.kind, ' ', deploymentLink(st.running.id),
      st.running.phase ? [' in phase ', h('strong', {}, st.running.phase)] : '',
      st.running.started_at ? [' for ', since(st.running.started_at)] : '',
      st.running.author ? ` by ${st.running.author}` : '', ' ', actions && cancelButton(actions, st.running))
    : h('p', { class: 'op idle' }, 'Nothing is running.');
  const queue = st.queue.length
    ? table('Queue, next first', ['Operation', 'Kind', 'Queued at', 'Author', 'Message', ''],
      st.queue.map((d) => h('tr', { 'data-deployment': d.id },
        h('td', {}, deploymentLink(d.id)), h('td', {}, d.kind), h('td', {}, timeEl(d.created_at)),
        h('td', {}, d.author || '–'), h('td', {}, d.message || ''), h('td', {}, actions && cancelButton(actions, d)))))
    : h('p', { class: 'muted' }, 'The queue is empty.');
  return section('operations', 'Running and queued', running, queue);
}
