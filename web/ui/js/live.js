// Keeping pages current: a Scope owns what a page started (timers, event
// streams) and ends it when the user leaves the page; a refresher reloads a
// page's data one load at a time. The pages themselves follow the event
// streams (GET /api/v1/events, /api/v1/apps/{app}/events).

import { openStream } from './api.js';
import { fmtClock } from './dom.js';

// Scope is the lifetime of one page view.
export class Scope {
  constructor() {
    this.alive = true;
    this.cleanups = [];
  }

  // onDispose registers fn to run when the page is left.
  onDispose(fn) {
    this.cleanups.push(fn);
  }

  dispose() {
    this.alive = false;
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        fn();
      } catch (e) {
        console.warn('cleanup', e);
      }
    }
  }

  // every runs fn every ms while the tab is visible: a hidden tab does
  // not poll baton.
  every(ms, fn) {
    const t = setInterval(() => {
      if (!document.hidden) fn();
    }, ms);
    this.onDispose(() => clearInterval(t));
  }

  // listen adds an event listener for the page's lifetime.
  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.onDispose(() => target.removeEventListener(type, fn));
  }
}

// refresher wraps load so that calls never overlap: a call during a load
// makes one more load run after it. Its .soon() coalesces bursts of events.
export function refresher(scope, load) {
  let running = null;
  let again = false;
  let timer = 0;
  const run = async () => {
    if (!scope.alive) return;
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        await load();
      } finally {
        running = null;
      }
    })();
    await running;
    if (again && scope.alive) {
      again = false;
      await run();
    }
  };
  run.soon = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 100);
  };
  scope.onDispose(() => clearTimeout(timer));
  scope.listen(document, 'visibilitychange', () => {
    if (!document.hidden) run();
  });
  return run;
}

// eventTypes are the events of the app event streams (api/events.go).
export const eventTypes = ['status', 'deployment', 'routing', 'health', 'placement', 'conflicts', 'freeze'];

// follow keeps an app event stream (p under /api/v1) open while the page
// lives and the tab is visible, calling onEvent with each event's decoded
// data and onState with 'open', 'reconnecting' or 'closed' (and the
// error). A hidden tab gives its connection back (browsers allow about six
// per host across all tabs) and resumes with Last-Event-ID when shown.
export function follow(scope, p, onEvent, onState) {
  let es = null;
  let last = '';
  const open = () => {
    const s = openStream(p, last);
    es = s;
    for (const type of eventTypes) {
      s.addEventListener(type, (ev) => {
        last = s.lastEventId;
        onEvent(JSON.parse(ev.data));
      });
    }
    s.addEventListener('open', () => onState('open'));
    s.addEventListener('error', (ev) => onState(s.closed ? 'closed' : 'reconnecting', ev.error));
  };
  const close = () => {
    es?.close();
    es = null;
  };
  scope.onDispose(close);
  scope.listen(document, 'visibilitychange', () => {
    if (document.hidden) close();
    else if (!es) open();
  });
  if (!document.hidden) open();
}

// markFresh tells the user when the page's data was last loaded, or that
// the last attempt failed.
export function markFresh(ok) {
  const el = document.getElementById('freshness');
  if (!el) return;
  const t = fmtClock(new Date());
  el.textContent = ok ? `Updated ${t}` : `Update failed at ${t}; showing older data`;
  el.classList.toggle('stale', !ok);
}
