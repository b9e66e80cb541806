//! Opens, ramps, holds and drains the connections of one wire, and measures
//! both sides while they are held.
//!
//! Every connection is one task. Measurements go to a few sharded
//! [`Recorder`]s (one HDR histogram set per shard, not per connection: a
//! histogram is a few hundred KiB, times 10,000 connections would be
//! gigabytes), locked once per event, uncontended in practice.
//!
//! At the end of the hold the driver asks the server for its newest id and
//! lets every connection read up to it: an id that never arrives is counted
//! as missing, so "nothing lost" is checked, not assumed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, FeedStream, Msg};
use crate::h2_pool::H2Pool;
use crate::probe::{ServerProbe, ServerSnapshot};
use crate::recorder::{unix_now_ns, IdTracker, Recorder};
use crate::target::Target;
use crate::wire::Wire;
use crate::{sse_client, ws_client};

/// Shards of recorders per wire run.
const SHARDS: usize = 16;
/// Streams Chromium puts on one HTTP/2 connection when the server announces
/// no limit (actix announces none): the default pool sizing follows it.
pub const BROWSER_H2_STREAMS: usize = 100;

/// What to run on one wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSpec {
    pub wire: Wire,
    pub connections: usize,
    /// New connections per second (0: all at once).
    pub ramp_per_s: f64,
    /// How long the connections are held and measured.
    pub hold: Duration,
    /// Pause between "all connected" and the held-memory reading.
    pub settle: Duration,
    /// HTTP/2 connections carrying the streams (None: browser-like default).
    pub h2_conns: Option<usize>,
    /// How long connections may take to read up to the final id.
    pub drain_timeout: Duration,
    /// Extra time allowed, beyond the ramp, for every connection to open.
    pub connect_timeout: Duration,
    /// Reconnect delay until the server sends `retry:`.
    pub retry: Duration,
}

impl WireSpec {
    /// HTTP/2 connections for this many streams: like a browser, 100 streams
    /// per connection, but at least 2 so both server workers are used.
    pub fn h2_pool_size(&self) -> usize {
        self.h2_conns.unwrap_or_else(|| {
            self.connections
                .div_ceil(BROWSER_H2_STREAMS)
                .max(2)
                .min(self.connections.max(1))
        })
    }
}

/// Live figures for a progress view.
#[derive(Debug, Default)]
pub struct Live {
    pub target: AtomicUsize,
    pub connected: AtomicUsize,
    pub errors: AtomicU64,
    shards: Mutex<Option<Arc<Vec<Mutex<Recorder>>>>>,
}

/// A moment of [`Live`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveSnapshot {
    pub target: usize,
    pub connected: usize,
    pub errors: u64,
    pub events: u64,
    pub p99_us: u64,
}

impl Live {
    pub fn snapshot(&self) -> LiveSnapshot {
        let mut s = LiveSnapshot {
            target: self.target.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            ..Default::default()
        };
        let shards = lock(&self.shards).clone();
        if let Some(shards) = shards {
            let mut h = crate::recorder::new_histogram();
            for shard in shards.iter() {
                let r = lock(shard);
                s.events += r.counters().events;
                let _ = h.add(r.latency_us());
            }
            s.p99_us = h.value_at_quantile(0.99);
        }
        s
    }
}

/// What the server cost while the connections were held.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerCost {
    pub rss_before: u64,
    pub rss_held: u64,
    pub rss_after: u64,
    /// (held - before) / connections: idle memory per connection (process RSS;
    /// kernel socket buffers are outside RSS).
    pub rss_per_connection: f64,
    pub cpu_us_hold: u64,
    pub cpu_us_per_event: f64,
}

/// What the load generator itself spent during the hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadgenCost {
    pub cpu_us_hold: u64,
    pub cpu_us_per_event: f64,
    pub rss_bytes: u64,
}

/// Everything measured on one wire.
#[derive(Debug)]
pub struct WireOutcome {
    pub spec: WireSpec,
    pub recorder: Recorder,
    pub opened_peak: usize,
    pub h2_connections: Option<u64>,
    pub protocols_seen: BTreeMap<String, u64>,
    pub hold_s: f64,
    pub events_in_hold: u64,
    pub bytes_in_hold: u64,
    /// Ids up to the final one that some connection never received.
    pub missing_at_end: u64,
    pub final_id: u64,
    pub server: Option<ServerCost>,
    pub loadgen: LoadgenCost,
    /// The first message of each kind of error, for the user.
    pub first_errors: BTreeMap<String, String>,
    /// Why the run did not do all that was asked (empty when it did).
    pub problems: Vec<String>,
}

/// Opens a stream on one wire.
struct Opener {
    wire: Wire,
    target: Arc<Target>,
    h2: Option<H2Pool>,
    sources: Vec<IpAddr>,
    url: Arc<str>,
}

impl Opener {
    fn new(wire: Wire, target: Arc<Target>, spec: &WireSpec) -> Result<Opener, String> {
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
            Wire::WsH1 => ws_client::open(self.target.http_addr, source, "/ws", last_id, &self.url)
                .await
                .map(FeedStream::Ws),
        }
    }
}

/// Shared by the connection tasks of one wire run.
struct Ctx {
    opener: Opener,
    shards: Arc<Vec<Mutex<Recorder>>>,
    live: Arc<Live>,
    stop: CancellationToken,
    drain: CancellationToken,
    drain_to: AtomicU64,
    retry: Duration,
    first_errors: Mutex<BTreeMap<String, String>>,
    protocols: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    async fn pause(&self, d: Duration) -> bool {
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
async fn connection(ctx: Arc<Ctx>, index: usize) -> u64 {
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
            Ok(Some(Msg::Retry(ms))) => *retry = Duration::from_millis(ms),
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

fn sum_counters(shards: &[Mutex<Recorder>]) -> (u64, u64) {
    shards.iter().fold((0, 0), |(e, b), s| {
        let r = lock(s);
        (e + r.counters().events, b + r.counters().bytes)
    })
}

/// Runs one wire: ramp, settle, hold, drain, close.
pub async fn run_wire(
    target: Arc<Target>,
    spec: WireSpec,
    probe: &ServerProbe,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> WireOutcome {
    let mut problems = Vec::new();
    let start_ns = unix_now_ns();
    let shards: Arc<Vec<Mutex<Recorder>>> = Arc::new(
        (0..SHARDS)
            .map(|_| Mutex::new(Recorder::with_start_unix_ns(start_ns)))
            .collect(),
    );
    live.target.store(spec.connections, Ordering::Relaxed);
    live.connected.store(0, Ordering::Relaxed);
    live.errors.store(0, Ordering::Relaxed);
    *lock(&live.shards) = Some(shards.clone());

    let before = snapshot(probe, &mut problems, "before connecting").await;
    let opener = match Opener::new(spec.wire, target, &spec) {
        Ok(o) => o,
        Err(msg) => {
            problems.push(msg);
            return outcome_without_run(spec, shards, problems);
        }
    };
    let ctx = Arc::new(Ctx {
        opener,
        shards: shards.clone(),
        live: live.clone(),
        stop: cancel.child_token(),
        drain: CancellationToken::new(),
        drain_to: AtomicU64::new(0),
        retry: spec.retry,
        first_errors: Mutex::new(BTreeMap::new()),
        protocols: Mutex::new(BTreeMap::new()),
    });

    // Ramp: connection i starts at i / ramp seconds.
    let mut tasks = tokio::task::JoinSet::new();
    let ramp_start = tokio::time::Instant::now();
    for i in 0..spec.connections {
        if spec.ramp_per_s > 0.0 {
            let at = ramp_start + Duration::from_secs_f64(i as f64 / spec.ramp_per_s);
            if at > tokio::time::Instant::now() {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
        }
        tasks.spawn(connection(ctx.clone(), i));
    }
    let ramp_time = if spec.ramp_per_s > 0.0 {
        Duration::from_secs_f64(spec.connections as f64 / spec.ramp_per_s)
    } else {
        Duration::ZERO
    };
    let deadline = ramp_start + ramp_time + spec.connect_timeout;
    while live.connected.load(Ordering::Relaxed) < spec.connections
        && tokio::time::Instant::now() < deadline
        && !ctx.stop.is_cancelled()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened_peak = live.connected.load(Ordering::Relaxed);
    if opened_peak < spec.connections {
        problems.push(format!(
            "{}: only {opened_peak} of {} connections opened within {:.1} s",
            spec.wire,
            spec.connections,
            (ramp_time + spec.connect_timeout).as_secs_f64()
        ));
    }

    // Settle, then read the held memory; hold and measure CPU on both sides.
    let mut hold_s = 0.0;
    let (mut events_in_hold, mut bytes_in_hold) = (0, 0);
    let mut server_cpu = None;
    let mut loadgen = LoadgenCost::default();
    let mut held = None;
    if opened_peak > 0 && !ctx.stop.is_cancelled() {
        let _ = ctx.pause(spec.settle).await;
        held = snapshot(probe, &mut problems, "with the connections held").await;
        let (e0, b0) = sum_counters(&shards);
        let own0 = server::stats::ProcessStats::now();
        let t0 = Instant::now();
        let _ = ctx.pause(spec.hold).await;
        hold_s = t0.elapsed().as_secs_f64();
        let own1 = server::stats::ProcessStats::now();
        let (e1, b1) = sum_counters(&shards);
        events_in_hold = e1 - e0;
        bytes_in_hold = b1 - b0;
        let end = snapshot(probe, &mut problems, "at the end of the hold").await;
        if let (Some(h), Some(e)) = (&held, &end) {
            server_cpu = Some(e.cpu_us.saturating_sub(h.cpu_us));
        }
        let own_cpu = own1.cpu_us().saturating_sub(own0.cpu_us());
        loadgen = LoadgenCost {
            cpu_us_hold: own_cpu,
            cpu_us_per_event: per(own_cpu, events_in_hold),
            rss_bytes: own1.rss_bytes,
        };
        // Drain: every connection reads up to the server's newest id.
        if let Some(e) = end {
            ctx.drain_to.store(e.last_id.max(1), Ordering::Release);
        }
    }
    let final_id = ctx.drain_to.load(Ordering::Acquire);
    ctx.drain.cancel();
    let drained = tokio::time::timeout(spec.drain_timeout, async {
        while !tasks.is_empty() && live.connected.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if drained.is_err() {
        problems.push(format!(
            "{}: {} connections had not received id {final_id} within {:.1} s of the end",
            spec.wire,
            live.connected.load(Ordering::Relaxed),
            spec.drain_timeout.as_secs_f64()
        ));
    }
    ctx.stop.cancel();
    let mut missing_at_end = 0;
    let join_all = async {
        while let Some(r) = tasks.join_next().await {
            missing_at_end += r.unwrap_or(0);
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), join_all)
        .await
        .is_err()
    {
        problems.push(format!(
            "{}: some connection tasks did not stop in 10 s",
            spec.wire
        ));
        tasks.abort_all();
    }
    if final_id == 0 {
        missing_at_end = 0;
    }

    // After: wait for the server to see the connections gone.
    let baseline = before.as_ref().map(|b| b.open).unwrap_or(0);
    let mut after = None;
    for _ in 0..100 {
        after = snapshot(probe, &mut Vec::new(), "").await;
        if after.as_ref().is_none_or(|a| a.open <= baseline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Errors that mean the run did not measure what was asked. Closed
    // streams and timeouts are reported but are part of what some scenarios
    // measure (drops, restarts); every other kind makes the run incomplete.
    let first_errors_now = lock(&ctx.first_errors).clone();
    for (kind, first) in &first_errors_now {
        if kind != "closed" && kind != "timeout" {
            let count: u64 = shards
                .iter()
                .map(|s| lock(s).counters().errors.get(kind).copied().unwrap_or(0))
                .sum();
            problems.push(format!("{count} `{kind}` error(s); the first: {first}"));
        }
    }
    if opened_peak > 0 && hold_s > 0.0 && events_in_hold == 0 {
        problems.push(format!(
            "{}: no event arrived while {opened_peak} connections were held",
            spec.wire
        ));
    }
    let server = match (&before, &held, &after, server_cpu) {
        (Some(b), Some(h), Some(a), Some(cpu)) => Some(ServerCost {
            rss_before: b.rss_bytes,
            rss_held: h.rss_bytes,
            rss_after: a.rss_bytes,
            rss_per_connection: h.rss_bytes.saturating_sub(b.rss_bytes) as f64
                / opened_peak.max(1) as f64,
            cpu_us_hold: cpu,
            cpu_us_per_event: per(cpu, events_in_hold),
        }),
        _ => None,
    };
    let mut recorder = Recorder::with_start_unix_ns(start_ns);
    for s in shards.iter() {
        recorder.merge(&lock(s));
    }
    *lock(&live.shards) = None;
    let ctx = Arc::try_unwrap(ctx).ok();
    let (first_errors, protocols_seen, h2_connections) = match ctx {
        Some(c) => (
            c.first_errors.into_inner().unwrap_or_default(),
            c.protocols.into_inner().unwrap_or_default(),
            c.opener.h2.as_ref().map(H2Pool::connections_made),
        ),
        None => Default::default(),
    };
    WireOutcome {
        spec,
        recorder,
        opened_peak,
        h2_connections,
        protocols_seen,
        hold_s,
        events_in_hold,
        bytes_in_hold,
        missing_at_end,
        final_id,
        server,
        loadgen,
        first_errors,
        problems,
    }
}

fn per(total: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        total as f64 / n as f64
    }
}

async fn snapshot(
    probe: &ServerProbe,
    problems: &mut Vec<String>,
    when: &str,
) -> Option<ServerSnapshot> {
    match probe.snapshot().await {
        Ok(s) => Some(s),
        Err(e) => {
            if !when.is_empty() {
                problems.push(format!("reading the server's /stats {when}: {e}"));
            }
            None
        }
    }
}

fn outcome_without_run(
    spec: WireSpec,
    shards: Arc<Vec<Mutex<Recorder>>>,
    problems: Vec<String>,
) -> WireOutcome {
    let start_ns = lock(&shards[0]).start_unix_ns();
    let mut recorder = Recorder::with_start_unix_ns(start_ns);
    for s in shards.iter() {
        recorder.merge(&lock(s));
    }
    WireOutcome {
        spec,
        recorder,
        opened_peak: 0,
        h2_connections: None,
        protocols_seen: BTreeMap::new(),
        hold_s: 0.0,
        events_in_hold: 0,
        bytes_in_hold: 0,
        missing_at_end: 0,
        final_id: 0,
        server: None,
        loadgen: LoadgenCost::default(),
        first_errors: BTreeMap::new(),
        problems,
    }
}
