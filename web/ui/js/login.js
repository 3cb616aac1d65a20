// Signing in: when baton answers 401, a form asks for an access token,
// which api.js keeps for this tab only. The header names the token in use
// and offers to forget it.

import { get, token, setToken } from './api.js';
import { h } from './dom.js';

// initLogin wires the sign-in form and the header; reload re-renders the
// current page after the token changed.
export function initLogin(reload) {
  const box = document.getElementById('login');
  const who = document.getElementById('who');
  const why = h('p', { id: 'login-why', class: 'problem' });
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'login-why login-help' });
  // A refused token's reason stays until the next attempt: the polls that
  // follow, sent without a token, would replace it with a vaguer one.
  let refused = false;

  const submit = () => {
    const t = input.value.trim();
    if (!t) {
      input.focus();
      return;
    }
    setToken(t);
    input.value = '';
    refused = false;
    box.hidden = true;
    reload();
    showWho();
  };
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') submit();
  });
  box.replaceChildren(
    h('h2', { id: 'login-title' }, 'Sign in to baton'),
    why,
    h('p', { id: 'login-help', class: 'muted' }, 'Paste an access token. The admin token is the file ', h('code', {}, 'admin.token'),
      ' in the data directory of ', h('code', {}, 'baton serve'), '; ', h('code', {}, 'baton tokens create'),
      ' makes tokens with fewer rights. The token is kept in this browser tab only, until the tab closes.'),
    h('p', { class: 'login-row' }, h('label', { for: 'token' }, 'Access token'), input,
      h('button', { type: 'button', class: 'primary', onclick: submit }, 'Sign in')));

  addEventListener('baton:unauthorized', (ev) => {
    const { err, sent } = ev.detail;
    if (!refused || sent) why.textContent = err.message;
    refused = refused || sent;
    who.replaceChildren();
    if (box.hidden) {
      box.hidden = false;
      input.focus();
    }
  });

  async function showWho() {
    if (!token()) {
      who.replaceChildren();
      return;
    }
    try {
      const t = await get('/whoami');
      who.replaceChildren(h('span', { class: 'muted' }, 'Signed in as ', h('strong', { 'data-token': t.name }, t.name), ` (${t.scope})`), ' ',
        h('button', { type: 'button', class: 'small', onclick: signOut }, 'Forget token'));
    } catch {
      // A 401 opens the form; anything else shows on the page itself.
    }
  }

  function signOut() {
    setToken('');
    who.replaceChildren();
    reload();
  }

  showWho();
}
