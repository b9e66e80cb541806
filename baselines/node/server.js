'use strict';
// The seed team's feed server, written the way a team writes it: Express 5
// keeps a Set of open SSE responses and one setInterval writes each tick to
// every one of them (`res.write`); a Node `ws` server on the same HTTP server
// broadcasts the same JSON to every WebSocket (`wss.clients.forEach`).
//
// This is a reference point for the workbench, not an optimised server: no
// batching and no backpressure beyond what Express and ws do by default (a
// client that stops reading is buffered in memory, as in production code
// written this way). The only departures from the plainest code are the ones
// a fair measurement needs:
// - each event carries its *scheduled* time (`sent_unix_ns`, nanoseconds
//   since the Unix epoch), so a late timer shows as latency at the client
//   instead of hiding it;
// - a late setInterval sends every tick that fell due, so the rate holds;
// - `sent_unix_ns` is written from a BigInt: a JS number above 2^53 would
//   round the nanoseconds.
//
// Usage: node server.js [--port 8082] [--host 127.0.0.1] [--rate 1]
//        [--replay 1024] [--retry-ms 1000] [--ignore-stdin]
// Prints one JSON line {"port":N,"pid":P} on stdout once listening; exits on
// SIGTERM, SIGINT, or when stdin closes (unless --ignore-stdin).

const http = require('node:http');
const { parseArgs } = require('node:util');
const express = require('express');
const { WebSocketServer, WebSocket } = require('ws');

function fail(message) {
  console.error(`baseline-node: ${message}`);
  process.exit(2);
}

function readOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '8082' },
        host: { type: 'string', default: '127.0.0.1' },
        rate: { type: 'string', default: '1' },
        replay: { type: 'string', default: '1024' },
        'retry-ms': { type: 'string', default: '1000' },
        'ignore-stdin': { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    fail(`${err.message} (usage: node server.js --port N --rate HZ)`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(`--port must be an integer from 0 to 65535, got \`${values.port}\``);
  }
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0 || rate > 1e6) {
    fail(`--rate must be a number of events per second above 0 and at most 1000000, got \`${values.rate}\``);
  }
  const replay = Number(values.replay);
  if (!Number.isInteger(replay) || replay < 0) {
    fail(`--replay must be a whole number of events, got \`${values.replay}\``);
  }
  const retryMs = Number(values['retry-ms']);
  if (!Number.isInteger(retryMs) || retryMs < 0) {
    fail(`--retry-ms must be a whole number of milliseconds, got \`${values['retry-ms']}\``);
  }
  return { port, host: values.host, rate, replay, retryMs, ignoreStdin: values['ignore-stdin'] };
}

const options = readOptions();

// The feed's clock: tick `id` is due `id` periods after start, on the
// monotonic clock; its stamp is the wall clock at start plus the same offset.
const periodNs = BigInt(Math.max(1, Math.round(1e9 / options.rate)));
// The wall clock at start, read at the edge of a millisecond so the
// monotonic clock is anchored to it within microseconds. Not
// `performance.timeOrigin + performance.now()`: on a busy machine that was
// measured up to 11 ms ahead of the system clock, which made events
// arrive "before" they were sent.
const edgeMs = Date.now();
let startMs = edgeMs;
while (startMs === edgeMs) startMs = Date.now();
const startMonoNs = process.hrtime.bigint();
const startUnixNs = BigInt(startMs) * 1_000_000n;
let lastId = 0;

// The last few ticks, so a client that reconnects with Last-Event-ID gets
// what it missed.
const recent = [];

function rfc3339(unixNs) {
  const seconds = new Date(Number(unixNs / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  const nanos = (unixNs % 1_000_000_000n).toString().padStart(9, '0');
  return `${seconds}.${nanos}Z`;
}

function tickJson(id, sentUnixNs) {
  // Written by hand because JSON.stringify cannot write a BigInt.
  return `{"type":"tick","id":${id},"server_time":"${rfc3339(sentUnixNs)}","sent_unix_ns":${sentUnixNs}}`;
}

function gapJson(gap) {
  return JSON.stringify({ type: 'gap', from: gap.from, to: gap.to });
}

// A resume id we can serve: a decimal id the feed has made. Anything else
// (absent, malformed, from an earlier run of the server) starts live.
function parseLastId(raw) {
  if (raw === undefined || raw === null) return null;
  const text = String(raw).trim();
  if (!/^\d+$/.test(text)) return null;
  const id = Number(text);
  return Number.isSafeInteger(id) && id <= lastId ? id : null;
}

// What a resuming client missed: the ticks still held, and a gap naming
// the ids too old to replay, so nothing is skipped silently.
function missedSince(last) {
  if (last === null) return { gap: null, events: [] };
  const first = recent.length > 0 ? recent[0].id : lastId + 1;
  const gap = last + 1 < first ? { from: last + 1, to: Math.min(first - 1, lastId) } : null;
  return { gap, events: recent.filter((event) => event.id > last) };
}

const app = express();
const sseClients = new Set();

app.get('/sse', (req, res) => {
  res.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  res.write(`retry: ${options.retryMs}\n\n`);
  const { gap, events } = missedSince(parseLastId(req.get('Last-Event-ID') ?? req.query.lastEventId));
  if (gap) res.write(`id: ${gap.to}\nevent: gap\ndata: ${gapJson(gap)}\n\n`);
  for (const event of events) res.write(`id: ${event.id}\ndata: ${event.json}\n\n`);
  sseClients.add(res);
  req.on('close', () => sseClients.delete(res));
});

const server = http.createServer(app);
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const query = new URL(req.url, 'http://localhost').searchParams;
  const { gap, events } = missedSince(parseLastId(query.get('lastEventId')));
  if (gap) ws.send(gapJson(gap));
  for (const event of events) ws.send(event.json);
  // Without a listener, a peer's malformed frame would crash the process.
  ws.on('error', (err) => console.error(`baseline-node: websocket: ${err.message}`));
});

function tick() {
  const elapsedNs = process.hrtime.bigint() - startMonoNs;
  // setInterval fires late under load: send every tick that is due, each
  // stamped with its scheduled time.
  while (BigInt(lastId + 1) * periodNs <= elapsedNs) {
    lastId += 1;
    const json = tickJson(lastId, startUnixNs + BigInt(lastId) * periodNs);
    recent.push({ id: lastId, json });
    if (recent.length > options.replay) recent.shift();
    const frame = `id: ${lastId}\ndata: ${json}\n\n`;
    for (const res of sseClients) res.write(frame);
    wss.clients.forEach((client) => {
      if (client.readyState === WebSocket.OPEN) client.send(json);
    });
  }
}

const timer = setInterval(tick, Math.max(1, 1000 / options.rate));

let stopping = false;
function shutdown(why) {
  if (stopping) return;
  stopping = true;
  console.error(`baseline-node: stopping (${why}) after ${lastId} ticks`);
  clearInterval(timer);
  for (const res of sseClients) res.end();
  for (const client of wss.clients) client.close(1001, 'server shutting down');
  wss.close();
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  // Peers that do not answer the close in time are not waited for.
  setTimeout(() => process.exit(0), 1000).unref();
}

server.on('error', (err) => {
  console.error(`baseline-node: listening on ${options.host}:${options.port}: ${err.message}`);
  process.exit(1);
});

server.listen(options.port, options.host, () => {
  console.log(JSON.stringify({ port: server.address().port, pid: process.pid }));
});

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (!options.ignoreStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin failed'));
  process.stdin.resume();
}
