// Limit lab: the browser's six connections per host, shown live.
//
// Open N EventSources to an origin and watch which are open and which wait
// (pending) for one of the 6 HTTP/1.1 connections of this browser profile;
// a "fetch now" probe shows what an ordinary request costs meanwhile; tabs
// of this page tell each other (BroadcastChannel) what they hold, because
// they share the pool. The workaround: one stream owned by a SharedWorker
// (or a leader tab) feeds every tab.
//
// Everything a test reads is exposed, read-only and live, as `window.limitLab`.
'use strict';

(() => {
  const TAB_CHANNEL = 'workbench-limit-lab';
  const FEED_CHANNEL = 'workbench-shared-feed';
  const TAB_TTL_MS = 3500;       // another tab is forgotten after this long without news
  const ANNOUNCE_EVERY_MS = 1000;
  const RENDER_EVERY_MS = 250;   // the waiting fetch's clock ticks this often

  const $ = (id) => document.getElementById(id);
  const fmtMs = (v) => (v === null || !Number.isFinite(v)) ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1);
  const tabId = Math.random().toString(36).slice(2, 10);

  const lab = {
    info: null,
    choice: 'h1',
    origin: null,
    streams: [],
    ws: [],
    fetch: { state: 'idle', ms: null, url: null, nextHopProtocol: null, startedAt: null, error: null },
    others: new Map(),
    shared: { mode: null, state: 'idle', events: 0, lastId: null, protocol: null, tabs: null, firstEventMs: null, joinedAt: null },
  };

  // ---------------------------------------------------------------- origins

  /** `h1`: the server's plain origin; `h1-alt`: the same with the other host name
   *  (127.0.0.1 <-> localhost: a separate pool); `h2`: the TLS origin. */
  function originFor(choice) {
    const i = lab.info;
    if (!i) return null;
    const raw = choice === 'h2' ? i.https_url : i.http_url;
    if (!raw) return null;
    const u = new URL(raw);
    if (['0.0.0.0', '[::]'].includes(u.hostname)) u.hostname = location.hostname;
    if (choice === 'h1-alt') u.hostname = u.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    if (choice === 'h1' && u.port === location.port && location.protocol === 'http:') return location.origin;
    return u.origin;
  }

  // ---------------------------------------------------------------- streams

  function openStreams() {
    closeStreams();
    const n = Math.max(1, Math.min(300, Number($('limit-n').value) || 1));
    lab.choice = $('limit-origin').value;
    lab.origin = originFor(lab.choice);
    if (!lab.origin) { $('limit-summary').textContent = 'This origin is not available (TLS off?).'; return; }
    for (let i = 0; i < n; i += 1) lab.streams.push(openStream(i, `${lab.origin}/sse?lab=${tabId}-${i}`));
    changed();
  }

  function openStream(index, url) {
    const s = { index, url, state: 'pending', askedAt: performance.now(), firstEventMs: null, protocol: null, events: 0, es: null };
    const es = new EventSource(url);
    s.es = es;
    es.addEventListener('open', () => { s.state = 'open'; changed(); });
    const onMessage = (e) => {
      s.events += 1;
      if (s.firstEventMs === null) {
        s.firstEventMs = performance.now() - s.askedAt;
        try { s.protocol = JSON.parse(e.data).protocol || null; } catch (err) { /* a tick: no protocol */ }
        s.state = 'open';
        changed();
      }
    };
    for (const name of ['hello', 'tick', 'gap', 'message']) es.addEventListener(name, onMessage);
    es.addEventListener('error', () => {
      // CONNECTING: the browser retries by itself (still pending); CLOSED: it gave up.
      s.state = es.readyState === EventSource.CLOSED ? 'error' : 'pending';
      changed();
    });
    return s;
  }

  function closeStream(s) {
    if (s.es) s.es.close();
    s.es = null;
    s.state = 'closed';
  }

  function closeStreams() {
    lab.streams.forEach(closeStream);
    lab.streams = [];
    changed();
  }

  /** Closes the oldest open stream: its connection frees a slot for the next waiting request. */
  function closeOne() {
    const s = lab.streams.find((x) => x.state === 'open');
    if (s) { closeStream(s); changed(); }
  }

  function counts() {
    const c = { asked: lab.streams.length, open: 0, pending: 0, closed: 0, error: 0 };
    for (const s of lab.streams) c[s.state] += 1;
    return c;
  }

  // ---------------------------------------------------------------- fetch probe

  async function fetchNow() {
    const origin = lab.origin || originFor($('limit-origin').value);
    if (!origin) return;
    const url = `${origin}/info?probe=${tabId}-${Date.now()}`;
    const f = { state: 'waiting', ms: null, url, nextHopProtocol: null, startedAt: performance.now(), error: null };
    lab.fetch = f;
    changed();
    try {
      const res = await fetch(url, { cache: 'no-store' });
      await res.text();
      f.ms = performance.now() - f.startedAt;
      f.state = 'done';
      const entries = performance.getEntriesByName(url);
      f.nextHopProtocol = entries.length ? entries[entries.length - 1].nextHopProtocol : null;
    } catch (e) {
      f.state = 'error';
      f.error = String(e.message || e);
    }
    changed();
  }

  // ---------------------------------------------------------------- WebSockets

  function openSockets() {
    closeSockets();
    const n = Math.max(1, Math.min(255, Number($('limit-ws-n').value) || 1));
    const origin = lab.origin || originFor($('limit-origin').value);
    if (!origin) return;
    const url = `${origin.replace(/^http/, 'ws')}/ws`;
    for (let i = 0; i < n; i += 1) {
      const w = { index: i, state: 'pending', askedAt: performance.now(), firstEventMs: null, ws: new WebSocket(url) };
      w.ws.addEventListener('open', () => { w.state = 'open'; changed(); });
      w.ws.addEventListener('message', () => {
        if (w.firstEventMs === null) { w.firstEventMs = performance.now() - w.askedAt; changed(); }
      });
      w.ws.addEventListener('close', () => { if (w.state !== 'closed') { w.state = 'error'; changed(); } });
      lab.ws.push(w);
    }
    changed();
  }

  function closeSockets() {
    for (const w of lab.ws) { w.state = 'closed'; w.ws.close(1000, 'closed by the limit lab'); }
    lab.ws = [];
    changed();
  }

  // ---------------------------------------------------------------- other tabs

  const tabs = 'BroadcastChannel' in window ? new BroadcastChannel(TAB_CHANNEL) : null;

  function announce() {
    if (!tabs) return;
    const c = counts();
    tabs.postMessage({ type: 'state', tabId, origin: lab.origin, open: c.open, pending: c.pending });
  }

  if (tabs) {
    tabs.addEventListener('message', (e) => {
      const m = e.data || {};
      if (m.tabId === tabId) return;
      if (m.type === 'bye') lab.others.delete(m.tabId);
      else if (m.type === 'state') lab.others.set(m.tabId, { ...m, at: performance.now() });
      render();
    });
    window.addEventListener('pagehide', () => tabs.postMessage({ type: 'bye', tabId }));
  }

  function otherTabs() {
    const now = performance.now();
    for (const [id, t] of lab.others) if (now - t.at > TAB_TTL_MS) lab.others.delete(id);
    return [...lab.others.values()].map(({ tabId: id, origin, open, pending }) => ({ tabId: id, origin, open, pending }));
  }

  // ---------------------------------------------------------------- shared stream

  /** The workaround: one EventSource for every tab, in a SharedWorker or a leader tab. */
  const sharedFeed = {
    port: null,
    channel: null,
    releaseLock: null,

    join() {
      const origin = lab.origin || originFor($('limit-origin').value);
      if (!origin) return;
      const url = `${origin}/sse`;
      Object.assign(lab.shared, { state: 'joining', events: 0, lastId: null, firstEventMs: null, joinedAt: performance.now() });
      if (typeof SharedWorker === 'function') {
        lab.shared.mode = 'shared-worker';
        const worker = new SharedWorker('/shared-feed-worker.js', { name: FEED_CHANNEL });
        this.port = worker.port;
        this.port.onmessage = (e) => this.onMessage(e.data);
        this.port.start();
        this.port.postMessage({ type: 'join', url });
      } else if ('BroadcastChannel' in window && navigator.locks) {
        // Leader tab: whoever holds the lock owns the stream and relays it.
        lab.shared.mode = 'leader-tab';
        this.channel = new BroadcastChannel(FEED_CHANNEL);
        this.channel.onmessage = (e) => this.onMessage(e.data);
        navigator.locks.request(FEED_CHANNEL, () => new Promise((release) => {
          this.releaseLock = release;
          const es = new EventSource(url);
          const relay = (e) => {
            const m = { type: 'event', name: e.type, data: e.data };
            this.channel.postMessage(m);
            this.onMessage(m);
          };
          ['hello', 'tick', 'gap'].forEach((n) => es.addEventListener(n, relay));
          this.releaseLock = () => { es.close(); release(); };
        }));
      } else {
        lab.shared.mode = 'unsupported';
        lab.shared.state = 'unsupported';
      }
      changed();
    },

    leave() {
      if (this.port) { this.port.postMessage({ type: 'leave' }); this.port.close(); this.port = null; }
      if (this.releaseLock) { this.releaseLock(); this.releaseLock = null; }
      if (this.channel) { this.channel.close(); this.channel = null; }
      lab.shared.state = 'idle';
      changed();
    },

    onMessage(m) {
      if (!m) return;
      if (m.type === 'status') { lab.shared.tabs = m.tabs; lab.shared.state = m.state || lab.shared.state; }
      if (m.type === 'event') {
        lab.shared.events += 1;
        lab.shared.state = 'open';
        if (m.tabs !== undefined) lab.shared.tabs = m.tabs;
        if (lab.shared.firstEventMs === null) lab.shared.firstEventMs = performance.now() - lab.shared.joinedAt;
        try {
          const msg = JSON.parse(m.data);
          if (msg.id !== undefined && m.name === 'tick') lab.shared.lastId = msg.id;
          if (msg.protocol) lab.shared.protocol = msg.protocol;
        } catch (e) { /* not JSON: counted, not parsed */ }
      }
      render();
    },
  };
  window.addEventListener('pagehide', () => sharedFeed.leave());

  // ---------------------------------------------------------------- display

  let renderQueued = false;
  function changed() {
    if (!renderQueued) { renderQueued = true; setTimeout(() => { renderQueued = false; render(); announce(); }, 0); }
  }

  function render() {
    const c = counts();
    const h2 = lab.choice === 'h2';
    $('limit-summary').textContent = c.asked === 0 ? 'No streams open.'
      : `${c.open} open, ${c.pending} pending of ${c.asked}${c.closed ? `, ${c.closed} closed` : ''}${c.error ? `, ${c.error} failed` : ''} `
        + `to ${lab.origin} (${h2 ? 'HTTP/2: one connection' : 'HTTP/1.1: one connection each, 6 per host'}).`;
    $('limit-summary').dataset.pending = String(c.pending);
    const grid = $('limit-grid');
    const items = lab.streams.map((s) => {
      const li = document.createElement('li');
      li.id = `limit-stream-${s.index}`;
      li.dataset.state = s.state;
      li.textContent = `#${s.index + 1} ${s.state}${s.firstEventMs === null ? '' : ` ${fmtMs(s.firstEventMs)} ms`}${s.protocol ? ` ${s.protocol}` : ''}`;
      return li;
    });
    grid.replaceChildren(...items);

    const f = lab.fetch;
    $('limit-fetch-result').textContent = f.state === 'idle' ? '–'
      : f.state === 'waiting' ? `waiting ${fmtMs(performance.now() - f.startedAt)} ms… (every HTTP/1.1 connection of this host is taken)`
        : f.state === 'done' ? `${fmtMs(f.ms)} ms (${f.nextHopProtocol || 'protocol not reported'})` : `failed: ${f.error}`;
    $('limit-fetch-result').dataset.state = f.state;

    const others = otherTabs();
    const same = others.filter((t) => t.origin && t.origin === lab.origin);
    const held = same.reduce((n, t) => n + t.open, 0);
    $('limit-tabs').textContent = others.length === 0 ? 'No other tab of this page is open.'
      : `${others.length} other tab(s) of this page are open; ${same.length} use ${lab.origin || 'the same origin'} with ${held} open stream(s)`
        + (lab.choice !== 'h2' && same.length ? ': they share this browser\'s 6 connections per host with this tab.' : '.');

    const ws = { asked: lab.ws.length, open: lab.ws.filter((w) => w.state === 'open').length };
    $('limit-ws-summary').textContent = ws.asked ? `${ws.open} of ${ws.asked} WebSockets open (outside the 6)` : 'none';

    const sh = lab.shared;
    $('limit-shared-summary').textContent = sh.state === 'idle' ? 'not joined'
      : `${sh.mode}: ${sh.state}, ${sh.events} events, last id ${sh.lastId ?? '–'}, tabs fed ${sh.tabs ?? '?'}`;
    $('limit-shared-join').disabled = sh.state !== 'idle';
    $('limit-shared-leave').disabled = sh.state === 'idle';
  }

  // ---------------------------------------------------------------- start

  function exportLab() {
    const view = Object.freeze({
      get ready() { return lab.info !== null; },
      get choice() { return lab.choice; },
      get origin() { return lab.origin; },
      get counts() { return counts(); },
      get streams() {
        return lab.streams.map((s) => ({ index: s.index, state: s.state, firstEventMs: s.firstEventMs, protocol: s.protocol }));
      },
      get fetch() {
        const f = lab.fetch;
        return { state: f.state, ms: f.ms, url: f.url, nextHopProtocol: f.nextHopProtocol, error: f.error };
      },
      get ws() {
        return { asked: lab.ws.length, open: lab.ws.filter((w) => w.state === 'open').length,
          sockets: lab.ws.map((w) => ({ index: w.index, state: w.state, firstEventMs: w.firstEventMs })) };
      },
      get otherTabs() { return otherTabs(); },
      get shared() { const { mode, state, events, lastId, protocol, tabs: n, firstEventMs } = lab.shared; return { mode, state, events, lastId, protocol, tabs: n, firstEventMs }; },
    });
    Object.defineProperty(window, 'limitLab', { value: view, writable: false, configurable: false });
  }

  async function loadInfo() {
    // app.js reads /info too; use its copy when it has one.
    for (let i = 0; i < 100 && !(window.workbench && window.workbench.info); i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (window.workbench && window.workbench.info) return window.workbench.info;
    const res = await fetch('/info', { cache: 'no-store' });
    return res.json();
  }

  exportLab();
  $('limit-open').addEventListener('click', openStreams);
  $('limit-close').addEventListener('click', closeStreams);
  $('limit-close-one').addEventListener('click', closeOne);
  $('limit-fetch').addEventListener('click', fetchNow);
  $('limit-ws-open').addEventListener('click', openSockets);
  $('limit-ws-close').addEventListener('click', closeSockets);
  $('limit-shared-join').addEventListener('click', () => sharedFeed.join());
  $('limit-shared-leave').addEventListener('click', () => sharedFeed.leave());
  loadInfo().then((info) => {
    lab.info = info;
    const h2 = $('limit-origin').querySelector('option[value="h2"]');
    if (!info.https_url) { h2.disabled = true; h2.textContent = 'HTTP/2 (TLS off)'; }
    $('limit-lab').dataset.ready = 'true';
    render();
  }, (e) => { $('limit-summary').textContent = `Could not read /info: ${e.message || e}`; });
  setInterval(() => { render(); }, RENDER_EVERY_MS);
  setInterval(announce, ANNOUNCE_EVERY_MS);
})();
