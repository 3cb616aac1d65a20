// Every call the dashboard makes to baton goes through this file, so that
// authentication lives in one place: the access token the user signed in
// with (kept in this tab's sessionStorage only) goes into authHeaders.

// ApiError is a failed call, carrying the RFC 9457 problem baton answered
// (or one made up for a network failure).
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

const tokenKey = 'baton.token';

// token is the access token of this tab, '' when signed out.
export function token() {
  try {
    return sessionStorage.getItem(tokenKey) || '';
  } catch {
    return ''; // storage disabled: no token can be kept
  }
}

// setToken keeps t for this tab ('' forgets it). sessionStorage, not
// localStorage: the token ends with the tab and is not shared with others.
export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(tokenKey, t);
    else sessionStorage.removeItem(tokenKey);
  } catch {
    // Storage disabled: the token lasts as long as nothing.
  }
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// unauthorized reports a 401 to the sign-in form (login.js). A token that
// was refused is forgotten: polling with it would count as failed logins
// and get this address rate-limited.
function unauthorized(err, sent) {
  if (sent) setToken('');
  dispatchEvent(new CustomEvent('baton:unauthorized', { detail: { err, sent } }));
}

// serverSkew is the server clock minus ours, from the Date header, so ages
// ("running for 12s") are right even when the browser's clock is off.
let serverSkew = 0;

// now is the current time by the server's clock, in milliseconds.
export function now() {
  return Date.now() + serverSkew;
}

function noteServerDate(res) {
  const d = Date.parse(res.headers.get('Date') || '');
  if (Number.isNaN(d)) return;
  const skew = d - Date.now();
  // The header has whole seconds: ignore what that rounding explains.
  serverSkew = Math.abs(skew) > 2000 ? skew : 0;
}

// path builds an API path with every substituted value URL-encoded:
// path`/apps/${app}/status`.
export function path(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i]) : ''), '');
}

function networkError(e) {
  return new ApiError(0, { title: 'Network error', detail: `baton does not answer (${e.message}); is baton serve running?` });
}

// errorOf reads the problem of a failed response.
async function errorOf(res, what) {
  let problem = { title: res.statusText, status: res.status, detail: `${what} answered HTTP ${res.status}` };
  try {
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      problem = await res.json();
    } else {
      const text = (await res.text()).trim();
      if (text) problem.detail = text.slice(0, 500);
    }
  } catch {
    // Keep the made-up problem: the status line is all we know.
  }
  return new ApiError(res.status, problem);
}

// api calls /api/v1 + p and returns the decoded JSON answer, or throws an
// ApiError whose message is the problem's detail.
export async function api(method, p, body) {
  const auth = authHeaders();
  const headers = { Accept: 'application/json', ...auth };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/v1' + p, init);
  } catch (e) {
    throw networkError(e);
  }
  noteServerDate(res);
  if (!res.ok) {
    const err = await errorOf(res, `${method} ${p}`);
    if (res.status === 401) unauthorized(err, 'Authorization' in auth);
    throw err;
  }
  if (res.status === 204) return null;
  return (res.headers.get('Content-Type') || '').includes('json') ? res.json() : res.text();
}

// get and post are api with the method filled in.
export const get = (p) => api('GET', p);
export const post = (p, body) => api('POST', p, body);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// EventStream reads a Server-Sent Events stream like EventSource does
// (events "open", "error" and each named event as a MessageEvent, resuming
// with Last-Event-ID after a drop), but over fetch: EventSource cannot
// send the Authorization header.
export class EventStream extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  // lastEventId resumes a stream an earlier EventStream followed.
  constructor(url, lastEventId = '') {
    super();
    this.url = url;
    this.readyState = EventStream.CONNECTING;
    this.lastEventId = lastEventId;
    this.retry = 1000;
    this.abort = null;
    this.run();
  }

  close() {
    this.readyState = EventStream.CLOSED;
    this.abort?.abort();
  }

  get closed() {
    return this.readyState === EventStream.CLOSED;
  }

  // fail reports an error; final ones (an HTTP problem) close the stream.
  fail(err, final) {
    if (final) this.readyState = EventStream.CLOSED;
    else if (!this.closed) this.readyState = EventStream.CONNECTING;
    const ev = new Event('error');
    ev.error = err;
    this.dispatchEvent(ev);
  }

  async run() {
    while (!this.closed) {
      this.abort = new AbortController();
      const auth = authHeaders();
      const headers = { Accept: 'text/event-stream', ...auth };
      if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
      let res;
      try {
        res = await fetch(this.url, { headers, cache: 'no-store', signal: this.abort.signal });
      } catch (e) {
        if (this.closed) return;
        this.fail(networkError(e), false);
        await sleep(this.retry);
        continue;
      }
      if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
        const err = await errorOf(res, `GET ${this.url}`);
        if (res.status === 401) unauthorized(err, 'Authorization' in auth);
        this.fail(err, true);
        return;
      }
      this.readyState = EventStream.OPEN;
      this.dispatchEvent(new Event('open'));
      try {
        await this.read(res.body);
      } catch (e) {
        if (this.closed) return;
        this.fail(networkError(e), false);
        await sleep(this.retry);
        continue;
      }
      if (this.closed) return;
      // The server ended the stream without an "end" (a restart): resume.
      this.fail(new ApiError(0, { detail: 'the stream ended' }), false);
      await sleep(this.retry);
    }
  }

  // read parses the stream: "field: value" lines, events end at a blank
  // line (https://html.spec.whatwg.org/multipage/server-sent-events.html).
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let type = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.closed) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length) {
            this.dispatchEvent(new MessageEvent(type || 'message', { data: data.join('\n'), lastEventId: this.lastEventId }));
          }
          type = '';
          data = [];
          if (this.closed) return;
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: keepalive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id' && !val.includes('\0')) this.lastEventId = val;
        else if (field === 'retry' && /^\d+$/.test(val)) this.retry = Number(val);
      }
    }
  }
}

// openStream follows an SSE endpoint under /api/v1, resuming after
// lastEventId when given.
export function openStream(p, lastEventId = '') {
  return new EventStream('/api/v1' + p, lastEventId);
}

// put and del are api with the method filled in.
export const put = (p, body) => api('PUT', p, body);
export const del = (p) => api('DELETE', p);

let whoamiCache = null;

// whoami is the token this tab signed in with ({name, scope, apps}),
// asked once per token.
export async function whoami() {
  const t = token();
  if (whoamiCache?.token !== t) whoamiCache = { token: t, answer: get('/whoami') };
  try {
    return await whoamiCache.answer;
  } catch (e) {
    whoamiCache = null;
    throw e;
  }
}

const scopeRank = { read: 1, deploy: 2, admin: 3 };

// allows says whether a whoami answer may call routes needing scope on app,
// the rule the API applies (api/auth.go); the API refuses anyway.
export function allows(who, scope, app) {
  if (!who || (scopeRank[who.scope] || 0) < scopeRank[scope]) return false;
  if (who.scope === 'deploy' && who.apps?.length && !who.apps.includes(app)) return false;
  return true;
}

// upload POSTs body (a Blob) to /api/v1 + p with XMLHttpRequest, which,
// unlike fetch, reports the upload's progress: onProgress(sent, total).
export function upload(p, body, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1' + p);
    const auth = authHeaders();
    for (const [k, v] of Object.entries({ Accept: 'application/json', 'Content-Type': contentType, ...auth })) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : body.size));
    xhr.addEventListener('error', () => reject(networkError(new Error('the upload broke off'))));
    xhr.addEventListener('abort', () => reject(networkError(new Error('the upload was aborted'))));
    xhr.addEventListener('load', () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // Not JSON: the status line is all we know.
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(answer);
        return;
      }
      const err = new ApiError(xhr.status, answer || { detail: `POST ${p} answered HTTP ${xhr.status}` });
      if (xhr.status === 401) unauthorized(err, 'Authorization' in auth);
      reject(err);
    });
    xhr.send(body);
  });
}
