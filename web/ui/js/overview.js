// The overview: every app with its slots, live revisions, health, the
// operation running or queued, and how many conflicts it has.

import { h, appLink, deploymentLink, since, stateBadge, trafficBar, plural, problemArea, showProblem, clearProblem, renderIfChanged } from './dom.js';
import { follow, markFresh } from './live.js';

// renderOverview shows the overview in main, kept current by the event
// stream of every app (GET /api/v1/events): a status snapshot per app,
// then each change with the app's status after it. Nothing is polled.
export function renderOverview(main, scope) {
  document.title = 'Apps · baton';
  const problems = problemArea();
  const list = h('div', { class: 'apps' });
  main.append(h('h1', { tabindex: -1 }, 'Apps'), problems, list);
  const apps = new Map();
  let loaded = false;
  const render = () => {
    const all = [...apps.values()].sort((a, b) => a.app.localeCompare(b.app));
    renderIfChanged(list, all.map(stable), () => (all.length ? all.map(appCard) : emptyState()));
  };
  follow(scope, '/events', (e) => {
    apps.set(e.app, e.status);
    clearProblem(problems);
    markFresh(true);
    render();
  }, (state, err) => {
    main.setAttribute('data-events', state);
    if (state !== 'open') markFresh(false);
    // The stream sends nothing for an empty baton: say so once it is open.
    if (state === 'open' && !loaded) {
      loaded = true;
      render();
    }
    if (state === 'closed') showProblem(problems, 'Could not load the apps', err);
  });
}

// stable drops what changes every second without anything happening;
// ages are ticked in place instead.
export function stable(st) {
  const { running_for_seconds: _, lease: __, ...rest } = st;
  return rest;
}

function emptyState() {
  return h('div', { class: 'empty' },
    h('p', {}, 'No apps yet.'),
    h('p', {}, 'Create one with ', h('code', {}, 'baton apps create NAME'), ' and deploy it with ', h('code', {}, 'baton deploy NAME ./folder'), '.'));
}

// health sums a slot's instances: "2/2 healthy" and a class for its colour.
export function health(slot) {
  let total = 0;
  let ok = 0;
  for (const r of slot.revisions) {
    total += r.instances.length;
    ok += r.healthy_instances;
  }
  if (!slot.revisions.length) return { text: 'no live revision', cls: 'health-none' };
  const cls = ok === total && total > 0 ? 'health-ok' : ok === 0 ? 'health-down' : 'health-degraded';
  return { text: `${ok}/${total} instances healthy`, cls };
}

function conflictsBadge(st) {
  const n = st.conflicts.length;
  if (!n) return h('span', { class: 'badge ok', 'data-conflicts': 0 }, 'no conflicts');
  return h('a', { class: 'badge bad', href: `#/apps/${encodeURIComponent(st.app)}`, 'data-conflicts': n, title: st.conflicts.map((c) => c.message).join('\n') },
    plural(n, 'conflict'));
}

function slotItem(slot) {
  const hl = health(slot);
  return h('li', { class: 'slot-line', 'data-slot': slot.name },
    h('div', { class: 'slot-name' }, h('strong', {}, slot.name), ' ', h('span', { class: 'muted host' }, slot.host)),
    slot.revisions.length
      ? h('ul', { class: 'revs' }, slot.revisions.map((r) => h('li', { 'data-revision': r.name, 'data-traffic': r.traffic },
        h('span', { class: 'mono' }, r.name), trafficBar(r.name, r.traffic), h('span', { class: 'pct' }, `${r.traffic}%`))))
      : null,
    h('div', { class: `health ${hl.cls}` }, hl.text));
}

// operationLine says what the app is doing: the running operation with its
// phase and age, and the queue.
export function operationLine(st) {
  const queued = st.queue.length ? ` · ${st.queue.length} queued` : '';
  if (st.running) {
    const d = st.running;
    return h('p', { class: 'op running', 'data-running': d.id, 'data-phase': d.phase },
      h('span', { class: 'badge state-running' }, 'running'), ' ', d.kind, ' ', deploymentLink(d.id),
      d.phase ? [' ', h('span', { class: 'nowrap' }, '· phase ', h('strong', { class: 'phase' }, d.phase))] : null,
      d.started_at ? [' ', h('span', { class: 'nowrap' }, '· ', since(d.started_at))] : null, queued);
  }
  const last = st.recent[0];
  return h('p', { class: 'op idle' }, 'Idle', queued,
    last ? [' · last ', last.kind, ' ', deploymentLink(last.id), ' ', stateBadge(last.state)] : null);
}

function appCard(st) {
  const id = `app-${st.app}`;
  return h('article', { class: 'card', 'data-app': st.app, 'aria-labelledby': id },
    h('header', { class: 'card-head' },
      h('h2', { id }, appLink(st.app)),
      h('span', { class: 'badge', title: 'revision mode' }, st.revision_mode),
      st.frozen && h('span', { class: 'badge bad', title: st.frozen.reason }, 'frozen'),
      conflictsBadge(st)),
    h('ul', { class: 'slots', 'aria-label': `slots of ${st.app}` }, st.slots.map(slotItem)),
    operationLine(st));
}
