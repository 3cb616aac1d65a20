// The app page's actions, each through the same API route (and scope) as
// the CLI command it mirrors: deploy an upload, swap slots (with preview),
// split traffic, stabilize, roll back, scale, freeze, edit settings. Each panel
// reports its result, or the problem's sentence, inside itself. Panels with
// inputs are built once per page and updated in place, so a live update
// never eats what the user is typing.

import { path, post, put, del, upload } from './api.js';
import { h, section, problemArea, statusArea, deploymentLink, scaleText } from './dom.js';
import { ActionContext, confirmDialog } from './actions.js';
import { zipFolder } from './zip.js';

// panelActions is an ActionContext whose outcomes show inside panel.
function panelActions(refresh) {
  const problems = problemArea();
  const status = statusArea();
  return { actions: new ActionContext(problems, status, refresh), areas: [problems, status] };
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function field(label, input, hint) {
  return h('p', { class: 'field' }, h('label', { for: input.id }, label), input, hint ? h('span', { class: 'muted small' }, hint) : null);
}

function select(id, options, attrs = {}) {
  const el = h('select', { id, ...attrs });
  setOptions(el, options);
  return el;
}

// setOptions replaces a select's options ([value, label] or value), keeping
// the chosen value when it is still offered.
function setOptions(el, options) {
  const keep = el.value;
  const sig = JSON.stringify(options);
  if (el.dataset.options === sig) return;
  el.dataset.options = sig;
  el.replaceChildren(...options.map((o) => (Array.isArray(o) ? h('option', { value: o[0] }, o[1]) : h('option', { value: o }, o))));
  if (options.some((o) => (Array.isArray(o) ? o[0] : o) === keep)) el.value = keep;
}

const slotNames = (st) => st.slots.map((s) => s.name);

// deployPanel uploads a folder (zipped here) or an archive to a slot, with
// a progress bar, then opens the deployment's live page.
export function deployPanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const slot = select('deploy-slot', ['production']);
  const folder = h('input', { id: 'deploy-folder', type: 'file', webkitdirectory: true, multiple: true });
  const archive = h('input', { id: 'deploy-archive', type: 'file', accept: '.zip,.tar.gz,.tgz,application/zip,application/gzip' });
  const message = h('input', { id: 'deploy-message', type: 'text', autocomplete: 'off', placeholder: 'what changed' });
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, 'aria-label': 'Upload progress' });
  const barText = h('span', { id: 'upload-text', class: 'muted small', 'aria-live': 'polite' }, '');
  // The bar keeps its space while idle: no jump when an upload starts.
  const progress = h('p', { class: 'progress idle' }, bar, ' ', barText);
  folder.addEventListener('change', () => {
    if (folder.files.length) archive.value = '';
  });
  archive.addEventListener('change', () => {
    if (archive.files.length) folder.value = '';
  });
  const go = actions.button('Deploy', { class: 'primary', 'data-key': 'deploy' }, 'Deploying…', async () => {
    let body;
    let type;
    let what;
    if (archive.files.length) {
      const f = archive.files[0];
      body = f;
      type = /\.zip$/i.test(f.name) ? 'application/zip' : 'application/gzip';
      what = f.name;
    } else if (folder.files.length) {
      barText.textContent = 'Zipping the folder…';
      body = await zipFolder(folder.files);
      type = 'application/zip';
      what = `a folder of ${folder.files.length} files`;
    } else {
      throw new Error('Choose a folder or a .zip or .tar.gz archive to deploy.');
    }
    const ok = await confirmDialog({
      title: `Deploy to ${app} ${slot.value}?`,
      body: h('p', {}, `This uploads ${what} (${(body.size / 1048576).toFixed(1)} MiB) and, once it is healthy, `, h('strong', {}, slot.value), ' serves it.'),
      confirm: 'Deploy',
    });
    if (!ok) return undefined;
    progress.classList.remove('idle');
    const q = `?author=dashboard&message=${encodeURIComponent(message.value)}`;
    const d = await upload(path`/apps/${app}/slots/${slot.value}/deployments` + q, body, type, (sent, total) => {
      bar.max = total;
      bar.value = sent;
      barText.textContent = `${(sent / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB uploaded`;
    });
    barText.textContent = 'Uploaded.';
    if (d.unchanged) return `Nothing to deploy: ${d.detail}`;
    // The deployment's own page follows its log live.
    setTimeout(() => { location.hash = `#/deployments/${encodeURIComponent(d.id)}`; }, 600);
    return h('span', {}, `Deployment `, deploymentLink(d.id), ` is ${d.state}; opening its live log…`);
  });
  const el = section('deploy', 'Deploy',
    h('div', { class: 'form-grid' },
      field('Slot', slot),
      field('Folder', folder, 'zipped in this browser'),
      field('or archive', archive, '.zip or .tar.gz'),
      field('Message', message)),
    h('p', {}, go), progress, ...areas);
  return { el, update: (st) => setOptions(slot, slotNames(st)) };
}

const swapSteps = ['starting', 'health-checking', 'warming', 'awaiting-completion', 'switching', 'draining'];

// swapPanel starts a swap (with or without preview) and shows a running
// swap's progress, with complete and cancel while it waits in preview.
export function swapPanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const source = select('swap-source', ['production']);
  const target = select('swap-target', ['production']);
  const preview = h('input', { id: 'swap-preview', type: 'checkbox' });
  const running = h('div', { class: 'swap-running' });
  const start = actions.button('Swap', { class: 'primary', 'data-key': 'swap' }, 'Swapping…', async () => {
    if (source.value === target.value) throw new Error('Choose two different slots to swap.');
    const ok = await confirmDialog({
      title: `Swap ${source.value} into ${target.value}?`,
      body: h('p', {}, preview.checked
        ? `${source.value} first serves ${target.value}'s settings (a preview); ${target.value} changes when you complete it.`
        : `${target.value} serves what ${source.value} runs now, once it is warm.`),
      confirm: preview.checked ? 'Start the preview' : 'Swap',
    });
    if (!ok) return undefined;
    const d = await post(path`/apps/${app}/swaps?author=dashboard`, { source: source.value, target: target.value, preview: preview.checked });
    return h('span', {}, 'Swap ', deploymentLink(d.id), ` is ${d.state}.`);
  });
  const el = section('swap', 'Swap slots',
    h('div', { class: 'form-grid' }, field('From', source), field('Into', target),
      h('p', { class: 'field check' }, preview, h('label', { for: 'swap-preview' }, 'Preview first (complete or cancel it after checking)'))),
    h('p', {}, start), running, ...areas);
  const update = (st) => {
    const names = slotNames(st);
    setOptions(source, names);
    setOptions(target, names);
    if (source.value === target.value && names.length > 1) {
      source.value = names.find((n) => n !== 'production') || names[0];
    }
    const sw = st.running?.kind === 'swap' ? st.running : null;
    const sig = sw ? `${sw.id} ${sw.phase}` : '';
    if (running.dataset.sig === sig) return;
    running.dataset.sig = sig;
    if (!sw) {
      running.replaceChildren();
      return;
    }
    const at = swapSteps.indexOf(sw.phase);
    running.replaceChildren(
      h('p', { 'data-swap': sw.id, 'data-phase': sw.phase }, 'Swap ', deploymentLink(sw.id), ' in phase ', h('strong', {}, sw.phase || 'queued')),
      h('ol', { class: 'steps', 'aria-label': 'Swap progress' }, swapSteps.map((s, i) =>
        h('li', { class: i < at ? 'done' : i === at ? 'now' : '', 'aria-current': i === at ? 'step' : null }, s))),
      sw.phase === 'awaiting-completion' && h('p', { class: 'buttons' },
        actions.button('Complete the swap', { class: 'primary', 'data-key': `swap-complete-${sw.id}` }, 'Completing…', async () => {
          const ok = await confirmDialog({ title: 'Complete the swap?', body: h('p', {}, 'The target slot then serves the previewed revision.'), confirm: 'Complete' });
          if (!ok) return undefined;
          const d = await post(path`/swaps/${sw.id}/complete`);
          return `Swap ${d.id} is ${d.state}.`;
        }),
        ' ',
        actions.button('Cancel the preview', { class: 'danger', 'data-key': `swap-cancel-${sw.id}` }, 'Cancelling…', async () => {
          const d = await post(path`/swaps/${sw.id}/cancel`, { reason: 'from the dashboard' });
          return `Swap ${d.id} is ${d.state}.`;
        })));
  };
  return { el, update };
}

// balance sets weights[i] to v and spreads the difference over the others
// in proportion to their weights, so the total stays 100.
export function balance(weights, i, v) {
  const out = weights.slice();
  out[i] = Math.max(0, Math.min(100, Math.round(v)));
  const others = out.map((_, j) => j).filter((j) => j !== i);
  if (!others.length) return [100];
  let rest = 100 - out[i];
  const sum = others.reduce((n, j) => n + weights[j], 0);
  for (const j of others) out[j] = sum > 0 ? Math.floor((weights[j] * rest) / sum) : Math.floor(rest / others.length);
  let left = rest - others.reduce((n, j) => n + out[j], 0);
  for (let k = 0; left > 0; k = (k + 1) % others.length, left--) out[others[k]]++;
  return out;
}

// trafficEditor shows, per slot with several active revisions, a slider
// per revision that always sum to 100, with Apply and Stabilize.
export function trafficEditor(app, st, refresh) {
  const { actions, areas } = panelActions(refresh);
  const slots = st.slots.filter((s) => s.revisions.length > 1);
  const body = slots.map((s) => {
    let weights = s.revisions.map((r) => r.traffic);
    const sliders = [];
    const outs = [];
    const show = () => weights.forEach((w, i) => {
      sliders[i].value = w;
      sliders[i].setAttribute('aria-valuetext', `${w}%`);
      outs[i].textContent = `${w}%`;
    });
    const rows = s.revisions.map((r, i) => {
      const id = `weight-${s.name}-${r.name}`;
      sliders[i] = h('input', { id, type: 'range', min: 0, max: 100, step: 1, value: r.traffic, 'data-weight': r.name });
      outs[i] = h('output', { for: id, class: 'pct' }, `${r.traffic}%`);
      sliders[i].addEventListener('input', () => {
        weights = balance(weights, i, Number(sliders[i].value));
        show();
      });
      return h('p', { class: 'slider' }, h('label', { for: id, class: 'mono' }, r.name), sliders[i], outs[i]);
    });
    const apply = actions.button('Apply weights', { class: 'primary', 'data-key': `weights-${s.name}` }, 'Applying…', async () => {
      const w = Object.fromEntries(s.revisions.map((r, i) => [r.name, weights[i]]));
      const ok = await confirmDialog({
        title: `Change ${s.name}'s traffic?`,
        body: h('ul', {}, s.revisions.map((r, i) => h('li', {}, `${r.name}: ${r.traffic}% → ${weights[i]}%`))),
        confirm: 'Apply',
      });
      if (!ok) return undefined;
      const d = await put(path`/apps/${app}/slots/${s.name}/traffic?author=dashboard`, { weights: w });
      return `Traffic of ${s.name} set (operation ${d.id} ${d.state}).`;
    });
    const stable = select(`stabilize-${s.name}`, s.revisions.map((r) => r.name));
    stable.value = s.revisions.reduce((a, b) => (b.traffic > a.traffic ? b : a)).name;
    const stabilize = actions.button('Stabilize', { 'data-key': `stabilize-${s.name}` }, 'Stabilizing…', async () => {
      const ok = await confirmDialog({
        title: `Stabilize ${s.name} on ${stable.value}?`,
        body: h('p', {}, `${stable.value} gets all of ${s.name}'s traffic; the other revisions stop.`),
        confirm: 'Stabilize',
      });
      if (!ok) return undefined;
      const d = await post(path`/apps/${app}/stabilize?author=dashboard`, { slot: s.name, revision: stable.value });
      return `Stabilized ${s.name} on ${stable.value} (operation ${d.id} ${d.state}).`;
    });
    return h('div', { class: 'weights', 'data-weights-slot': s.name },
      h('h3', {}, `Slot ${s.name}`),
      h('div', { role: 'group', 'aria-label': `Traffic weights of ${s.name}, always 100% in all` }, rows),
      h('p', { class: 'buttons' }, apply, ' ', h('label', { for: stable.id }, 'Keep only '), stable, ' ', stabilize));
  });
  if (!body.length) return null;
  return section('weights', 'Traffic split', h('p', { class: 'muted small' }, 'Moving one slider moves the others so the total stays 100%.'), body, ...areas);
}

// rollbackPanel rolls a slot back to the revision before, or a chosen one.
export function rollbackPanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const slot = select('rollback-slot', ['production']);
  const to = select('rollback-to', [['', 'the previous revision']]);
  let revisions = [];
  const fill = () => setOptions(to, [['', 'the previous revision'],
    ...revisions.filter((r) => r.slot === slot.value && !r.active).map((r) => [r.name, `${r.name} (${r.created_at.slice(0, 16).replace('T', ' ')})`])]);
  slot.addEventListener('change', fill);
  const go = actions.button('Roll back', { class: 'danger', 'data-key': 'rollback' }, 'Rolling back…', async () => {
    const ok = await confirmDialog({
      title: `Roll ${slot.value} back?`,
      body: h('p', {}, `${slot.value} serves ${to.value || 'the revision it served before'} again.`),
      confirm: 'Roll back',
    });
    if (!ok) return undefined;
    const d = await post(path`/apps/${app}/slots/${slot.value}/rollback?author=dashboard`, to.value ? { to: to.value } : {});
    return h('span', {}, 'Rollback ', deploymentLink(d.id), ` is ${d.state}${d.revision ? `: ${slot.value} serves ${d.revision}` : ''}.`);
  });
  const el = section('rollback', 'Roll back', h('div', { class: 'form-grid' }, field('Slot', slot), field('To', to)), h('p', {}, go), ...areas);
  return {
    el,
    update: (st, revs) => {
      setOptions(slot, slotNames(st));
      if (revs && !(revs instanceof Error)) revisions = revs;
      fill();
    },
  };
}

// wholeNumber reads a number input: its integer, null when empty, NaN
// when it holds anything else.
function wholeNumber(input) {
  const v = input.value.trim();
  if (v === '') return null;
  const n = Number(v);
  return Number.isInteger(n) ? n : NaN;
}

// scalePanel sets how many instances each revision of a slot runs and at
// most how many on one host (POST …/scale, as `baton scale`). It shows the
// slot's scale now and follows the scale it queued to its end, both from
// the event stream.
export function scalePanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const slot = select('scale-slot', ['production']);
  const instances = h('input', { id: 'scale-instances', type: 'number', min: 1, max: 64, step: 1, inputmode: 'numeric', autocomplete: 'off', placeholder: 'e.g. 3' });
  const maxPerHost = h('input', { id: 'scale-max-per-host', type: 'number', min: 0, max: 64, step: 1, inputmode: 'numeric', autocomplete: 'off', placeholder: 'no cap' });
  const now = h('p', { class: 'muted small', id: 'scale-now' });
  // The operation this panel queued, followed until it ends.
  const outcome = h('p', { class: 'scale-outcome', 'aria-live': 'polite', hidden: true });
  let tracked = null;
  let slots = [];
  // The form starts at the slot's scale until the user types.
  let typed = false;
  for (const input of [instances, maxPerHost]) input.addEventListener('input', () => { typed = true; });
  const showNow = () => {
    const s = slots.find((x) => x.name === slot.value);
    const sc = s?.scale;
    now.dataset.scale = sc ? `${sc.instances}/${sc.max_per_host}` : '';
    now.textContent = sc
      ? `Now: ${scaleText(sc.instances, sc.max_per_host)} per revision.`
      : "Now: as each revision's manifest says ([run] instances).";
    if (!typed && document.activeElement !== instances && document.activeElement !== maxPerHost) {
      instances.value = sc ? String(sc.instances) : '';
      maxPerHost.value = sc && sc.max_per_host > 0 ? String(sc.max_per_host) : '';
    }
  };
  slot.addEventListener('change', () => {
    typed = false;
    showNow();
  });
  const showOutcome = (d) => {
    tracked = d;
    outcome.hidden = false;
    outcome.dataset.scaleOp = d.id;
    outcome.dataset.state = d.state;
    outcome.className = `scale-outcome${d.state === 'failed' ? ' problem' : ''}`;
    outcome.replaceChildren('Scale ', deploymentLink(d.id), ' ', h('strong', {}, d.state),
      d.phase && !['succeeded', 'failed', 'cancelled', 'superseded'].includes(d.state) ? ` (${d.phase})` : '',
      d.error ? `: ${d.error}` : '.');
  };
  const go = actions.button('Scale', { class: 'primary', 'data-key': 'scale' }, 'Scaling…', async () => {
    const n = wholeNumber(instances);
    if (n === null || Number.isNaN(n)) throw new Error('Give how many instances each revision of the slot runs, a whole number from 1 to 64.');
    const cap = wholeNumber(maxPerHost);
    if (Number.isNaN(cap)) throw new Error('Max per host is a whole number, or empty for no cap.');
    const what = scaleText(n, cap || 0);
    const ok = await confirmDialog({
      title: `Scale ${slot.value} to ${what}?`,
      body: h('p', {}, `Each revision serving ${slot.value} runs ${what}. Added instances get traffic once they are healthy; removed ones drain before they stop.`),
      confirm: 'Scale',
    });
    if (!ok) return undefined;
    const d = await post(path`/apps/${app}/scale?author=dashboard`, { slot: slot.value, instances: n, max_per_host: cap || 0 });
    typed = false;
    showOutcome(d);
    return h('span', {}, 'Scale ', deploymentLink(d.id), ` of ${slot.value} to ${what} is ${d.state}.`);
  });
  const el = section('scale', 'Scale',
    h('div', { class: 'form-grid' },
      field('Slot', slot),
      field('Instances', instances, 'per revision, 1 to 64'),
      field('Max per host', maxPerHost, 'empty: no cap')),
    now, h('p', {}, go), outcome, ...areas);
  return {
    el,
    update: (st) => {
      slots = st.slots;
      setOptions(slot, slotNames(st));
      showNow();
      if (!tracked) return;
      const d = [st.running, ...st.queue, ...st.recent].find((x) => x?.id === tracked.id);
      if (d && (d.state !== tracked.state || d.phase !== tracked.phase || d.error !== tracked.error)) showOutcome(d);
    },
  };
}

// freezePanel freezes the app with a reason, or unfreezes it (admin).
export function freezePanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const reason = h('input', { id: 'freeze-reason', type: 'text', autocomplete: 'off', placeholder: 'incident 42: hold deploys' });
  const freezeBox = h('div', {}, field('Reason', reason, 'shown to everyone whose deployment is refused'),
    h('p', {}, actions.button('Freeze', { class: 'danger', 'data-key': 'freeze' }, 'Freezing…', async () => {
      const a = await post(path`/apps/${app}/freeze`, { reason: reason.value.trim() });
      reason.value = '';
      return `${a.name} is frozen: new deployments are refused.`;
    })));
  const unfreezeBox = h('p', {}, actions.button('Unfreeze', { 'data-key': 'unfreeze' }, 'Unfreezing…', async () => {
    const a = await post(path`/apps/${app}/unfreeze`);
    return `${a.name} is no longer frozen.`;
  }));
  const el = section('freeze', 'Freeze', freezeBox, unfreezeBox, ...areas);
  return {
    el,
    update: (st) => {
      freezeBox.hidden = !!st.frozen;
      unfreezeBox.hidden = !st.frozen;
    },
  };
}

// settingsPanel sets one setting of a slot (a new one, or one picked with
// an Edit button in the slot's table) and removes settings. A secret's
// value never comes back from baton: editing one means typing a new value.
export function settingsPanel(app, refresh) {
  const { actions, areas } = panelActions(refresh);
  const slot = select('setting-slot', ['production']);
  const key = h('input', { id: 'setting-key', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'NAME' });
  const value = h('input', { id: 'setting-value', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const sticky = h('input', { id: 'setting-sticky', type: 'checkbox' });
  const secret = h('input', { id: 'setting-secret', type: 'checkbox' });
  secret.addEventListener('change', () => { value.type = secret.checked ? 'password' : 'text'; });
  const save = actions.button('Save setting', { class: 'primary', 'data-key': 'setting-save' }, 'Saving…', async () => {
    const k = key.value.trim();
    if (!k) throw new Error('A setting needs a name.');
    const ok = await confirmDialog({
      title: `Set ${k} on ${slot.value}?`,
      body: h('p', {}, `${slot.value}'s live revision restarts with it, as a new revision.`),
      confirm: 'Save and restart',
    });
    if (!ok) return undefined;
    const d = await put(path`/apps/${app}/slots/${slot.value}/settings/${k}?author=dashboard`, { value: value.value, sticky: sticky.checked, secret: secret.checked });
    value.value = '';
    return h('span', {}, `${k} set on ${slot.value}; operation `, deploymentLink(d.id), ` is ${d.state}.`);
  });
  const el = section('settings', 'Edit settings',
    h('div', { class: 'form-grid' }, field('Slot', slot), field('Name', key), field('Value', value),
      h('p', { class: 'field check' }, sticky, h('label', { for: 'setting-sticky' }, 'Sticky (stays with the slot on swap)')),
      h('p', { class: 'field check' }, secret, h('label', { for: 'setting-secret' }, 'Secret (never shown again)'))),
    h('p', {}, save), ...areas);
  return {
    el,
    update: (st) => setOptions(slot, slotNames(st)),
    // edit loads a setting into the form.
    edit(s) {
      slot.value = s.slot;
      key.value = s.key;
      sticky.checked = s.sticky;
      secret.checked = s.secret;
      value.type = s.secret ? 'password' : 'text';
      value.value = s.secret ? '' : s.value;
      value.placeholder = s.secret ? 'type the new secret value' : '';
      value.focus();
    },
    // remove is the Remove button of a setting's row.
    remove(s) {
      return actions.button('Remove', { class: 'small danger', 'data-key': `setting-remove-${s.slot}-${s.key}`, 'aria-label': `Remove ${s.key}` }, 'Removing…', async () => {
        const ok = await confirmDialog({ title: `Remove ${s.key} from ${s.slot}?`, body: h('p', {}, `${s.slot}'s live revision restarts without it.`), confirm: 'Remove' });
        if (!ok) return undefined;
        const d = await del(path`/apps/${app}/slots/${s.slot}/settings/${s.key}?author=dashboard`);
        return h('span', {}, `${s.key} removed from ${s.slot}; operation `, deploymentLink(d.id), ` is ${d.state}.`);
      });
    },
  };
}
