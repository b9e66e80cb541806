// The shared-stream workaround: one EventSource in a SharedWorker, every tab
// of this origin that joins gets its events. However many tabs, one
// connection of the browser's 6 per host.
//
// Protocol, over each tab's MessagePort:
//   tab -> worker  {type: 'join', url} | {type: 'leave'}
//   worker -> tab  {type: 'event', name, data, tabs} | {type: 'status', state, tabs, url}
'use strict';

const ports = new Set();
let source = null;
let sourceUrl = null;
let state = 'idle';

function broadcast(message) {
  for (const port of ports) port.postMessage(message);
}

function status() {
  broadcast({ type: 'status', state, tabs: ports.size, url: sourceUrl });
}

function ensureSource(url) {
  if (source) return;
  sourceUrl = url;
  state = 'connecting';
  source = new EventSource(url);
  source.addEventListener('open', () => { state = 'open'; status(); });
  source.addEventListener('error', () => {
    state = source && source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
    status();
  });
  for (const name of ['hello', 'tick', 'gap']) {
    source.addEventListener(name, (e) => broadcast({ type: 'event', name, data: e.data, tabs: ports.size }));
  }
}

function leave(port) {
  ports.delete(port);
  if (ports.size === 0 && source) {
    // Nobody listens: let the connection go back to the pool.
    source.close();
    source = null;
    state = 'idle';
  }
  status();
}

self.addEventListener('connect', (e) => {
  const port = e.ports[0];
  port.addEventListener('message', (m) => {
    const msg = m.data || {};
    if (msg.type === 'join') {
      ports.add(port);
      ensureSource(msg.url);
      status();
    } else if (msg.type === 'leave') {
      leave(port);
    }
  });
  port.start();
});
