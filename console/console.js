// gigmesh live actor inspection console (GET /console).
// Plain script, no build step: the node serves this file as it is.
// Live figures and events come from one WebSocket subscribed to system:inspect;
// REST is read only on navigation, on a user's action, or when an event says
// something changed, and then at most once a second per view.
'use strict';

const TOPIC = 'system:inspect';
const SESSION_KEY = 'gigmesh.console.session';
const FLASH_KEY = 'gigmesh.console.flash';
const PAGE_SIZE = 50;
const SORT_WORDS = { mailbox: 'deepest mailbox', messages: 'most messages', restarts: 'most restarts', idle: 'longest idle' };
const CHART_WINDOW_MS = 10 * 60 * 1000;
const CHART_MAX_POINTS = 600;
const EVENTS_KEPT = 200;
const KILL_WATCH_MS = 6000; // how long after a kill the page keeps looking for the restart
const CONSOLE_CLIENT = { 'X-Gigmesh-Client': 'console' };

// ---------------------------------------------------------------- helpers

const $ = (sel) => document.querySelector(sel);

/** Builds an element; text always goes in as text, never as HTML. */
function el(tag, props = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...kids.flat().filter((k) => k != null && k !== false).map((k) => (k instanceof Node ? k : String(k))));
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

/**
 * Runs fn at most once per `ms`: the first call at once, calls during the
 * pause folded into one call at its end (so the last change is never lost).
 */
function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      clearTimeout(timer);
      timer = null;
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
    }
  };
}

/** Returns a function that hands out tickets; only the newest ticket is current. */
function latestOnly() {
  let n = 0;
  return () => { const mine = ++n; return () => mine === n; };
}

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const rateFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const dash = '—';

function fmtInt(n) { return n == null ? dash : intFormat.format(n); }
function fmtRate(n) { return n == null ? dash : rateFormat.format(n); }
function fmtMs(n) { return n == null ? dash : `${rateFormat.format(n)} ms`; }

function fmtDuration(ms) {
  if (ms == null) return dash;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Times arrive as ISO strings or epoch numbers (seconds or milliseconds). */
function toDate(v) {
  if (v == null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v > 1e12 ? v : v * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function fmtTime(v) {
  const d = toDate(v);
  return d ? `${d.toLocaleDateString('en-CA')} ${d.toLocaleTimeString('en-GB')}` : (v == null ? dash : String(v));
}

function fmtClock(v) {
  const d = toDate(v) || new Date();
  return d.toLocaleTimeString('en-GB');
}

function badge(text, kind) { return el('span', { class: `badge ${kind || ''}` }, text); }

function statusBadge(status) {
  const good = ['up', 'running', 'active', 'live'].includes(status);
  return badge(status || dash, good ? 'ok' : status === 'down' ? 'bad' : '');
}

function actorHash(type, id) { return `#actor=${type}:${encodeURIComponent(id)}`; }
function actorLink(type, id) { return el('a', { href: actorHash(type, id) }, `${type}:${id}`); }

function setText(sel, text) { $(sel).textContent = text; }

/**
 * Marks a button unavailable with aria-disabled rather than `disabled`, which
 * would throw keyboard focus off the button just pressed.
 */
function setAvailable(button, on) { button.setAttribute('aria-disabled', String(!on)); }
function isAvailable(button) { return button.getAttribute('aria-disabled') !== 'true'; }

// ---------------------------------------------------------------- errors

/** An API failure, carrying the problem+json body's fields when there is one. */
class ApiError extends Error {
  constructor(status, title, detail) {
    super(status ? `${title} (${status}): ${detail}` : `${title}: ${detail}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

function showError(where, err) {
  const text = err instanceof ApiError ? err.message : `Unexpected error: ${err && err.message ? err.message : err}`;
  setText(where, text);
}

function clearError(where) { setText(where, ''); }

// ---------------------------------------------------------------- session and tokens

let session = null; // {access, refresh, user}
const auth = { timer: null, refreshing: null };

function saveSession() { sessionStorage.setItem(SESSION_KEY, JSON.stringify(session)); }

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    return s && s.access && s.refresh && s.user ? s : null;
  } catch {
    return null;
  }
}

/** The JWT's exp in milliseconds, or null if it cannot be read. */
function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

function expiresWithin(token, ms) {
  const exp = tokenExpiry(token);
  return exp != null && exp - Date.now() < ms;
}

/**
 * Exchanges the refresh token for new tokens. Single flight: the server
 * rotates refresh tokens and revokes the whole family if one is used twice,
 * so two concurrent refreshes would sign the admin out.
 */
function refreshTokens() {
  if (!auth.refreshing) auth.refreshing = doRefresh().finally(() => { auth.refreshing = null; });
  return auth.refreshing;
}

async function doRefresh() {
  let data;
  try {
    data = await api('/api/v1/auth/refresh', {
      method: 'POST', body: { refresh_token: session.refresh }, token: null, retry: false,
    });
  } catch (err) {
    if (err.status === 401) endSession(`Your session has ended (${err.detail}). Sign in again.`);
    throw err;
  }
  session.access = data.access_token;
  session.refresh = data.refresh_token;
  saveSession();
  scheduleRenewal();
  return session.access;
}

/** Renews the access token ahead of its expiry, then moves the socket onto it. */
function scheduleRenewal() {
  clearTimeout(auth.timer);
  const exp = tokenExpiry(session.access);
  const left = exp == null ? 10 * 60 * 1000 : exp - Date.now();
  const delay = Math.max(1000, left - Math.min(60 * 1000, left / 4));
  auth.timer = setTimeout(renewNow, delay);
}

function renewNow() {
  refreshTokens().then(() => {
    clearError('#app-error');
    reconnectLive();
  }, (err) => {
    if (!session) return;
    showError('#app-error', new ApiError(err.status, 'Could not renew the session', `${err.detail || err.message}; trying again in 10 s`));
    clearTimeout(auth.timer);
    auth.timer = setTimeout(renewNow, 10 * 1000);
  });
}

/** Forgets the session and starts over from the sign-in form, with a message (an error or a note). */
function endSession(message, isError = true) {
  stopLive();
  clearTimeout(auth.timer);
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.setItem(FLASH_KEY, JSON.stringify({ message, isError }));
  // A reload drops every view's state, so nothing of this session lingers.
  location.reload();
}

// ---------------------------------------------------------------- REST

async function readBody(res) {
  const text = await res.text();
  if (!text) return null;
  if (/json/.test(res.headers.get('Content-Type') || '')) {
    try { return JSON.parse(text); } catch { /* fall through: shown as text below */ }
  }
  return { detail: text.slice(0, 300) };
}

/**
 * Calls the API with the bearer token; on a 401 renews the token once and
 * tries again. Throws ApiError carrying the problem+json detail.
 */
async function api(path, { method = 'GET', body, headers = {}, token = session && session.access, retry = true } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'The node did not answer', err.message);
  }
  if (res.status === 401 && retry && session) {
    await refreshTokens();
    return api(path, { method, body, headers, retry: false });
  }
  const data = await readBody(res);
  if (!res.ok) {
    const p = data || {};
    throw new ApiError(res.status, p.title || res.statusText || 'Error', p.detail || 'no detail given');
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  return q.toString();
}

// ---------------------------------------------------------------- sign-in and sign-out

async function signIn(event) {
  event.preventDefault();
  const login = $('#signin-login').value.trim();
  const password = $('#signin-password').value;
  const button = $('#signin-button');
  if (!isAvailable(button)) return; // a sign-in is already under way
  clearError('#signin-error');
  setText('#signin-note', '');
  if (!login || !password) {
    setText('#signin-error', 'Enter your phone or email and your password.');
    return;
  }
  const body = login.includes('@') ? { email: login, password } : { phone: login, password };
  setAvailable(button, false);
  try {
    const data = await api('/api/v1/auth/login', { method: 'POST', body, token: null, retry: false });
    const role = data.user && data.user.role;
    if (role !== 'admin') {
      setText('#signin-error', `This console is for admins; ${role || 'these'} accounts cannot use it.`);
      revokeQuietly(data.refresh_token);
      return;
    }
    session = { access: data.access_token, refresh: data.refresh_token, user: data.user };
    saveSession();
    $('#signin-password').value = '';
    startApp();
  } catch (err) {
    // The server's own words when it answered; what went wrong on the way when it did not.
    setText('#signin-error', err instanceof ApiError && err.status ? err.detail : err.message);
  } finally {
    setAvailable(button, true);
  }
}

/** A refused (non-admin) sign-in leaves no live session behind. */
function revokeQuietly(refreshToken) {
  api('/api/v1/auth/logout', { method: 'POST', body: { refresh_token: refreshToken }, token: null, retry: false })
    .catch((err) => $('#signin-error').append(` (Ending that session failed too: ${err.message}.)`));
}

async function signOut() {
  stopLive();
  try {
    await api('/api/v1/auth/logout', { method: 'POST', body: { refresh_token: session.refresh }, token: null, retry: false });
    endSession('Signed out.', false);
  } catch (err) {
    endSession(`Signed out here, but the node could not revoke the session: ${err.message}`);
  }
}

function showSignIn() {
  $('#signin').hidden = false;
  try {
    const flash = JSON.parse(sessionStorage.getItem(FLASH_KEY));
    if (flash) setText(flash.isError ? '#signin-error' : '#signin-note', flash.message);
  } catch { /* no message left by the last session */ }
  sessionStorage.removeItem(FLASH_KEY);
  $('#signin-login').focus();
}

function startApp() {
  $('#signin').hidden = true;
  $('#nav').hidden = false;
  $('#session').hidden = false;
  const u = session.user;
  setText('#who', `${u.full_name || u.phone || u.email || u.id} (admin)`);
  scheduleRenewal();
  startLive();
  route();
}

// ---------------------------------------------------------------- live socket

const live = { ws: null, gen: 0, attempt: 0, timer: null, stopped: true, subscribedOnce: false, needToken: false, token: null };

function setConn(state, text) {
  const conn = $('#conn');
  conn.dataset.state = state;
  conn.textContent = text;
}

function startLive() {
  live.stopped = false;
  live.attempt = 0;
  openSocket();
}

function stopLive() {
  live.stopped = true;
  clearTimeout(live.timer);
  const ws = live.ws;
  live.ws = null;
  if (ws) ws.close(1000, 'console closed');
}

/** After a token renewal: a fresh socket authorised by the new token. */
function reconnectLive() {
  if (live.stopped) return;
  const old = live.ws;
  live.ws = null;
  if (old) old.close(1000, 'token renewed');
  live.attempt = 0;
  openSocket();
}

async function openSocket() {
  clearTimeout(live.timer);
  const gen = ++live.gen; // a later attempt supersedes this one
  setConn('connecting', live.attempt ? 'Reconnecting…' : 'Connecting…');
  // The upgrade answers a stale token with a bare close, so renew first when
  // the token is near its end or the last socket was refused with it.
  const stale = live.needToken && live.token === session.access;
  if (stale || expiresWithin(session.access, 10 * 1000)) {
    try {
      await refreshTokens();
    } catch (err) {
      if (!live.stopped && gen === live.gen) retryLive(`the session could not be renewed: ${err.message}`);
      return;
    }
  }
  if (live.stopped || gen !== live.gen) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  live.token = session.access;
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(live.token)}`);
  let opened = false;
  live.ws = ws;
  ws.onopen = () => {
    opened = true;
    live.needToken = false;
    setConn('connecting', `Subscribing to ${TOPIC}…`);
    ws.send(JSON.stringify({ op: 'subscribe', topic: TOPIC }));
  };
  ws.onmessage = (m) => { if (live.ws === ws) onFrame(m.data); };
  ws.onclose = (e) => {
    if (live.ws !== ws || live.stopped) return;
    live.ws = null;
    if (!opened) live.needToken = true;
    retryLive(`closed, code ${e.code}${e.reason ? `: ${e.reason}` : ''}`);
  };
}

/** Backs off 1, 2, 4 … 30 s between attempts. */
function retryLive(why) {
  const seconds = Math.min(30, 2 ** live.attempt);
  live.attempt += 1;
  setConn('down', `Live updates disconnected (${why}); retrying in ${seconds} s`);
  clearTimeout(live.timer);
  live.timer = setTimeout(openSocket, seconds * 1000);
}

function onFrame(text) {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    showError('#app-error', new Error(`the live socket sent something unreadable: ${String(text).slice(0, 120)}`));
    return;
  }
  if (msg.op === 'subscribed') {
    live.attempt = 0;
    setConn('up', 'Live');
    // Events were missed while disconnected: catch the current view up.
    if (live.subscribedOnce) refreshCurrentView();
    live.subscribedOnce = true;
  } else if (msg.op === 'error') {
    if (msg.status === 401) live.needToken = true; // the server closes next; the retry renews
    setConn('down', `Live updates refused: ${msg.detail || 'no detail'} (${msg.status})`);
  } else if (msg.event && msg.topic === TOPIC) {
    onLiveEvent(msg.event, msg.data || {});
  }
}

function onLiveEvent(name, data) {
  if (name === 'node.stats') {
    overview.onStats(data);
    return;
  }
  logEvent(name, data);
  if (name.startsWith('actor.')) {
    actorsView.onActorEvent();
    actorView.onActorEvent(name, data);
    if (touchesSupervision(name, data)) treeView.onChange();
  } else if (name === 'node.up' || name === 'node.down') {
    overview.onNodeEvent(name, data);
  } else if (name === 'audit.recorded') {
    auditView.onRecord(data);
  }
}

function touchesSupervision(name, data) {
  if (name === 'actor.crashed' || name === 'actor.restarted') return true;
  return name === 'actor.summary' && !!data.counts && ('actor.crashed' in data.counts || 'actor.restarted' in data.counts);
}

// ---------------------------------------------------------------- events log

function describeEvent(name, d) {
  if (name === 'actor.summary') {
    const parts = Object.entries(d.counts || {}).map(([ev, byType]) =>
      `${ev} ${Object.entries(byType).map(([t, n]) => `${t} ${fmtInt(n)}`).join(', ')}`);
    return [`${fmtInt(d.window_ms)} ms: ${parts.join('; ')}`];
  }
  if (name.startsWith('actor.')) {
    return [actorLink(d.type, d.id), ` on ${d.node || dash}, restarts ${d.restarts ?? dash}`, d.reason ? `: ${d.reason}` : ''];
  }
  if (name === 'node.up' || name === 'node.down') return [`${d.id} (${d.address || 'no address'})`];
  if (name === 'journal.error') return [d.error || dash];
  if (name === 'audit.recorded') {
    return [`${d.action} `, d.target, ` by ${d.user_id} via ${d.via}: ${d.result}`, d.detail ? ` (${d.detail})` : ''];
  }
  return [JSON.stringify(d)];
}

function logEvent(name, data) {
  const log = $('#events-log');
  const bad = ['actor.crashed', 'node.down', 'journal.error'].includes(name);
  log.prepend(el('li', { class: bad ? 'bad' : '' },
    el('time', {}, fmtClock(data.at)), ' ', el('code', {}, name), ' ', describeEvent(name, data)));
  while (log.children.length > EVENTS_KEPT) log.lastElementChild.remove();
}

// ---------------------------------------------------------------- overview

const CHARTS = [
  { key: 'messages', label: 'Messages/s', title: 'Messages handled per second', fmt: fmtRate },
  { key: 'requests', label: 'Requests/s', title: 'HTTP requests per second', fmt: fmtRate },
  { key: 'errors', label: 'Errors/s (5xx)', title: 'HTTP 5xx errors per second', fmt: fmtRate },
  { key: 'pending', label: 'Journal pending', title: 'Journal rows waiting to be written', fmt: fmtInt },
];
const CHART_W = 300;
const CHART_H = 64;

const overview = {
  stats: null,
  history: [], // {t, messages, requests, errors, pending}, one per node.stats
  nodes: new Map(), // id → node, from the cluster list and this node's figures

  init() {
    this.buildCharts();
    $('#cluster-refresh').addEventListener('click', () => this.loadCluster());
  },

  buildCharts() {
    for (const c of CHARTS) {
      const titleId = `chart-${c.key}-title`;
      const descId = `chart-${c.key}-desc`;
      const svg = svgEl('svg', {
        viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none', role: 'img',
        'aria-labelledby': `${titleId} ${descId}`, class: 'spark',
      });
      const title = svgEl('title', { id: titleId });
      title.textContent = `${c.title}, last 10 minutes`;
      c.desc = svgEl('desc', { id: descId });
      c.line = svgEl('polyline', { points: '', class: 'line' });
      svg.append(title, c.desc, svgEl('line', { x1: 0, y1: CHART_H - 1, x2: CHART_W, y2: CHART_H - 1, class: 'axis' }), c.line);
      c.value = el('strong', { 'data-testid': `chart-${c.key}-latest` }, dash);
      c.max = el('span', { class: 'muted' });
      $('#charts').append(el('figure', { class: 'chart' },
        el('figcaption', {}, el('span', {}, c.label), ' ', c.value, ' ', c.max), svg));
    }
  },

  open() {
    this.loadCluster();
    this.render();
  },

  refresh() { this.loadCluster(); },

  loadCluster: throttle(async () => {
    try {
      const data = await api('/api/v1/admin/cluster');
      for (const n of data.nodes || []) overview.nodes.set(n.id, { ...overview.nodes.get(n.id), ...n });
      clearError('#overview-error');
      setText('#cluster-at', `Addresses and heartbeats as read at ${fmtClock()}.`);
      if (!overview.stats && data.nodes && data.nodes.length === 1) setText('#node-id', data.nodes[0].id);
      overview.renderNodes();
    } catch (err) {
      showError('#overview-error', err);
    }
  }, 1000),

  onStats(s) {
    this.stats = s;
    const now = Date.now();
    this.history.push({
      t: now,
      messages: s.messages_per_s ?? 0,
      requests: (s.http && s.http.requests_per_s) ?? 0,
      errors: (s.http && s.http.errors_per_s) ?? 0,
      pending: (s.journal && s.journal.pending) ?? 0,
    });
    while (this.history.length > CHART_MAX_POINTS || (this.history.length && this.history[0].t < now - CHART_WINDOW_MS)) {
      this.history.shift();
    }
    if (s.node && s.node.id) {
      this.nodes.set(s.node.id, { ...this.nodes.get(s.node.id), ...s.node, actors: s.actors_total, self: true });
    }
    if (currentView === 'overview') this.render();
  },

  onNodeEvent(name, d) {
    const known = this.nodes.get(d.id) || { id: d.id };
    this.nodes.set(d.id, { ...known, address: d.address || known.address, status: name === 'node.up' ? 'up' : 'down' });
    if (currentView === 'overview') {
      this.renderNodes();
      this.loadCluster(); // heartbeats and incarnations changed too
    }
  },

  render() {
    const s = this.stats;
    this.renderNodes();
    if (!s) return;
    setText('#node-id', s.node ? s.node.id : dash);
    const uptime = s.node && s.node.uptime_s != null ? s.node.uptime_s * 1000 : null;
    setText('#stats-at', `· uptime ${fmtDuration(uptime)} · figures at ${fmtClock(s.at)}`);
    this.renderKinds(s);
    const j = s.journal || {};
    renderFacts('#journal-facts', [
      ['Pending rows', fmtInt(j.pending), 'journal-pending'],
      ['In flight', fmtInt(j.in_flight)],
      ['Last batch', `${fmtInt(j.last_batch_rows)} rows`, 'journal-batch'],
      ['Flush p50', fmtMs(j.flush_latency_ms_p50)],
      ['Flush p99', fmtMs(j.flush_latency_ms_p99)],
      ['Last error', j.last_error || 'none', 'journal-last-error', !!j.last_error],
    ]);
    const h = s.http || {};
    const w = s.ws || {};
    const rate = h.requests_per_s > 0 ? `${rateFormat.format((100 * (h.errors_per_s || 0)) / h.requests_per_s)} %` : dash;
    renderFacts('#traffic-facts', [
      ['Requests/s', fmtRate(h.requests_per_s), 'requests-per-s'],
      ['Errors/s (5xx)', fmtRate(h.errors_per_s), 'errors-per-s', h.errors_per_s > 0],
      ['Error rate', rate, 'error-rate'],
      ['WebSocket sessions', fmtInt(w.sessions), 'ws-sessions'],
      ['Subscriptions', fmtInt(w.subscriptions), 'ws-subscriptions'],
      ['Activations/s', fmtRate(s.activations_per_s)],
    ]);
    for (const c of CHARTS) this.drawChart(c);
  },

  renderNodes() {
    const rows = [...this.nodes.values()].sort((a, b) => String(a.id).localeCompare(String(b.id))).map((n) => {
      const started = toDate(n.started_at);
      const uptimeMs = n.uptime_s != null ? n.uptime_s * 1000 : started ? Date.now() - started.getTime() : null;
      return el('tr', {},
        el('td', {}, el('code', {}, n.id), n.self ? ' (this node)' : ''),
        el('td', {}, n.address || dash),
        el('td', {}, statusBadge(n.status)),
        el('td', {}, fmtDuration(uptimeMs)),
        el('td', {}, n.last_heartbeat ? el('time', { datetime: n.last_heartbeat }, fmtTime(n.last_heartbeat)) : dash),
        el('td', { class: 'num' }, fmtInt(n.actors)));
    });
    fillBody('#nodes-body', rows, 6, 'No nodes known yet.');
  },

  renderKinds(s) {
    const live = s.actors_by_type || {};
    const rates = s.messages_per_s_by_type || {};
    const restarts = s.restarts_by_type || {};
    const types = [...new Set([...Object.keys(live), ...Object.keys(rates), ...Object.keys(restarts)])]
      .sort((a, b) => (live[b] || 0) - (live[a] || 0) || a.localeCompare(b));
    // Counts with a data-testid stay bare digits so a test can read them as numbers.
    fillBody('#kinds-body', types.map((t) => el('tr', {},
      el('th', { scope: 'row' }, t),
      el('td', { class: 'num', 'data-testid': `count-${t}` }, String(live[t] || 0)),
      el('td', { class: 'num' }, fmtRate(rates[t] || 0)),
      el('td', { class: 'num' }, fmtInt(restarts[t] || 0)))), 4, 'No live actors.');
    $('#kinds-foot').replaceChildren(el('tr', {},
      el('th', { scope: 'row' }, 'All'),
      el('td', { class: 'num', 'data-testid': 'count-total' }, String(s.actors_total ?? 0)),
      el('td', { class: 'num' }, fmtRate(s.messages_per_s)),
      el('td', {}, '')));
  },

  drawChart(c) {
    const from = Date.now() - CHART_WINDOW_MS;
    const points = this.history.filter((p) => p.t >= from);
    const max = Math.max(0, ...points.map((p) => p[c.key]));
    const scale = max || 1; // all zeros: a flat line along the bottom
    c.line.setAttribute('points', points.map((p) => {
      const x = ((p.t - from) / CHART_WINDOW_MS) * CHART_W;
      const y = CHART_H - 2 - (p[c.key] / scale) * (CHART_H - 6);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(' '));
    const latest = points.length ? points[points.length - 1][c.key] : null;
    c.value.textContent = c.fmt(latest);
    c.max.textContent = `(max ${c.fmt(max)})`;
    c.desc.textContent = `Latest ${c.fmt(latest)}, highest ${c.fmt(max)}, over ${points.length} seconds of figures.`;
  },
};

function renderFacts(sel, facts) {
  $(sel).replaceChildren(...facts.flatMap(([label, value, testid, alarm]) => [
    el('dt', {}, label),
    el('dd', { 'data-testid': testid, class: alarm ? 'bad' : null }, value),
  ]));
}

function fillBody(sel, rows, columns, emptyText) {
  $(sel).replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: columns, class: 'empty' }, emptyText))]));
}

// ---------------------------------------------------------------- pager (cursor stack)

/** Previous/Next over opaque cursors: the cursor of every page seen is kept. */
function makePager(prefix, load) {
  const p = { cursors: [null], index: 0, next: null };
  const prev = $(`#${prefix}-prev`);
  const next = $(`#${prefix}-next`);
  p.cursor = () => p.cursors[p.index];
  p.reset = () => { p.cursors = [null]; p.index = 0; p.next = null; };
  p.update = (nextCursor) => {
    p.next = nextCursor || null;
    setAvailable(prev, p.index > 0);
    setAvailable(next, !!p.next);
    setText(`#${prefix}-page`, `Page ${p.index + 1}`);
  };
  prev.addEventListener('click', () => {
    if (p.index === 0) return;
    p.index -= 1;
    p.update(null); // until the page arrives, Next has no cursor to follow
    load();
  });
  next.addEventListener('click', () => {
    if (!p.next) return;
    p.cursors.length = p.index + 1;
    p.cursors.push(p.next);
    p.index += 1;
    p.update(null);
    load();
  });
  return p;
}

// ---------------------------------------------------------------- actors list

const actorsView = {
  filterKey: null,
  kinds: '',
  ticket: latestOnly(),

  init() {
    this.pager = makePager('actors', this.load);
    $('#actors-form').addEventListener('submit', (e) => { e.preventDefault(); this.applyFilters(); });
    $('#actors-kind').addEventListener('change', () => this.applyFilters());
    $('#actors-sort').addEventListener('change', () => this.applyFilters());
    $('#actors-node').addEventListener('change', () => this.applyFilters());
    $('#actors-body').addEventListener('click', (e) => {
      const row = e.target.closest('tr[data-key]');
      if (row && !e.target.closest('a')) location.hash = row.dataset.hash;
    });
  },

  filters() {
    return { type: $('#actors-kind').value, node: $('#actors-node').value.trim(), sort: $('#actors-sort').value };
  },

  /** A change of filters starts again from the first page; Refresh keeps the page. */
  applyFilters() {
    const key = JSON.stringify(this.filters());
    if (key !== this.filterKey) this.pager.reset();
    this.load();
  },

  open() { this.load(); },
  refresh() { this.load(); },

  // Actor events may come by the thousand: the list follows them every 2 s at most.
  onActorEvent: throttle(() => { if (currentView === 'actors') actorsView.load(); }, 2000),

  load: throttle(async () => {
    const v = actorsView;
    const f = v.filters();
    const isCurrent = v.ticket();
    try {
      const data = await api(`/api/v1/admin/actors?${query({ ...f, limit: PAGE_SIZE, cursor: v.pager.cursor() })}`);
      if (!isCurrent()) return;
      v.filterKey = JSON.stringify(f);
      clearError('#actors-error');
      v.render(data, f);
    } catch (err) {
      if (isCurrent()) showError('#actors-error', err);
    }
  }, 1000),

  render(data, f) {
    this.fillKinds(data.counts_by_type || {}, f.type);
    const items = data.items || [];
    const first = this.pager.index * PAGE_SIZE;
    setText('#actors-summary', items.length
      ? `Showing ${fmtInt(first + 1)}–${fmtInt(first + items.length)} of ${fmtInt(data.total)} live actors, ${SORT_WORDS[f.sort] || f.sort} first.`
      : `No live actors match (${fmtInt(data.total)} in all).`);
    for (const th of document.querySelectorAll('#view-actors th[data-sort]')) {
      if (th.dataset.sort === f.sort) th.setAttribute('aria-sort', 'descending');
      else th.removeAttribute('aria-sort');
    }
    fillBody('#actors-body', items.map((a) => el('tr', { 'data-key': `${a.type}:${a.id}`, 'data-hash': actorHash(a.type, a.id) },
      el('td', {}, a.type),
      el('td', { class: 'id' }, el('a', { href: actorHash(a.type, a.id) }, a.id)),
      el('td', {}, a.node || dash),
      el('td', {}, statusBadge(a.status)),
      el('td', { class: 'num' }, fmtInt(a.version)),
      el('td', { class: 'num' }, fmtInt(a.mailbox)),
      el('td', { class: 'num' }, fmtInt(a.messages)),
      el('td', { class: 'num' }, fmtInt(a.restarts)),
      el('td', { class: 'num' }, fmtDuration(a.idle_ms)))), 9, 'No live actors match these filters.');
    this.pager.update(data.next_cursor);
  },

  /**
   * The kind filter offers the kinds the node reports, keeping the choice.
   * Rebuilt only when the set of kinds changes, so an open select stays put.
   */
  fillKinds(counts, selected) {
    const types = Object.keys(counts).sort();
    if (selected && !types.includes(selected)) types.push(selected);
    if (types.join() === this.kinds) return;
    this.kinds = types.join();
    const select = $('#actors-kind');
    select.replaceChildren(el('option', { value: '' }, 'All kinds'), ...types.map((t) => el('option', { value: t }, t)));
    select.value = selected;
  },
};

// ---------------------------------------------------------------- one actor

const actorView = {
  cur: null, // {type, id, key, data, fetchedAt, killedAt, restartsBefore, eventRestarts, eventAt}
  ticket: latestOnly(),

  init() {
    $('#actor-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = parseTarget($('#actor-q').value);
      if (!t) {
        setText('#actor-error', 'Write the actor as kind:id, for example wallet:<user id>.');
        return;
      }
      const hash = actorHash(t.type, t.id);
      if (location.hash === hash) route(); else location.hash = hash;
    });
    // While one action is on its way the buttons are unavailable (aria-disabled).
    $('#actor-passivate').addEventListener('click', (e) => { if (isAvailable(e.currentTarget)) this.passivate(); });
    $('#actor-kill').addEventListener('click', (e) => { if (isAvailable(e.currentTarget)) this.kill(); });
  },

  open(arg) {
    const t = arg ? parseTarget(arg) : null;
    if (arg && !t) {
      setText('#actor-error', `"${arg}" is not kind:id, for example wallet:<user id>.`);
      return;
    }
    if (t && (!this.cur || this.cur.key !== t.key)) {
      this.cur = { ...t, data: null, fetchedAt: 0, killedAt: 0, restartsBefore: null, eventRestarts: null, eventAt: 0 };
      $('#actor-detail').hidden = true;
      setText('#actor-outcome', '');
      setText('#actor-notice', `Opening ${t.key}…`);
    }
    clearError('#actor-error');
    if (!this.cur) {
      setText('#actor-notice', 'Search for an actor by kind and id, or pick one in Actors.');
      return;
    }
    $('#actor-q').value = this.cur.key;
    this.load();
  },

  refresh() { if (this.cur) this.load(); },

  onActorEvent(name, d) {
    const c = this.cur;
    if (!c || currentView !== 'actor') return;
    if (name === 'actor.summary') {
      if (Object.values(d.counts || {}).some((byType) => byType && byType[c.type])) this.load();
      return;
    }
    if (d.type !== c.type || String(d.id) !== c.id) return;
    // The event carries the restart count: show it at once, the fetch follows.
    if (typeof d.restarts === 'number') {
      c.eventRestarts = d.restarts;
      c.eventAt = Date.now();
      if (c.data) setText('#actor-restarts', String(d.restarts));
    }
    this.load();
  },

  path() { return `/api/v1/admin/actors/${encodeURIComponent(this.cur.type)}/${encodeURIComponent(this.cur.id)}`; },

  load: throttle(async () => {
    const v = actorView;
    const c = v.cur;
    if (!c) return;
    const isCurrent = v.ticket();
    const askedAt = Date.now();
    try {
      const data = await api(v.path());
      if (!isCurrent() || c !== v.cur) return;
      // An answer to a request sent before the last event is older than that event.
      if (c.eventAt > askedAt) data.restarts = c.eventRestarts;
      c.data = data;
      c.fetchedAt = askedAt;
      clearError('#actor-error');
      setText('#actor-notice', '');
      v.render(c);
    } catch (err) {
      if (!isCurrent() || c !== v.cur) return;
      if (err.status === 404) {
        setText('#actor-notice', `${c.key} is not live on this node${c.data ? '; what is shown below is how it was last seen' : ''}.`);
        $('#actor-detail').classList.toggle('stale', !!c.data);
      } else {
        showError('#actor-error', err);
      }
    }
    v.watchKill(c);
  }, 1000),

  /** After a kill the actor may be briefly not live: look again until its restart shows. */
  watchKill(c) {
    if (!c.killedAt) return;
    const fresh = c.data && c.fetchedAt > c.killedAt;
    if (fresh && (c.restartsBefore == null || c.data.restarts > c.restartsBefore)) {
      setText('#actor-outcome', `Restarted by its supervisor: restarts ${c.restartsBefore ?? dash} → ${c.data.restarts}.`);
      c.killedAt = 0;
    } else if (Date.now() - c.killedAt < KILL_WATCH_MS) {
      setTimeout(() => { if (c === this.cur) this.load(); }, 1000);
    } else {
      setText('#actor-outcome', `Killed; no restart of ${c.key} seen after ${KILL_WATCH_MS / 1000} s.`);
      c.killedAt = 0;
    }
  },

  render(c) {
    const a = c.data;
    $('#actor-detail').hidden = false;
    $('#actor-detail').classList.remove('stale');
    setText('#actor-title', `${a.type}:${a.id}`);
    setText('#actor-type', a.type);
    setText('#actor-id', a.id);
    setText('#actor-node', a.node || dash);
    $('#actor-status').replaceChildren(statusBadge(a.status));
    setText('#actor-version', fmtInt(a.version));
    setText('#actor-mailbox', fmtInt(a.mailbox));
    setText('#actor-messages', fmtInt(a.messages));
    setText('#actor-restarts', String(a.restarts ?? dash));
    setText('#actor-idle', fmtDuration(a.idle_ms));
    setText('#actor-supervisor', a.supervisor || dash);
    setText('#actor-state', JSON.stringify(a.state ?? null, null, 2));
    this.renderLedger(a.ledger);
  },

  renderLedger(l) {
    $('#actor-ledger').hidden = !l;
    if (!l) return;
    setText('#ledger-balance', fmtInt(l.balance));
    setText('#ledger-entries-balance', fmtInt(l.entries_balance));
    setText('#ledger-escrow', fmtInt(l.escrow_balance));
    setText('#ledger-entries-escrow', fmtInt(l.entries_escrow));
    $('#ledger-row-balance').classList.toggle('bad', l.balance !== l.entries_balance);
    $('#ledger-row-escrow').classList.toggle('bad', l.escrow_balance !== l.entries_escrow);
    const flag = $('#ledger-check');
    flag.className = `flag ${l.agrees ? 'ok' : 'bad'}`;
    flag.textContent = l.agrees
      ? '✓ Ledger agrees: balance and escrow equal the sums of the ledger entries.'
      : '✗ Ledger DIFFERS: the wallet and the sums of its ledger entries do not match.';
  },

  async passivate() {
    await this.act('passivate', () => {
      setText('#actor-outcome', `Passivate accepted: ${this.cur.key} leaves memory.`);
      setTimeout(() => this.load(), 500);
    });
  },

  async kill() {
    const c = this.cur;
    if (!window.confirm(`Kill ${c.key}? Its supervisor restarts it; the kill is recorded in the audit.`)) {
      setText('#actor-outcome', 'Kill cancelled.');
      return;
    }
    await this.act('kill', () => {
      c.killedAt = Date.now();
      c.restartsBefore = c.data ? c.data.restarts : null;
      setText('#actor-outcome', `Kill accepted; waiting for the supervisor to restart ${c.key}…`);
      // Besides the crashed/restarted events, look again shortly in case they are missed.
      setTimeout(() => { if (c === this.cur) this.load(); }, 500);
      setTimeout(() => { if (c === this.cur) this.load(); }, 1500);
    });
  },

  /** Posts passivate or kill (marked as coming from the console) and reports the outcome. */
  async act(action, onAccepted) {
    const c = this.cur;
    if (!c) return;
    const buttons = [$('#actor-passivate'), $('#actor-kill')];
    buttons.forEach((b) => setAvailable(b, false));
    setText('#actor-outcome', `Sending ${action}…`);
    clearError('#actor-error');
    try {
      await api(`${this.path()}/${action}`, { method: 'POST', headers: CONSOLE_CLIENT });
      if (c === this.cur) onAccepted();
    } catch (err) {
      setText('#actor-outcome', `${action[0].toUpperCase()}${action.slice(1)} failed.`);
      if (err.status === 404) setText('#actor-notice', `${c.key} is not live on this node.`);
      showError('#actor-error', err);
    } finally {
      buttons.forEach((b) => setAvailable(b, true));
    }
  },
};

/** "wallet:abc" → {type, id, key}; the id may itself hold colons. */
function parseTarget(text) {
  const s = String(text).trim();
  const i = s.indexOf(':');
  if (i <= 0 || i === s.length - 1) return null;
  const type = s.slice(0, i).trim();
  const id = s.slice(i + 1).trim();
  return type && id ? { type, id, key: `${type}:${id}` } : null;
}

// ---------------------------------------------------------------- supervision tree

const treeView = {
  closed: new Set(), // supervisors the admin folded, kept folded across refreshes

  init() { $('#tree-refresh').addEventListener('click', () => this.load()); },
  open() { this.load(); },
  refresh() { this.load(); },
  onChange() { if (currentView === 'tree') this.load(); },

  load: throttle(async () => {
    try {
      const root = await api('/api/v1/admin/supervisors');
      clearError('#tree-error');
      $('#tree-root').replaceChildren(treeView.supervisor(root, ''));
      setText('#tree-at', `as of ${fmtClock()}`);
    } catch (err) {
      showError('#tree-error', err);
    }
  }, 1000),

  supervisor(sup, parentPath) {
    const path = `${parentPath}/${sup.name}`;
    const details = el('details', { open: !this.closed.has(path) },
      el('summary', {},
        el('strong', {}, sup.name), ' ', badge(sup.strategy || dash),
        el('span', { class: 'muted' }, ` at most ${fmtInt(sup.intensity)} restarts in ${fmtDuration(sup.period_ms)}`),
        ` · restarts ${fmtInt(sup.restarts)}`),
      el('ul', {}, (sup.children || []).map((ch) => this.child(ch, path))));
    details.addEventListener('toggle', () => {
      if (details.open) this.closed.delete(path); else this.closed.add(path);
    });
    return details;
  },

  child(ch, path) {
    return el('li', {},
      el('span', { class: 'name' }, ch.name), ' ',
      badge(ch.running ? 'running' : 'stopped', ch.running ? 'ok' : 'bad'),
      ` restarts ${fmtInt(ch.restarts)}`,
      ch.last_failure ? el('span', { class: 'failure' }, ` · last failure: ${describeFailure(ch.last_failure)}`) : '',
      ch.supervisor ? this.supervisor(ch.supervisor, path) : '');
  },
};

function describeFailure(f) {
  if (typeof f !== 'object') return String(f);
  const what = f.reason || f.error || JSON.stringify(f);
  return f.at ? `${what} (${fmtTime(f.at)})` : what;
}

// ---------------------------------------------------------------- audit

const auditView = {
  seen: new Set(),
  ticket: latestOnly(),

  init() {
    this.pager = makePager('audit', this.load);
    $('#audit-refresh').addEventListener('click', () => this.load());
  },

  open() { this.load(); },
  refresh() { this.load(); },

  load: throttle(async () => {
    const v = auditView;
    const isCurrent = v.ticket();
    try {
      const data = await api(`/api/v1/admin/audit?${query({ limit: PAGE_SIZE, cursor: v.pager.cursor() })}`);
      if (!isCurrent()) return;
      clearError('#audit-error');
      v.seen = new Set((data.items || []).map((r) => r.id));
      fillBody('#audit-body', (data.items || []).map((r) => v.row(r)), 6, 'Nothing recorded yet.');
      v.pager.update(data.next_cursor);
    } catch (err) {
      if (isCurrent()) showError('#audit-error', err);
    }
  }, 1000),

  /** New records go on top of the first page as they are recorded. */
  onRecord(r) {
    if (this.pager.index !== 0 || this.seen.has(r.id)) return;
    this.seen.add(r.id);
    const body = $('#audit-body');
    const empty = body.querySelector('td.empty');
    if (empty) empty.parentElement.remove();
    body.prepend(this.row(r, true));
  },

  row(r, fresh) {
    const target = parseTarget(r.target || '');
    const mine = session && r.user_id === session.user.id;
    return el('tr', { class: fresh ? 'fresh' : null },
      el('td', {}, el('time', { datetime: r.at }, fmtTime(r.at))),
      el('td', { class: 'id' }, mine ? `you (${r.user_id})` : r.user_id),
      el('td', {}, r.action),
      el('td', { class: 'id' }, target ? actorLink(target.type, target.id) : r.target),
      el('td', {}, r.via),
      el('td', {}, badge(r.result, r.result === 'accepted' ? 'ok' : 'bad'), r.detail ? ` ${r.detail}` : ''));
  },
};

// ---------------------------------------------------------------- navigation

const VIEWS = {
  overview: { title: 'Overview', view: overview },
  actors: { title: 'Actors', view: actorsView },
  actor: { title: 'Actor', view: actorView },
  tree: { title: 'Supervision tree', view: treeView },
  audit: { title: 'Audit', view: auditView },
};
let currentView = null;

/** #overview, #actors, #actor=wallet:<id>, #tree, #audit. */
function parseHash() {
  let h;
  try {
    h = decodeURIComponent(location.hash.slice(1));
  } catch {
    h = location.hash.slice(1);
  }
  const m = /^actor(?:=(.*))?$/.exec(h);
  if (m) return { name: 'actor', arg: m[1] || '' };
  return { name: VIEWS[h] ? h : 'overview', arg: '' };
}

function route() {
  if (!session) return;
  const { name, arg } = parseHash();
  // Coming from the nav, focus moves to the view's heading so screen readers follow.
  const fromNav = document.activeElement && document.activeElement.closest('#nav');
  currentView = name;
  for (const key of Object.keys(VIEWS)) $(`#view-${key}`).hidden = key !== name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${VIEWS[name].title} · gigmesh console`;
  VIEWS[name].view.open(arg);
  if (fromNav) $(`#view-${name} h1`).focus();
}

function refreshCurrentView() {
  if (currentView) VIEWS[currentView].view.refresh();
}

// ---------------------------------------------------------------- start

function boot() {
  overview.init();
  actorsView.init();
  actorView.init();
  treeView.init();
  auditView.init();
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  session = loadSession();
  if (session) startApp(); else showSignIn();
}

boot();
