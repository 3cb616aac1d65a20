// The conflicts panel: each conflict the status API reports, with its fix
// command to copy and, where the dashboard can do the same through the
// API, a button that does it.

import { path, post } from './api.js';
import { h, section, plural } from './dom.js';
import { confirmDialog } from './actions.js';

// parseFix splits a fix command ("baton stabilize hello --slot staging")
// into its positional words and its --flag values.
export function parseFix(fix) {
  const words = (fix || '').trim().split(/\s+/);
  if (words[0] !== 'baton') return null;
  const args = [];
  const flags = {};
  for (let i = 1; i < words.length; i++) {
    if (words[i].startsWith('--')) {
      flags[words[i].slice(2)] = words[i + 1];
      i++;
    } else {
      args.push(words[i]);
    }
  }
  return { args, flags };
}

// fixAction maps a conflict's fix command to the API call that does the
// same thing, or null when only the command can be shown. The fix command
// is the contract: the button never does something else than it says.
export function fixAction(app, conflict) {
  const f = parseFix(conflict.fix);
  if (!f) return null;
  const [verb, a1, a2] = f.args;
  if (verb === 'stabilize' && a1 === app) {
    const slot = f.flags.slot || 'production';
    const revision = f.flags.revision || '';
    return {
      label: 'Stabilize',
      busy: 'Stabilizing…',
      run: async () => {
        const d = await post(path`/apps/${app}/stabilize?author=dashboard`, { slot, revision });
        return `Stabilized ${app} (${slot}): operation ${d.id} ${d.state}.`;
      },
    };
  }
  if (verb === 'unfreeze' && a1 === app) {
    return {
      label: 'Unfreeze',
      busy: 'Unfreezing…',
      run: async () => {
        await post(path`/apps/${app}/unfreeze`);
        return `${app} is no longer frozen.`;
      },
    };
  }
  if (verb === 'deployments' && a1 === 'cancel' && a2) {
    return {
      label: `Cancel ${a2}`,
      busy: 'Cancelling…',
      run: async () => {
        const d = await post(path`/deployments/${a2}/cancel`, { reason: `from the dashboard: ${conflict.code}` });
        return `${d.kind} ${d.id} is ${d.state}.`;
      },
    };
  }
  if (verb === 'locks' && a1 === 'break' && a2 === app) {
    return {
      label: 'Break lock',
      busy: 'Breaking…',
      run: async () => {
        const reason = await confirmDialog({
          title: `Break the lock of ${app}?`,
          body: [
            h('p', {}, conflict.message),
            h('p', {}, 'The operation holding it is failed; its later writes are refused (fencing). The break is recorded in the audit log.'),
          ],
          field: 'Reason for the audit log',
          confirm: 'Break the lock',
        });
        if (reason === null) return undefined;
        const l = await post(path`/apps/${app}/lock/break`, { reason });
        return `Broke the lock of ${app} (was held by ${l.holder || 'nobody'}).`;
      },
    };
  }
  return null;
}

// copyButton copies text to the clipboard, or selects it for Ctrl+C where
// the clipboard API is unavailable (plain http on a non-local address).
function copyButton(codeEl, text, key) {
  const b = h('button', { type: 'button', class: 'small', 'data-key': key, 'aria-label': `Copy the command ${text}` }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      const r = document.createRange();
      r.selectNodeContents(codeEl);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
      b.textContent = 'Selected: press Ctrl+C';
    }
  });
  return b;
}

// conflictsPanel lists conflicts; actions makes the fix buttons (none
// without it: a token that may only read).
export function conflictsPanel(app, conflicts, actions) {
  if (!conflicts.length) {
    return section('conflicts', 'Conflicts', h('p', { class: 'ok', 'data-conflicts': 0 }, 'No conflicts.'));
  }
  return section('conflicts', `Conflicts (${conflicts.length})`,
    h('p', { class: 'muted', 'data-conflicts': conflicts.length },
      `${plural(conflicts.length, 'state')} need${conflicts.length === 1 ? 's' : ''} an operator. A button does exactly what the fix command beside it says.`),
    h('ul', { class: 'conflicts' }, conflicts.map((c, i) => {
      const code = h('code', { class: 'cmd' }, c.fix);
      const fix = actions && fixAction(app, c);
      const key = `fix-${c.code}-${i}`;
      return h('li', { class: 'conflict', 'data-code': c.code },
        h('h3', {}, h('code', {}, c.code)),
        h('p', {}, c.message),
        h('p', { class: 'fix' }, 'Fix: ', code, ' ', copyButton(code, c.fix, `copy-${key}`)),
        fix && h('p', {}, actions.button(fix.label, { class: 'primary', 'data-key': key, 'data-fix': c.code }, fix.busy, fix.run)));
    })));
}
