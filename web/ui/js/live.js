// Keeping pages current: a Scope owns what a page started (timers, event
// streams) and ends it when the user leaves the page; a refresher reloads a
// page's data one load at a time; a Watcher follows running operations'
// event streams so a page refreshes the moment one changes phase or ends.

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

// maxWatched bounds the streams a page holds open. Browsers allow about
// six HTTP/1.1 connections per host across all tabs; long-lived streams
// beyond that would stall every other request to baton.
const maxWatched = 2;

// Watcher keeps a log stream open for each of a few running operations and
// calls onChange when one reports a state or phase change.
export class Watcher {
  constructor(scope, onChange) {
    this.onChange = onChange;
    this.streams = new Map();
    this.ended = new Set();
    scope.onDispose(() => this.sync([]));
    // A hidden tab gives its connections back; the next refresh reopens.
    scope.listen(document, 'visibilitychange', () => {
      if (document.hidden) this.sync([]);
    });
  }

  // sync follows exactly the given operation ids (the first few of them).
  sync(ids) {
    const want = new Set(document.hidden ? [] : ids.filter((id) => !this.ended.has(id)).slice(0, maxWatched));
    for (const [id, es] of this.streams) {
      if (!want.has(id)) {
        es.close();
        this.streams.delete(id);
      }
    }
    for (const id of want) {
      if (this.streams.has(id)) continue;
      const es = openStream(`/deployments/${encodeURIComponent(id)}/log`);
      let first = true;
      es.addEventListener('deployment', () => {
        // The first event repeats the state the page was just loaded with.
        if (!first) this.onChange();
        first = false;
      });
      es.addEventListener('end', () => {
        // The server closes the stream after "end"; without close() the
        // stream would reconnect and receive it all again.
        es.close();
        this.streams.delete(id);
        this.ended.add(id);
        this.onChange();
      });
      es.addEventListener('error', () => {
        // A refusal (a problem answer) closes the stream; the next sync
        // may try again. Drops reconnect by themselves.
        if (es.closed) this.streams.delete(id);
      });
      this.streams.set(id, es);
    }
  }
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
