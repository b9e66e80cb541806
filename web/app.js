// SSE vs WebSocket workbench: the browser page.
//
// One `Panel` per transport, each driving a small transport adapter (`SseTransport`,
// `WsTransport`) that turns EventSource / WebSocket callbacks into the same three
// calls: opened, message, down. Everything a test may want to read is exposed,
// read-only and live, as `window.workbench` (see `exportWorkbench` at the bottom).
//
// Latency is this page's clock minus the event's `sent_unix_ns`: it assumes one
// clock, i.e. browser and server on the same host.
'use strict';

(() => {
  const LOG_ROWS = 50;            // rows kept per panel message list
  const LATENCY_SAMPLES = 10000;  // latencies kept per panel for p50/p99
  const CHART_WINDOW_MS = 60000;  // the chart shows the last minute
  const CHART_BUCKET_MS = 100;    // chart keeps one point (the max) per bucket
  const RATE_WINDOW_MS = 5000;    // events/s is averaged over this window
  const RENDER_EVERY_MS = 250;
  const STATS_EVERY_MS = 2000;
  const MAX_BACKOFF_MS = 30000;
  const ERRORS_KEPT = 20;
  const TOKEN_KEY = 'workbench.adminToken';

  const $ = (id) => document.getElementById(id);
  /** Wall-clock time in ms with sub-ms precision (the same clock as the server's, on one host). */
  const nowUnixMs = () => performance.timeOrigin + performance.now();
  const clockText = () => new Date().toISOString().slice(11, 23);
  const fmtMs = (v) => (v === null || !Number.isFinite(v)) ? '–'
    : Math.abs(v) < 10 ? v.toFixed(2) : Math.abs(v) < 1000 ? v.toFixed(1) : String(Math.round(v));

  // ---------------------------------------------------------------- errors

  /** Errors are shown on the page (and kept for tests), never thrown. */
  const errorLog = {
    items: [],
    report(where, err) {
      const text = `${where}: ${err && err.message ? err.message : String(err)}`;
      // A repeated error (e.g. every retry while the server is down) moves up and counts.
      const i = this.items.findIndex((e) => e.text === text);
      const repeat = i < 0 ? 1 : this.items.splice(i, 1)[0].repeat + 1;
      this.items.push({ at: clockText(), text, repeat });
      if (this.items.length > ERRORS_KEPT) this.items.shift();
      this.render();
    },
    render() {
      const list = $('errors');
      list.replaceChildren(...this.items.slice().reverse().map((e) => {
        const li = document.createElement('li');
        li.textContent = `${e.at} ${e.text}${e.repeat > 1 ? ` (×${e.repeat})` : ''}`;
        return li;
      }));
      $('errors-count').textContent = String(this.items.length);
    },
    texts() { return this.items.map((e) => e.text); },
  };
  window.addEventListener('error', (e) => errorLog.report('page', e.error || e.message));
  window.addEventListener('unhandledrejection', (e) => errorLog.report('promise', e.reason));

  // ---------------------------------------------------------------- measurement

  /** The last LATENCY_SAMPLES latencies in a ring, so memory stays bounded for hours. */
  class LatencySample {
    constructor(size) { this.ring = new Float64Array(size); this.reset(); }
    reset() { this.count = 0; this.next = 0; this.sorted = null; }
    add(ms) {
      this.ring[this.next] = ms;
      this.next = (this.next + 1) % this.ring.length;
      this.count = Math.min(this.count + 1, this.ring.length);
      this.sorted = null;
    }
    /** Nearest-rank percentile, p in (0, 1]. */
    percentile(p) {
      if (this.count === 0) return null;
      if (!this.sorted) this.sorted = this.ring.slice(0, this.count).sort();
      return this.sorted[Math.max(0, Math.ceil(p * this.count) - 1)];
    }
  }

  /** Events per second from snapshots of the event counter, taken at each render. */
  class RateMeter {
    constructor() { this.snaps = []; }
    reset() { this.snaps = []; }
    sample(t, events) {
      this.snaps.push({ t, events });
      while (this.snaps.length > 2 && this.snaps[1].t <= t - RATE_WINDOW_MS) this.snaps.shift();
    }
    perSecond() {
      const first = this.snaps[0], last = this.snaps[this.snaps.length - 1];
      if (!first || last.t - first.t < 500) return 0;
      return (last.events - first.events) * 1000 / (last.t - first.t);
    }
  }

  /** One chart line: the max latency per CHART_BUCKET_MS, for the last CHART_WINDOW_MS. */
  class ChartSeries {
    constructor() { this.points = []; }
    add(t, ms) {
      const last = this.points[this.points.length - 1];
      if (last && Math.floor(last.t / CHART_BUCKET_MS) === Math.floor(t / CHART_BUCKET_MS)) {
        last.v = Math.max(last.v, ms);
      } else {
        this.points.push({ t, v: ms });
      }
    }
    prune(from) { while (this.points.length && this.points[0].t < from) this.points.shift(); }
  }

  // ---------------------------------------------------------------- transports

  /** EventSource adapter. EventSource reconnects by itself (sending Last-Event-ID). */
  class SseTransport {
    static url(origin, lastId) {
      return `${origin}/sse${lastId === null ? '' : `?lastEventId=${lastId}`}`;
    }
    constructor(url, on) {
      const es = new EventSource(url);
      this.es = es;
      let openSinceError = false;
      es.addEventListener('open', () => { openSinceError = true; on.opened(); });
      for (const name of ['hello', 'tick', 'gap', 'message']) {
        es.addEventListener(name, (e) => on.message(e.data, name === 'message' ? null : name));
      }
      es.addEventListener('error', () => {
        // CONNECTING: the browser retries by itself; CLOSED: it gave up (HTTP error,
        // wrong content type, CORS or an untrusted certificate), so the panel retries.
        const retriesItself = es.readyState === EventSource.CONNECTING;
        const failed = !openSinceError;
        openSinceError = false;
        const reason = !failed ? 'stream ended' : retriesItself ? 'could not connect'
          : 'connection failed (HTTP error, CORS or certificate?)';
        on.down(reason, retriesItself, failed);
      });
    }
    close() { this.es.close(); }
  }

  /** WebSocket adapter. WebSocket does not reconnect: the panel does, with ?lastEventId. */
  class WsTransport {
    static url(origin, lastId) {
      return `${origin.replace(/^http/, 'ws')}/ws${lastId === null ? '' : `?lastEventId=${lastId}`}`;
    }
    constructor(url, on) {
      const ws = new WebSocket(url);
      this.ws = ws;
      let opened = false;
      ws.addEventListener('open', () => { opened = true; on.opened(); });
      ws.addEventListener('message', (e) => {
        if (typeof e.data === 'string') on.message(e.data, null);
      });
      ws.addEventListener('close', (e) => {
        const how = `code ${e.code}${e.reason ? ` (${e.reason})` : ''}`;
        on.down(opened ? `closed, ${how}` : `could not connect, ${how}`, false, !opened);
      });
    }
    close() { this.ws.close(1000, 'closed by the page'); }
  }

  // ---------------------------------------------------------------- panel

  /** One transport's panel: connection life cycle, id accounting, latency, display. */
  class Panel {
    constructor(name, Transport, app) {
      this.name = name;
      this.Transport = Transport;
      this.app = app;
      this.els = {};
      for (const key of ['state', 'protocol', 'next-hop', 'resume', 'last-id', 'events', 'rate', 'latency',
        'p50', 'p99', 'reconnects', 'lost', 'dups', 'recovery-ms', 'errors', 'url', 'log', 'origin',
        'connect', 'disconnect']) {
        this.els[key] = $(`${name}-${key}`);
      }
      this.latencies = new LatencySample(LATENCY_SAMPLES);
      this.rate = new RateMeter();
      this.series = new ChartSeries();
      this.transport = null;
      this.retryTimer = null;
      this.state = 'closed';
      this.resetSession();
      this.els.connect.addEventListener('click', () => this.connect());
      this.els.disconnect.addEventListener('click', () => this.disconnect());
      this.els.origin.addEventListener('change', () => this.originChanged());
    }

    /** A new session (Connect) starts every figure from zero. */
    resetSession() {
      Object.assign(this, {
        url: null, protocol: null, edgeProtocol: null, nextHop: null, resume: null, lastId: null, events: 0, gaps: 0,
        lost: 0, dups: 0, opens: 0, hellos: 0, attempts: 0, errors: 0, lastError: null,
        latencyMs: null, recoveryMs: null, pendingDrop: null, backoffMs: this.app.retryMs(),
        pendingLog: [],
      });
      this.latencies.reset();
      this.rate.reset();
      this.els.log.replaceChildren();
    }

    get active() { return this.state !== 'closed'; }

    connect() {
      this.closeTransport();
      this.resetSession();
      const origin = this.app.originFor(this.els.origin.value);
      if (!origin) {
        this.fail('connect', new Error('this origin is not available (TLS is off?)'));
        return;
      }
      this.origin = origin;
      this.open('connecting');
      this.app.probeNextHop(origin).then((p) => { if (this.origin === origin) this.nextHop = p; },
        (e) => this.fail('nextHopProtocol probe', new Error(`${e.message || e}${certHint(origin)}`)));
    }

    disconnect() {
      this.closeTransport();
      this.pendingDrop = null;
      this.setState('closed');
    }

    originChanged() {
      if (this.active) this.connect();
      else {
      this.url = null;
      this.els.url.textContent = this.app.originFor(this.els.origin.value) || 'unavailable';
    }
    }

    /** Opens a transport, resuming after the last id seen (if any). */
    open(state) {
      this.attempts += 1;
      this.url = this.Transport.url(this.origin, this.lastId);
      const self = this;
      let transport = null;
      const current = () => transport !== null && self.transport === transport;
      const on = {
        opened() { if (current()) self.onOpened(); },
        message(data, eventName) { if (current()) self.onMessage(data, eventName); },
        down(reason, retriesItself, failed) { if (current()) self.onDown(reason, retriesItself, failed); },
      };
      this.setState(state);
      try {
        transport = new this.Transport(this.url, on);
        this.transport = transport;
      } catch (e) {
        this.fail('open', e);
        this.scheduleRetry();
      }
    }

    closeTransport() {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.transport) this.transport.close();
      this.transport = null;
    }

    onOpened() {
      this.opens += 1;
      this.setState('open');
      this.log('open', `open ${this.url}`);
    }

    /** The stream ended (`failed`: or never opened); SSE may retry by itself, WS never does. */
    onDown(reason, retriesItself, failed) {
      this.log('down', `${reason}${retriesItself ? ' - the browser reconnects' : ' - reconnecting'}`);
      if (failed) this.fail('connection', new Error(`${reason}${certHint(this.origin)}`));
      if (!retriesItself) {
        this.transport.close();
        this.transport = null;
        this.scheduleRetry();
      }
      this.setState('reconnecting');
    }

    /** Reconnects in the page's own code, with a backoff starting at the server's retry_ms. */
    scheduleRetry() {
      clearTimeout(this.retryTimer);
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.open('reconnecting'); }, delay);
    }

    onMessage(data, eventName) {
      let msg;
      try { msg = JSON.parse(data); } catch (e) {
        this.fail('message', new Error(`not JSON: ${String(data).slice(0, 80)}`));
        return;
      }
      const type = msg.type || eventName || (msg.id !== undefined ? 'tick' : 'unknown');
      if (type === 'tick') this.onTick(msg);
      else if (type === 'hello') this.onHello(msg);
      else if (type === 'gap') this.onGap(msg);
      else this.log('other', `${type}: ${String(data).slice(0, 120)}`);
    }

    /** The first message on every stream: what the server negotiated and how it resumed. */
    onHello(msg) {
      this.hellos += 1;
      this.protocol = msg.protocol || null;
      // Behind a proxy: what this browser negotiated with it (h2 means the
      // WebSocket rode the page's HTTP/2 connection, RFC 8441).
      this.edgeProtocol = msg.edge_protocol || null;
      this.resume = msg.resume || null;
      this.backoffMs = this.app.retryMs();
      this.log('hello', `hello protocol=${msg.protocol} resume=${msg.resume} last_id=${msg.last_id}`);
      if (msg.resume === 'future' || msg.resume === 'malformed') {
        // The server cannot continue our numbering (e.g. it restarted): start counting afresh.
        this.log('down', `resume "${msg.resume}": id accounting restarts from the next tick`);
        this.lastId = null;
      }
    }

    onTick(msg) {
      const id = Number(msg.id);
      const sentNs = Number(msg.sent_unix_ns);
      const latency = Number.isFinite(sentNs) ? nowUnixMs() - sentNs / 1e6 : null;
      this.events += 1;
      const fresh = this.acceptId(id);
      if (latency !== null) {
        this.latencyMs = latency;
        this.latencies.add(latency);
        this.series.add(performance.now(), latency);
      }
      if (this.pendingDrop && this.hellos > this.pendingDrop.hellos) {
        this.recoveryMs = performance.now() - this.pendingDrop.at;
        this.pendingDrop = null;
        this.log('hello', `recovered ${Math.round(this.recoveryMs)} ms after the drop`);
      }
      this.log(fresh ? 'tick' : 'dup', `${fresh ? 'tick' : 'DUPLICATE'} #${id} ${fmtMs(latency)} ms`);
    }

    /** Ids must rise by one: a jump is loss, a repeat is a duplicate. */
    acceptId(id) {
      if (!Number.isFinite(id)) return true;
      if (this.lastId === null) { this.lastId = id; return true; }
      if (id <= this.lastId) { this.dups += 1; return false; }
      this.lost += id - this.lastId - 1;
      this.lastId = id;
      return true;
    }

    /** The server says ids from..=to are gone for good: they count as lost, not as duplicates. */
    onGap(msg) {
      const from = Number(msg.from), to = Number(msg.to);
      const start = this.lastId === null ? from : Math.max(from, this.lastId + 1);
      if (to >= start) this.lost += to - start + 1;
      this.lastId = this.lastId === null ? to : Math.max(this.lastId, to);
      this.gaps += 1;
      this.log('gap', `gap: ids ${from}..${to} lost`);
    }

    /** Called just before POST /admin/drop: recovery is the time to the first tick on a new stream. */
    markDrop(at) {
      this.pendingDrop = this.active ? { at, hellos: this.hellos } : null;
      if (this.pendingDrop) this.recoveryMs = null;
    }

    cancelDrop() { this.pendingDrop = null; }

    fail(where, err) {
      this.errors += 1;
      this.lastError = `${where}: ${err && err.message ? err.message : String(err)}`;
      errorLog.report(`${this.name} ${where}`, err);
    }

    setState(state) {
      this.state = state;
      this.els.state.textContent = state;
      this.els.state.dataset.state = state;
      this.els.connect.disabled = this.active;
      this.els.disconnect.disabled = !this.active;
    }

    log(kind, text) {
      this.pendingLog.push({ kind, text: `${clockText()} ${text}` });
      if (this.pendingLog.length > LOG_ROWS) this.pendingLog.shift();
    }

    snapshot() {
      return Object.freeze({
        transport: this.name, state: this.state, origin: this.els.origin.value, url: this.url,
        protocol: this.protocol, edgeProtocol: this.edgeProtocol, nextHopProtocol: this.nextHop, resume: this.resume,
        lastId: this.lastId, events: this.events, eventsPerSec: this.rate.perSecond(),
        latencyMs: this.latencyMs, p50Ms: this.latencies.percentile(0.5),
        p99Ms: this.latencies.percentile(0.99), samples: this.latencies.count,
        reconnects: Math.max(0, this.opens - 1), attempts: this.attempts, hellos: this.hellos,
        lost: this.lost, dups: this.dups, gaps: this.gaps, recoveryMs: this.recoveryMs,
        recoveryPending: this.pendingDrop !== null, errors: this.errors, lastError: this.lastError,
      });
    }

    render(now) {
      this.rate.sample(now, this.events);
      const s = this.snapshot();
      const text = {
        protocol: !s.protocol ? '–' : s.edgeProtocol ? `${s.edgeProtocol} to the proxy, ${s.protocol} behind it` : s.protocol,
        'next-hop': s.nextHopProtocol === null ? '–' : (s.nextHopProtocol || '(empty)'),
        resume: s.resume || '–', 'last-id': s.lastId === null ? '–' : String(s.lastId),
        events: String(s.events), rate: s.eventsPerSec.toFixed(1), latency: fmtMs(s.latencyMs),
        p50: fmtMs(s.p50Ms), p99: fmtMs(s.p99Ms), reconnects: String(s.reconnects), lost: String(s.lost),
        dups: String(s.dups), errors: String(s.errors),
        'recovery-ms': s.recoveryPending ? 'waiting…' : s.recoveryMs === null ? '–' : String(Math.round(s.recoveryMs)),
      };
      for (const [key, value] of Object.entries(text)) {
        if (this.els[key].textContent !== value) this.els[key].textContent = value;
      }
      this.els.lost.dataset.bad = String(s.lost > 0);
      this.els.dups.dataset.bad = String(s.dups > 0);
      if (this.url && this.els.url.textContent !== this.url) this.els.url.textContent = this.url;
      this.flushLog();
    }

    flushLog() {
      const list = this.els.log;
      for (const row of this.pendingLog) {
        const li = document.createElement('li');
        li.textContent = row.text;
        li.dataset.kind = row.kind;
        list.insertBefore(li, list.firstChild);
      }
      this.pendingLog = [];
      while (list.childElementCount > LOG_ROWS) list.lastElementChild.remove();
    }
  }

  // ---------------------------------------------------------------- chart

  /** Both panels' latency on one time axis, drawn on a canvas (no library). */
  class LatencyChart {
    constructor(canvas) { this.canvas = canvas; this.ctx = canvas.getContext('2d'); this.drops = []; }

    markDrop(at) { this.drops.push(at); }

    draw(panels, now) {
      const { canvas, ctx } = this;
      const dpr = window.devicePixelRatio || 1;
      const w = canvas.clientWidth || 300, h = canvas.clientHeight || 200;
      if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
      }
      const css = getComputedStyle(document.documentElement);
      const color = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
      const from = now - CHART_WINDOW_MS;
      panels.forEach((p) => p.series.prune(from));
      while (this.drops.length && this.drops[0] < from) this.drops.shift();

      const values = panels.flatMap((p) => p.series.points.map((pt) => pt.v));
      const yMax = niceCeil(Math.max(1, ...values));
      const yMin = Math.min(0, ...values);
      const pad = { l: 58, r: 24, t: 8, b: 20 };
      const x = (t) => pad.l + (t - from) / CHART_WINDOW_MS * (w - pad.l - pad.r);
      const y = (v) => h - pad.b - (v - yMin) / (yMax - yMin) * (h - pad.t - pad.b);

      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.font = '11px system-ui, sans-serif';
      ctx.lineWidth = 1;
      ctx.strokeStyle = color('--grid', '#ddd');
      ctx.fillStyle = color('--muted', '#666');
      for (let i = 0; i <= 4; i += 1) {
        const v = yMin + (yMax - yMin) * i / 4;
        line(ctx, pad.l, y(v), w - pad.r, y(v));
        // Right-aligned against the plot, so long labels never run into it.
        ctx.textAlign = 'right';
        ctx.fillText(`${Number.isInteger(v) ? v : fmtMs(v)} ms`, pad.l - 4, y(v) + 4);
      }
      for (let s = 0; s <= 60; s += 10) {
        const t = now - s * 1000;
        line(ctx, x(t), pad.t, x(t), h - pad.b);
        // Centred on its grid line; the right padding leaves room for "now".
        ctx.textAlign = 'center';
        ctx.fillText(s === 0 ? 'now' : `-${s}s`, x(t), h - 5);
      }
      ctx.strokeStyle = color('--drop', '#c00');
      this.drops.forEach((t) => line(ctx, x(t), pad.t, x(t), h - pad.b));
      // Both panels carry the same events, so their lines often coincide: the second is dashed.
      panels.forEach((p, i) => drawSeries(ctx, p.series.points, x, y, color(`--${p.name}`, '#000'), i ? [5, 4] : []));
    }
  }

  function line(ctx, x1, y1, x2, y2) {
    ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
  }

  /** A polyline that breaks where no event arrived for 3 s (e.g. while reconnecting). */
  function drawSeries(ctx, points, x, y, stroke, dash) {
    ctx.strokeStyle = stroke;
    ctx.fillStyle = stroke;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(dash);
    ctx.beginPath();
    points.forEach((pt, i) => {
      if (i === 0 || pt.t - points[i - 1].t > 3000) ctx.moveTo(x(pt.t), y(pt.v));
      else ctx.lineTo(x(pt.t), y(pt.v));
    });
    ctx.stroke();
    ctx.setLineDash([]);
    points.forEach((pt) => ctx.fillRect(x(pt.t) - 1.5, y(pt.v) - 1.5, 3, 3));
  }

  /** The next 1, 2 or 5 times a power of ten. */
  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
  }

  // ---------------------------------------------------------------- app

  /** Page-wide state: server info, origins, server stats, the drop button. */
  const app = {
    info: null,
    serverStats: null,
    lastDrop: null,
    timerResolutionMs: null,
    pageProtocol: null,

    retryMs() { return (this.info && Number(this.info.retry_ms)) || 1000; },

    /**
     * The origin for a panel's choice: `h1` = http_url, `h2` = https_url,
     * `page` = the page's own origin (a proxy in front of the server).
     */
    originFor(choice) {
      if (choice === 'page') return location.origin;
      const raw = this.info && (choice === 'h2' ? this.info.https_url : this.info.http_url);
      if (!raw) return null;
      const u = new URL(raw);
      if (u.protocol === location.protocol && u.port === location.port) return location.origin;
      if (['0.0.0.0', '[::]'].includes(u.hostname)) u.hostname = location.hostname;
      return u.origin;
    },

    /** nextHopProtocol of a fresh fetch to `origin` (cross-origin needs Timing-Allow-Origin). */
    async probeNextHop(origin) {
      const url = `${origin}/info`;
      const res = await fetch(url, { cache: 'no-store' });
      await res.text();
      for (let i = 0; i < 20; i += 1) {
        const entries = performance.getEntriesByName(url);
        if (entries.length) return entries[entries.length - 1].nextHopProtocol;
        await new Promise((r) => setTimeout(r, 50));
      }
      return '';
    },

    async loadInfo() {
      try {
        const res = await fetch('/info', { cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        this.info = await res.json();
      } catch (e) {
        errorLog.report('GET /info', e);
        setTimeout(() => this.loadInfo(), 2000);
        return;
      }
      this.showInfo();
      document.body.dataset.ready = 'true';
      $('info').dataset.ready = 'true';
    },

    showInfo() {
      const i = this.info;
      $('info-http-url').textContent = i.http_url || '–';
      $('info-https-url').textContent = i.https_url || 'TLS off';
      $('info-rate-hz').textContent = String(i.rate_hz);
      $('info-replay').textContent = String(i.replay);
      $('info-retry-ms').textContent = String(i.retry_ms);
      $('info-keepalive-s').textContent = String(i.keepalive_s);
      const tls = Boolean(i.https_url);
      $('tls-note').dataset.tls = tls ? 'on' : 'off';
      $('tls-off').hidden = tls;
      $('tls-on').hidden = !tls;
      if (tls) {
        $('tls-chromium-flag').textContent = `--ignore-certificate-errors-spki-list=${i.spki_sha256 || '<spki_sha256>'}`;
        $('cert-path').textContent = i.cert_path || '(not reported)';
        $('spki-sha256').textContent = i.spki_sha256 || '(not reported)';
        $('tls-origin-link').href = `${this.originFor('h2')}/info`;
      }
      const pageIsH2 = location.origin === this.originFor('h2');
      // Served through a proxy (loadgen serve --edge): streams go the same way.
      const viaProxy = !pageIsH2 && location.origin !== this.originFor('h1');
      for (const panel of panels) {
        const select = panel.els.origin;
        select.querySelector('option[value="h2"]').disabled = !tls;
        if (!tls) select.querySelector('option[value="h2"]').textContent = 'HTTP/2 (TLS off)';
        select.querySelector('option[value="page"]').hidden = !viaProxy;
        select.value = viaProxy ? 'page' : pageIsH2 ? 'h2' : 'h1';
        panel.els.url.textContent = this.originFor(select.value) || '–';
      }
    },

    async pollStats() {
      try {
        const res = await fetch('/stats', { cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        this.serverStats = await res.json();
        $('server-stats').textContent = statsLine(this.serverStats);
        $('server-stats-json').textContent = JSON.stringify(this.serverStats, null, 1);
      } catch (e) {
        errorLog.report('GET /stats', e);
      }
    },

    token() { return $('admin-token').value.trim(); },

    async dropAll() {
      const at = performance.now();
      panels.forEach((p) => p.markDrop(at));
      chart.markDrop(at);
      const button = $('drop-all');
      button.disabled = true;
      const token = this.token();
      try {
        const res = await fetch(`/admin/drop${token ? `?token=${encodeURIComponent(token)}` : ''}`, { method: 'POST' });
        const body = await res.text();
        if (!res.ok) {
          const hint = res.status === 401 || res.status === 403 ? ' - enter the admin token' : '';
          throw new Error(`HTTP ${res.status} ${body.slice(0, 120)}${hint}`);
        }
        const dropped = Number(JSON.parse(body).dropped);
        this.lastDrop = { at: clockText(), dropped, error: null };
        $('drop-result').textContent = `${this.lastDrop.at}: dropped ${dropped} stream(s); recovery is shown per panel.`;
        if (dropped === 0) panels.forEach((p) => p.cancelDrop());
      } catch (e) {
        panels.forEach((p) => p.cancelDrop());
        this.lastDrop = { at: clockText(), dropped: null, error: String(e.message || e) };
        $('drop-result').textContent = `drop failed: ${this.lastDrop.error}`;
        errorLog.report('POST /admin/drop', e);
      } finally {
        button.disabled = false;
      }
    },
  };

  /** A failure towards the TLS origin is most often the self-signed certificate. */
  function certHint(origin) {
    return origin && origin.startsWith('https:') ? ' (is the certificate trusted? see the note above)' : '';
  }

  /** "open: sse_h1 1, ws_h1 1 · events sent 1234", from whatever /stats holds. */
  function statsLine(stats) {
    const open = stats.connections_open && typeof stats.connections_open === 'object'
      ? Object.entries(stats.connections_open).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
      : String(stats.connections_open ?? '?');
    return `open: ${open} · events sent ${stats.events_sent ?? '?'}`;
  }

  function measureTimerResolution() {
    let min = Infinity, prev = performance.now();
    for (let i = 0, changes = 0; i < 200000 && changes < 20; i += 1) {
      const t = performance.now();
      if (t !== prev) { min = Math.min(min, t - prev); prev = t; changes += 1; }
    }
    return Number.isFinite(min) ? min : null;
  }

  function loadToken() {
    const input = $('admin-token');
    try { input.value = localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage disabled: no memory */ }
    $('admin-form').addEventListener('submit', (e) => e.preventDefault());
    input.addEventListener('change', () => {
      try { localStorage.setItem(TOKEN_KEY, app.token()); } catch (e) { errorLog.report('localStorage', e); }
    });
  }

  function pageProtocol() {
    const nav = performance.getEntriesByType('navigation')[0];
    return nav ? nav.nextHopProtocol : null;
  }

  /** window.workbench: a read-only, live view; every read takes a fresh snapshot. */
  function exportWorkbench(sse, ws) {
    const view = Object.freeze({
      get ready() { return app.info !== null; },
      get info() { return app.info; },
      get pageProtocol() { return app.pageProtocol; },
      get timerResolutionMs() { return app.timerResolutionMs; },
      get serverStats() { return app.serverStats; },
      get lastDrop() { return app.lastDrop; },
      get errors() { return errorLog.texts(); },
      get sse() { return sse.snapshot(); },
      get ws() { return ws.snapshot(); },
    });
    Object.defineProperty(window, 'workbench', { value: view, writable: false, configurable: false });
  }

  const panels = [new Panel('sse', SseTransport, app), new Panel('ws', WsTransport, app)];
  const chart = new LatencyChart($('latency-chart'));
  exportWorkbench(panels[0], panels[1]);

  function render() {
    const now = performance.now();
    try {
      panels.forEach((p) => p.render(now));
      chart.draw(panels, now);
    } catch (e) {
      errorLog.report('render', e);
    }
  }

  app.timerResolutionMs = measureTimerResolution();
  $('timer-resolution').textContent = app.timerResolutionMs === null ? '?' : `${fmtMs(app.timerResolutionMs)} ms`;
  app.pageProtocol = pageProtocol();
  $('page-protocol').textContent = `${location.origin} (${app.pageProtocol || 'protocol unknown'})`;
  $('drop-all').addEventListener('click', () => app.dropAll());
  // The resource timing buffer is small and /stats polling fills it: empty it when full,
  // so the nextHopProtocol probes still find their entries an hour later.
  performance.addEventListener('resourcetimingbufferfull', () => performance.clearResourceTimings());
  loadToken();
  app.loadInfo();
  app.pollStats();
  setInterval(() => app.pollStats(), STATS_EVERY_MS);
  setInterval(render, RENDER_EVERY_MS);
  render();
})();
