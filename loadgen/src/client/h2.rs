//! HTTP/2 to one origin, TLS (ALPN h2) or cleartext prior knowledge (h2c):
//! a fixed set of connections, each carrying many streams and requests.
//!
//! One HTTP/2 connection is served by one server worker, so putting every
//! stream on one connection would measure one core: streams are spread over
//! the pool round-robin, and the result reports how many connections there
//! were. A browser's one connection per origin is a pool of one.
//!
//! Each connection's I/O goes through a [`SettingsSniffer`], which reads the
//! server's first SETTINGS frame as it passes: hyper does not tell whether
//! it has arrived, and a WebSocket over HTTP/2 must not be tried before the
//! server has said it accepts one (SETTINGS_ENABLE_CONNECT_PROTOCOL).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edge::{H2Settings, Preface, SettingsSniffer};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{watch, Mutex};

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::request::Body;

/// How long a server may take to send its SETTINGS after the handshake.
const SETTINGS_WAIT: Duration = Duration::from_secs(10);

/// One live connection: its sender and what its server announced.
#[derive(Clone)]
struct Slot {
    send: SendRequest<Body>,
    preface: watch::Receiver<Preface>,
}

/// A pool of HTTP/2 connections to one origin.
pub struct H2Pool {
    slots: Vec<Mutex<Option<Slot>>>,
    /// The serial number (1, 2, ...) of each slot's current connection, 0
    /// before its first: which TCP connection carries which stream.
    serials: Vec<AtomicU64>,
    /// The origin (its TLS settings say h2 or h2c) and the streams' path.
    endpoint: Endpoint,
    dialer: Dialer,
    connections_made: AtomicU64,
}

impl H2Pool {
    /// A pool of `size` connections (made lazily, remade when they die).
    pub fn new(endpoint: Endpoint, dialer: Dialer, size: usize) -> H2Pool {
        H2Pool {
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            serials: (0..size.max(1)).map(|_| AtomicU64::new(0)).collect(),
            endpoint,
            dialer,
            connections_made: AtomicU64::new(0),
        }
    }

    /// The endpoint the pool was made for (requests may use other paths).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The slot (0 to size − 1) whose connection carries requests number
    /// `index`.
    pub fn slot_of(&self, index: usize) -> usize {
        index % self.slots.len()
    }

    /// HTTP/2 connections opened so far (remade ones included).
    pub fn connections_made(&self) -> u64 {
        self.connections_made.load(Ordering::Relaxed)
    }

    /// The serial number of the connection that carries requests number
    /// `index` now (0 if it has none yet); unique within the pool, a
    /// re-made connection gets a new one.
    pub fn connection_of(&self, index: usize) -> u64 {
        self.serials[self.slot_of(index)].load(Ordering::Relaxed)
    }

    /// Connects every slot now, so the first requests do not pay for the
    /// handshake; the errors, if any.
    pub async fn connect_all(&self) -> Vec<ClientError> {
        let mut errors = Vec::new();
        for slot in 0..self.slots.len() {
            if let Err(e) = self.sender(slot).await {
                errors.push(e);
            }
        }
        errors
    }

    /// Sends a request on connection `index % size`, connecting first if
    /// that connection is not up; the response head.
    pub async fn send(
        &self,
        index: usize,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let url = self.endpoint.shown();
        let mut send = self.sender(self.slot_of(index)).await?.send;
        send.ready().await.map_err(|e| ClientError::http(url, e))?;
        send.send_request(req)
            .await
            .map_err(|e| ClientError::http(url, e))
    }

    /// What the server of connection `index % size` announced in its
    /// SETTINGS (connecting first if needed; waits for the frame).
    pub async fn settings(&self, index: usize) -> Result<H2Settings, ClientError> {
        let mut preface = self.sender(self.slot_of(index)).await?.preface;
        let url = self.endpoint.shown();
        match tokio::time::timeout(SETTINGS_WAIT, edge::announced(&mut preface)).await {
            Ok(Preface::Settings(s)) => Ok(s),
            Ok(_) => Err(ClientError::protocol(
                url,
                "the server's HTTP/2 connection did not start with a SETTINGS frame",
            )),
            Err(_) => Err(ClientError::Timeout {
                url: url.clone(),
                what: "waiting for the server's HTTP/2 SETTINGS",
                secs: SETTINGS_WAIT.as_secs_f64(),
            }),
        }
    }

    /// The slot's live connection, connecting first if it has none.
    async fn sender(&self, slot: usize) -> Result<Slot, ClientError> {
        let mut guard = self.slots[slot].lock().await;
        if let Some(s) = guard.as_ref() {
            if !s.send.is_closed() {
                return Ok(s.clone());
            }
        }
        let (fresh, serial) = self.connect(slot).await?;
        *guard = Some(fresh.clone());
        self.serials[slot].store(serial, Ordering::Relaxed);
        Ok(fresh)
    }

    /// A new connection for `slot`, and its serial number.
    async fn connect(&self, slot: usize) -> Result<(Slot, u64), ClientError> {
        // The dialer checks ALPN h2 over TLS; h2c has no negotiation.
        let io = self.dialer.connect(&self.endpoint, slot).await?;
        let (io, preface) = SettingsSniffer::new(io);
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ClientError::http(self.endpoint.shown(), e))?;
        tokio::spawn(async move {
            // Its streams see the error; this is only for the log.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/2 connection ended");
            }
        });
        let serial = self.connections_made.fetch_add(1, Ordering::Relaxed) + 1;
        Ok((Slot { send, preface }, serial))
    }
}
