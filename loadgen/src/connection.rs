//! One connection's life: open a stream on its wire, read and record every
//! message, reconnect with resume when the stream breaks, and stop once it
//! has read up to the final id (or the run stops).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, FeedStream, Msg};
use crate::driver::{Live, WireSpec};
use crate::h2_pool::H2Pool;
use crate::recorder::{IdTracker, Recorder};
use crate::target::Target;
use crate::wire::Wire;
use crate::{sse_client, ws_client};

/// Opens a stream on one wire.
pub struct Opener {
    wire: Wire,
    target: Arc<Target>,
    pub h2: Option<H2Pool>,
    sources: Vec<IpAddr>,
    url: Arc<str>,
}

impl Opener {
    pub fn new(wire: Wire, target: Arc<Target>, spec: &WireSpec) -> Result<Opener, String> {
        let sources = target.sources(spec.connections);
        let (h2, url) = match wire {
            Wire::SseH1 => (None, format!("{}/sse", target.http_url)),
            Wire::WsH1 => (None, format!("ws://{}/ws", target.http_addr)),
            Wire::SseH2c => {
                let pool = H2Pool::new(target.http_addr, None, "/sse", spec.h2_pool_size());
                let url = pool.url().to_string();
                (Some(pool), url)
            }
            Wire::SseH2 => {
                let tls = target.tls.as_ref().ok_or(
                    "sse-h2 needs the TLS listener: give --tls-target https://host:port (the embedded server has one unless --no-tls)",
                )?;
                let pool = H2Pool::new(tls.addr, Some(tls.h2.clone()), "/sse", spec.h2_pool_size());
                let url = pool.url().to_string();
                (Some(pool), url)
            }
            Wire::WsH2 | Wire::WsH2c => {
                return Err(format!(
                "{wire}: WebSocket over HTTP/2 (RFC 8441) is not supported by this load generator"
            ))
            }
        };
        Ok(Opener {
            wire,
            target,
            h2,
            sources,
            url: url.into(),
        })
    }

    async fn open(&self, index: usize, last_id: Option<u64>) -> Result<FeedStream, ClientError> {
        let source = (!self.sources.is_empty()).then(|| self.sources[index % self.sources.len()]);
        match self.wire {
            Wire::SseH1 => {
                sse_client::open_h1(self.target.http_addr, source, "/sse", last_id, &self.url)
                    .await
                    .map(FeedStream::Sse)
            }
            Wire::SseH2 | Wire::SseH2c => self
                .h2
                .as_ref()
                .expect("an h2 wire always has a pool")
                .open(index, last_id)
                .await
                .map(FeedStream::Sse),
            Wire::WsH1 | Wire::WsH2 | Wire::WsH2c => {
                ws_client::open(self.target.http_addr, source, "/ws", last_id, &self.url)
                    .await
                    .map(FeedStream::Ws)
            }
        }
    }
}

/// Shared by the connection tasks of one wire run.
pub struct Ctx {
    pub opener: Opener,
    pub shards: Arc<Vec<Mutex<Recorder>>>,
    pub live: Arc<Live>,
    pub stop: CancellationToken,
    pub drain: CancellationToken,
    pub drain_to: AtomicU64,
    pub retry: Duration,
    pub first_errors: Mutex<BTreeMap<String, String>>,
    pub protocols: Mutex<BTreeMap<String, u64>>,
    /// Connection tasks not yet finished, between streams included.
    pub running: std::sync::atomic::AtomicUsize,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Recorders hold plain counters: a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    fn error(&self, shard: &Mutex<Recorder>, e: &ClientError) {
        let kind = e.kind();
        lock(shard).record_error(kind);
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_errors)
            .entry(kind.to_string())
            .or_insert_with(|| format!("{}: {e}", self.opener.wire));
    }

    /// Sleeps, or returns false if the run stops meanwhile.
    pub async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    fn caught_up(&self, ids: &IdTracker) -> bool {
        let to = self.drain_to.load(Ordering::Acquire);
        to > 0 && ids.last_seen().is_some_and(|l| l >= to)
    }
}

/// How a held stream ended.
enum End {
    /// The run is over for this connection.
    Done,
    /// The stream broke: reconnect (with resume) after the retry delay.
    Broken,
}

/// One connection, reconnecting with resume until the run stops. Returns
/// how many ids up to the final one it never received.
pub async fn connection(ctx: Arc<Ctx>, index: usize) -> u64 {
    let shard = &ctx.shards[index % ctx.shards.len()];
    let mut ids = IdTracker::new();
    let mut retry = ctx.retry;
    let mut failures: u32 = 0;
    let mut connected_before = false;
    loop {
        if ctx.stop.is_cancelled() || ctx.caught_up(&ids) {
            break;
        }
        let started = Instant::now();
        let opened = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => break,
            r = ctx.opener.open(index, ids.last_seen()) => r,
        };
        let stream = match opened {
            Ok(s) => s,
            Err(e) => {
                ctx.error(shard, &e);
                failures = failures.saturating_add(1);
                let backoff = retry
                    .saturating_mul(1 << failures.min(3))
                    .min(Duration::from_secs(5));
                if !ctx.pause(backoff).await {
                    break;
                }
                continue;
            }
        };
        failures = 0;
        {
            let mut r = lock(shard);
            r.record_connect(started.elapsed());
            if connected_before {
                r.record_reconnect(true);
            }
        }
        connected_before = true;
        ctx.live.connected.fetch_add(1, Ordering::Relaxed);
        let end = hold(&ctx, shard, stream, &mut ids, &mut retry, started).await;
        ctx.live.connected.fetch_sub(1, Ordering::Relaxed);
        match end {
            End::Done => break,
            End::Broken => {
                if !ctx.pause(retry).await {
                    break;
                }
            }
        }
    }
    ctx.running.fetch_sub(1, Ordering::AcqRel);
    let to = ctx.drain_to.load(Ordering::Acquire);
    match ids.last_seen() {
        Some(last) if to > last => to - last,
        None if to > 0 => 1, // never received anything: at least the final id is missing
        _ => 0,
    }
}

/// Reads one open stream until the run ends or the stream breaks.
async fn hold(
    ctx: &Ctx,
    shard: &Mutex<Recorder>,
    mut stream: FeedStream,
    ids: &mut IdTracker,
    retry: &mut Duration,
    started: Instant,
) -> End {
    let mut first_tick = true;
    let mut draining = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => return End::Done,
            _ = ctx.drain.cancelled(), if !draining => {
                draining = true;
                if ctx.caught_up(ids) {
                    stream.close().await;
                    return End::Done;
                }
                continue;
            }
            m = stream.next() => m,
        };
        match next {
            Ok(Some(Msg::Tick {
                id,
                sent_unix_ns,
                recv_unix_ns,
                bytes,
            })) => {
                let mut r = lock(shard);
                r.record_event_with(ids, id, sent_unix_ns, recv_unix_ns, bytes);
                if first_tick {
                    first_tick = false;
                    r.record_first_event(started.elapsed());
                }
            }
            Ok(Some(Msg::Gap { from, to })) => lock(shard).record_gap_with(ids, from, to),
            Ok(Some(Msg::KeepAlive)) => lock(shard).record_keepalive(),
            // At least 10 ms: a server saying `retry: 0` must not make a busy loop.
            Ok(Some(Msg::Retry(ms))) => *retry = Duration::from_millis(ms.max(10)),
            Ok(Some(Msg::Hello { protocol, .. })) => {
                *lock(&ctx.protocols).entry(protocol.clone()).or_default() += 1;
                let want = ctx.opener.wire.expected_protocol();
                if protocol != want {
                    let e = ClientError::protocol(
                        &ctx.opener.url,
                        format!("the server negotiated {protocol}, expected {want}"),
                    );
                    ctx.error(shard, &e);
                }
            }
            Ok(None) => {
                if draining && ctx.caught_up(ids) {
                    return End::Done;
                }
                let e = ClientError::Closed {
                    url: ctx.opener.url.clone(),
                };
                ctx.error(shard, &e);
                return End::Broken;
            }
            Err(e) => {
                ctx.error(shard, &e);
                return End::Broken;
            }
        }
        if draining && ctx.caught_up(ids) {
            stream.close().await;
            return End::Done;
        }
    }
}
