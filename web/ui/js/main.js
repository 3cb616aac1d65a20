// The dashboard's entry point: a hash router (#/, #/apps/NAME,
// #/deployments/ID) so that baton serves one page and the browser's back
// button works.

import { Scope } from './live.js';
import { h, tickAges } from './dom.js';
import { renderOverview } from './overview.js';
import { renderApp } from './app.js';
import { renderDeployment } from './deployment.js';
import { initLogin } from './login.js';

const routes = [
  [/^#?\/?$/, renderOverview],
  [/^#\/apps\/([^/]+)$/, renderApp],
  [/^#\/deployments\/([^/]+)$/, renderDeployment],
];

let current = null;

function notFound(main, hash) {
  document.title = 'Not found · baton';
  main.append(h('h1', { tabindex: -1 }, 'Not found'),
    h('p', {}, 'The dashboard has no page ', h('code', {}, hash), '. ', h('a', { href: '#/' }, 'See all apps'), '.'));
}

function route(first) {
  const hash = location.hash;
  current?.dispose();
  current = new Scope();
  const main = document.getElementById('main');
  main.replaceChildren();
  let shown = false;
  for (const [re, render] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    let args;
    try {
      args = m.slice(1).map(decodeURIComponent);
    } catch {
      break; // a malformed %-escape: not a page
    }
    render(main, current, ...args);
    shown = true;
    break;
  }
  if (!shown) notFound(main, hash);
  // After a navigation, screen readers and keyboards start at the new
  // page's heading, as they would after a page load.
  if (!first) main.querySelector('h1')?.focus();
}

addEventListener('hashchange', () => route(false));
initLogin(() => route(false));
document.querySelector('.skip')?.addEventListener('click', (ev) => {
  // The skip link must not become a route.
  ev.preventDefault();
  document.getElementById('main').focus();
});
setInterval(tickAges, 1000);
route(true);
