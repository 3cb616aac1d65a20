// A slot on the app page: its scale, its active revisions with traffic
// bars, their instances and health (and the hosts they run on, when several
// hosts share the store), and its settings with sticky and secret marks.

import { h, trafficBar, table, since, scaleText, hostsText } from './dom.js';
import { health } from './overview.js';

function instanceList(r) {
  if (!r.instances.length) return h('span', { class: 'muted' }, 'no instances running');
  return h('ul', { class: 'instances' }, r.instances.map((i) => h('li', { 'data-healthy': i.healthy },
    h('span', { class: i.healthy ? 'dot ok' : 'dot bad', 'aria-hidden': 'true' }),
    h('span', { class: 'mono' }, i.addr), ` pid ${i.pid} · `,
    i.healthy ? 'healthy' : h('strong', {}, 'unhealthy'),
    i.restarts ? ` · ${i.restarts} restarts` : '',
    i.crash_looping ? [' · ', h('strong', {}, 'crash-looping')] : '',
    ' · up ', since(i.started_at),
    i.last_error ? h('div', { class: 'muted' }, i.last_error) : null)));
}

function revisionsTable(slot) {
  if (!slot.revisions.length) return h('p', { class: 'muted' }, 'No active revision: nothing serves this slot yet.');
  return table(`Active revisions of ${slot.name}`, ['Revision', 'Traffic', 'Instances'],
    slot.revisions.map((r) => h('tr', { 'data-revision': r.name, 'data-traffic': r.traffic },
      h('td', { class: 'mono' }, r.name),
      h('td', {}, h('div', { class: 'traffic' }, trafficBar(r.name, r.traffic), h('span', { class: 'pct' }, `${r.traffic}%`))),
      h('td', {}, `${r.healthy_instances}/${r.instances.length} healthy`,
        r.hosts?.length ? h('div', { class: 'hosts', 'data-hosts': r.hosts.map((p) => `${p.host}=${p.instances}`).join(',') }, hostsText(r.hosts)) : null,
        instanceList(r)))));
}

const mark = (on, word) => (on ? h('span', { class: 'badge' }, word) : h('span', { class: 'muted', 'aria-label': `not ${word}` }, '–'));

// settingsTable lists a slot's settings; with editor (settingsPanel) each
// row has Edit and Remove buttons. A secret's value is masked by baton.
function settingsTable(slot, settings, editor) {
  if (settings instanceof Error) return h('p', { class: 'problem' }, `Could not load the settings: ${settings.message}`);
  if (!settings.length) {
    return h('p', { class: 'muted' }, 'No settings. Add some with ', h('code', {}, `baton config set APP KEY=VALUE --slot ${slot.name}`), '.');
  }
  return table(`Settings of ${slot.name}`, ['Name', 'Value', 'Sticky', 'Secret', ...(editor ? [''] : [])],
    settings.map((s) => h('tr', { 'data-setting': s.key },
      h('td', { class: 'mono' }, s.key),
      h('td', { class: 'mono value' }, s.value),
      h('td', {}, mark(s.sticky, 'sticky')),
      h('td', {}, mark(s.secret, 'secret')),
      editor && h('td', { class: 'nowrap' },
        h('button', { type: 'button', class: 'small', 'data-key': `setting-edit-${slot.name}-${s.key}`, 'aria-label': `Edit ${s.key}`, onclick: () => editor.edit({ ...s, slot: slot.name }) }, 'Edit'),
        ' ', editor.remove({ ...s, slot: slot.name })))));
}

// slotSection shows one slot with its settings (an array, or the Error
// that loading them ended with), editable through editor when given.
export function slotSection(slot, settings, editor) {
  const id = `slot-${slot.name}`;
  const hl = health(slot);
  return h('section', { class: 'slot', 'data-slot': slot.name, 'aria-labelledby': id },
    h('h3', { id }, `Slot ${slot.name}`),
    h('p', { class: 'muted' }, 'Serves ', h('span', { class: 'mono' }, slot.host),
      slot.auto_swap_to ? ` · swaps into ${slot.auto_swap_to} after each successful deployment` : '',
      slot.scale ? [' · ', h('span', { 'data-scale': `${slot.scale.instances}/${slot.scale.max_per_host}` }, `scale: ${scaleText(slot.scale.instances, slot.scale.max_per_host)} per revision`)] : '',
      ' · ', h('span', { class: `health ${hl.cls}` }, hl.text)),
    revisionsTable(slot),
    h('h4', {}, 'Settings'),
    h('p', { class: 'muted small' }, 'Sticky settings stay with the slot on swap; the others travel with the revision.'),
    settingsTable(slot, settings, editor));
}
