// Actions: buttons that change something through the API. They disable
// themselves while the call runs (no double cancel), report the outcome in
// the page's status area and problems in its problem area, then refresh.

import { h, showProblem, clearProblem } from './dom.js';

// ActionContext is what a page gives its buttons.
export class ActionContext {
  constructor(problems, status, refresh) {
    this.problems = problems;
    this.status = status;
    this.refresh = refresh;
    this.busy = new Set();
  }

  // button is a button that runs fn; busy is its label while fn runs, and
  // fn's result (a string) is announced when it succeeds. attrs must hold a
  // data-key: a refresh may rebuild the button while fn runs, and the new
  // one must stay disabled too.
  button(label, attrs, busy, fn) {
    const key = attrs['data-key'];
    const running = this.busy.has(key);
    // aria-disabled, not disabled: a disabled button drops keyboard focus.
    const b = h('button', { type: 'button', ...attrs, 'aria-disabled': running ? 'true' : null, 'aria-busy': running ? 'true' : null }, running ? busy : label);
    b.addEventListener('click', () => this.run(key, label, busy, fn));
    return b;
  }

  // buttonsOf finds the buttons for key that are on the page now.
  buttonsOf(key) {
    return document.querySelectorAll(`button[data-key="${CSS.escape(key)}"]`);
  }

  async run(key, label, busy, fn) {
    if (this.busy.has(key)) return;
    this.busy.add(key);
    for (const b of this.buttonsOf(key)) {
      b.setAttribute('aria-disabled', 'true');
      b.setAttribute('aria-busy', 'true');
      b.textContent = busy;
    }
    try {
      const done = await fn();
      if (done === undefined) return; // the user backed out of a dialog
      clearProblem(this.problems);
      this.status.replaceChildren(h('p', {}, done));
    } catch (e) {
      this.status.replaceChildren();
      clearProblem(this.problems); // the same refusal twice is announced twice
      showProblem(this.problems, `${label} failed`, e);
    } finally {
      this.busy.delete(key);
      for (const b of this.buttonsOf(key)) {
        b.removeAttribute('aria-disabled');
        b.removeAttribute('aria-busy');
        b.textContent = label;
      }
      this.refresh();
    }
  }
}

// confirmDialog asks a yes/no question in a modal dialog, with a required
// text field when field is given; it resolves to the field's value (or
// true), or null when the user backs out.
export function confirmDialog({ title, body, confirm, field }) {
  return new Promise((resolve) => {
    const input = field ? h('input', { id: 'dialog-field', type: 'text', required: true, autocomplete: 'off' }) : null;
    const error = h('p', { class: 'problem', role: 'alert', hidden: true });
    const ok = h('button', { type: 'button', class: 'danger' }, confirm);
    const no = h('button', { type: 'button' }, 'Keep things as they are');
    const d = h('dialog', { 'aria-labelledby': 'dialog-title', 'aria-describedby': 'dialog-body', class: 'dialog' },
      h('h2', { id: 'dialog-title' }, title),
      h('div', { id: 'dialog-body' }, body),
      field && h('p', {}, h('label', { for: 'dialog-field' }, field), input),
      error,
      h('div', { class: 'buttons' }, ok, no));
    let result = null;
    const accept = () => {
      if (input && !input.value.trim()) {
        error.hidden = false;
        error.textContent = `${field} is required.`;
        input.focus();
        return;
      }
      result = input ? input.value.trim() : true;
      d.close();
    };
    ok.addEventListener('click', accept);
    no.addEventListener('click', () => d.close());
    input?.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') accept();
    });
    // Escape closes a modal <dialog> natively; both ways end here.
    d.addEventListener('close', () => {
      d.remove();
      resolve(result);
    });
    document.body.append(d);
    d.showModal();
    (input || no).focus();
  });
}
