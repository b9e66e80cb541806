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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use server::stats::ProcessStats;
use tokio_util::sync::CancellationToken;

use crate::connection::{connection, lock, Ctx, Opener};
use crate::h2_pool::H2Pool;
use crate::probe::{ServerProbe, ServerSnapshot};
use crate::recorder::{unix_now_ns, Recorder, RecorderSnapshot};
use crate::target::Target;
use crate::wire::Wire;

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
    /// Events and p99 reported by worker processes (when there are no shards here).
    pub remote_events: AtomicU64,
    pub remote_p99_us: AtomicU64,
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
            events: self.remote_events.load(Ordering::Relaxed),
            p99_us: self.remote_p99_us.load(Ordering::Relaxed),
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
    /// Load-generator processes that shared the connections.
    pub processes: usize,
    /// Latency of the events received during the hold only.
    pub hold_latency: Option<Histogram<u64>>,
}

/// The connections of one wire in this process, driven phase by phase:
/// [`start`](Self::start) ramps them, [`wait_connected`](Self::wait_connected),
/// [`counters`](Self::counters) while held, [`finish`](Self::finish) drains
/// and stops. [`run_wire`] drives one process; `workers` drives several.
pub struct WireRun {
    ctx: Arc<Ctx>,
    spec: WireSpec,
    ramp: Option<tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<u64>>>>,
    deadline: tokio::time::Instant,
    /// Connections open when [`wait_connected`](Self::wait_connected) returned.
    opened: usize,
    problems: Vec<String>,
}

/// What one process measured on one wire, ready to merge with others'.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub recorder: RecorderSnapshot,
    pub opened: usize,
    pub missing_at_end: u64,
    pub first_errors: BTreeMap<String, String>,
    pub protocols_seen: BTreeMap<String, u64>,
    pub h2_connections: Option<u64>,
    pub problems: Vec<String>,
}

impl WireRun {
    /// Starts ramping `spec.connections` connections, numbered from
    /// `first_index` (so several processes spread over source addresses).
    pub fn start(
        target: Arc<Target>,
        spec: WireSpec,
        live: Arc<Live>,
        cancel: CancellationToken,
        first_index: usize,
    ) -> Result<WireRun, String> {
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
        let opener = Opener::new(spec.wire, target, &spec)?;
        let ctx = Arc::new(Ctx {
            opener,
            shards,
            live,
            stop: cancel.child_token(),
            drain: CancellationToken::new(),
            drain_to: AtomicU64::new(0),
            retry: spec.retry,
            first_errors: Mutex::new(BTreeMap::new()),
            protocols: Mutex::new(BTreeMap::new()),
            running: AtomicUsize::new(0),
        });
        let ramp_time = if spec.ramp_per_s > 0.0 {
            Duration::from_secs_f64(spec.connections as f64 / spec.ramp_per_s)
        } else {
            Duration::ZERO
        };
        let start = tokio::time::Instant::now();
        let ramp = tokio::spawn(ramp(
            ctx.clone(),
            spec.connections,
            spec.ramp_per_s,
            first_index,
        ));
        Ok(WireRun {
            ctx,
            deadline: start + ramp_time + spec.connect_timeout,
            spec,
            ramp: Some(ramp),
            opened: 0,
            problems: Vec::new(),
        })
    }

    /// Waits until every connection is open or the connect deadline passes.
    pub async fn wait_connected(&mut self) -> usize {
        let live = &self.ctx.live;
        while live.connected.load(Ordering::Relaxed) < self.spec.connections
            && tokio::time::Instant::now() < self.deadline
            && !self.ctx.stop.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let opened = live.connected.load(Ordering::Relaxed);
        self.opened = opened;
        if opened < self.spec.connections {
            self.problems.push(format!(
                "{}: only {opened} of {} connections opened in time",
                self.spec.wire, self.spec.connections
            ));
        }
        opened
    }

    /// Events and bytes received so far.
    pub fn counters(&self) -> (u64, u64) {
        self.ctx.shards.iter().fold((0, 0), |(e, b), s| {
            let r = lock(s);
            (e + r.counters().events, b + r.counters().bytes)
        })
    }

    /// Every latency recorded so far, merged (to subtract the ramp's).
    pub fn latency(&self) -> Histogram<u64> {
        let mut h = crate::recorder::new_histogram();
        for shard in self.ctx.shards.iter() {
            // Same bounds everywhere, so adding cannot fail.
            let _ = h.add(lock(shard).latency_us());
        }
        h
    }

    /// Sleeps, or returns false if the run is cancelled meanwhile.
    pub async fn pause(&self, d: Duration) -> bool {
        self.ctx.pause(d).await
    }

    pub fn cancelled(&self) -> bool {
        self.ctx.stop.is_cancelled()
    }

    /// Lets every connection read up to `final_id` (0: none to wait for),
    /// then stops them all and gathers what they measured.
    pub async fn finish(mut self, final_id: u64) -> Finished {
        let ctx = self.ctx.clone();
        let opened = self.opened;
        ctx.drain_to.store(final_id, Ordering::Release);
        ctx.drain.cancel();
        // Every task, not just open streams: one between streams (a retry
        // pause after a drop) must still reach the final id.
        // With no final id (nothing was held) there is nothing to wait for.
        let limit = if final_id > 0 {
            self.spec.drain_timeout
        } else {
            Duration::ZERO
        };
        let drained = tokio::time::timeout(limit, async {
            while ctx.running.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        if drained.is_err() && final_id > 0 {
            self.problems.push(format!(
                "{}: {} connections had not received id {final_id} within {:.1} s of the end",
                self.spec.wire,
                ctx.running.load(Ordering::Acquire),
                self.spec.drain_timeout.as_secs_f64()
            ));
        }
        ctx.stop.cancel();
        let mut missing_at_end = 0;
        let handles = match self.ramp.take() {
            Some(r) => r.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let join_all = async {
            for h in handles {
                missing_at_end += h.await.unwrap_or(0);
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), join_all)
            .await
            .is_err()
        {
            self.problems.push(format!(
                "{}: some connection tasks did not stop in 10 s",
                self.spec.wire
            ));
        }
        if final_id == 0 {
            missing_at_end = 0;
        }
        let first_errors = lock(&ctx.first_errors).clone();
        // Errors that mean the run did not measure what was asked. Closed
        // streams and timeouts are reported but are part of what some
        // scenarios measure (drops, restarts); other kinds make it incomplete.
        let start_ns = lock(&ctx.shards[0]).start_unix_ns();
        let mut recorder = Recorder::with_start_unix_ns(start_ns);
        for s in ctx.shards.iter() {
            recorder.merge(&lock(s));
        }
        for (kind, first) in &first_errors {
            if kind != "closed" && kind != "timeout" {
                let count = recorder.counters().errors.get(kind).copied().unwrap_or(0);
                self.problems
                    .push(format!("{count} `{kind}` error(s); the first: {first}"));
            }
        }
        *lock(&ctx.live.shards) = None;
        let recorder = match recorder.snapshot() {
            Ok(s) => s,
            Err(e) => {
                self.problems
                    .push(format!("{}: storing the histograms: {e}", self.spec.wire));
                Recorder::with_start_unix_ns(start_ns)
                    .snapshot()
                    .unwrap_or_else(|_| unreachable!("an empty recorder always encodes"))
            }
        };
        let protocols_seen = lock(&ctx.protocols).clone();
        let h2_connections = ctx.opener.h2.as_ref().map(H2Pool::connections_made);
        Finished {
            recorder,
            opened,
            missing_at_end,
            first_errors,
            protocols_seen,
            h2_connections,
            problems: self.problems,
        }
    }
}

/// Starts connection `first_index + i` at `i / rate` seconds.
async fn ramp(
    ctx: Arc<Ctx>,
    n: usize,
    rate: f64,
    first_index: usize,
) -> Vec<tokio::task::JoinHandle<u64>> {
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        if rate > 0.0 {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if at > tokio::time::Instant::now() {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
        }
        ctx.running.fetch_add(1, Ordering::AcqRel);
        handles.push(tokio::spawn(connection(ctx.clone(), first_index + i)));
    }
    handles
}

/// Runs one wire in this process: ramp, settle, hold, drain, close, with
/// the server's figures read at each step.
pub async fn run_wire(
    target: Arc<Target>,
    spec: WireSpec,
    probe: &ServerProbe,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> WireOutcome {
    let mut problems = Vec::new();
    let before = snapshot(probe, &mut problems, "before connecting").await;
    let mut run = match WireRun::start(target, spec.clone(), live, cancel, 0) {
        Ok(r) => r,
        Err(msg) => {
            problems.push(msg);
            return WireOutcome::empty(spec, problems);
        }
    };
    let opened = run.wait_connected().await;
    let mut measured = Held::default();
    if opened > 0 && !run.cancelled() {
        let _ = run.pause(spec.settle).await;
        measured.held = snapshot(probe, &mut problems, "with the connections held").await;
        let (e0, b0) = run.counters();
        let lat0 = run.latency();
        let own0 = ProcessStats::now();
        let t0 = Instant::now();
        let _ = run.pause(spec.hold).await;
        measured.hold_s = t0.elapsed().as_secs_f64();
        let own1 = ProcessStats::now();
        let (e1, b1) = run.counters();
        measured.latency = hold_only(run.latency(), &lat0);
        measured.events = e1 - e0;
        measured.bytes = b1 - b0;
        measured.end = snapshot(probe, &mut problems, "at the end of the hold").await;
        measured.own_cpu_us = own1.cpu_us().saturating_sub(own0.cpu_us());
        measured.own_rss = own1.rss_bytes;
    }
    let final_id = measured.end.as_ref().map_or(0, |e| e.last_id.max(1));
    let finished = run.finish(final_id).await;
    let after = settle_after(probe, before.as_ref()).await;
    WireOutcome::assemble(spec, finished, measured, before, after, final_id, problems)
}

/// What was read while the connections were held.
#[derive(Debug, Default)]
pub struct Held {
    pub held: Option<ServerSnapshot>,
    pub end: Option<ServerSnapshot>,
    pub hold_s: f64,
    pub events: u64,
    pub bytes: u64,
    pub own_cpu_us: u64,
    pub own_rss: u64,
    /// Latencies of the events received during the hold only (the ramp's
    /// connection storm is left out).
    pub latency: Option<Histogram<u64>>,
}

/// `end` minus `start`: what was recorded in between.
pub fn hold_only(mut end: Histogram<u64>, start: &Histogram<u64>) -> Option<Histogram<u64>> {
    end.subtract(start).ok()?;
    Some(end)
}

/// Waits (up to 10 s) for the server to see the connections gone, then reads it.
pub async fn settle_after(
    probe: &ServerProbe,
    before: Option<&ServerSnapshot>,
) -> Option<ServerSnapshot> {
    let baseline = before.map_or(0, |b| b.open);
    let mut after = None;
    for _ in 0..100 {
        after = probe.snapshot().await.ok();
        if after.as_ref().is_none_or(|a| a.open <= baseline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    after
}

impl WireOutcome {
    fn empty(spec: WireSpec, problems: Vec<String>) -> WireOutcome {
        WireOutcome {
            spec,
            recorder: Recorder::new(Instant::now()),
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
            processes: 1,
            hold_latency: None,
        }
    }

    /// Puts the pieces of a wire run together (one process or several).
    pub fn assemble(
        spec: WireSpec,
        finished: Finished,
        measured: Held,
        before: Option<ServerSnapshot>,
        after: Option<ServerSnapshot>,
        final_id: u64,
        mut problems: Vec<String>,
    ) -> WireOutcome {
        problems.extend(finished.problems);
        let recorder = match Recorder::from_snapshot(&finished.recorder) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}: reading back the histograms: {e}", spec.wire));
                Recorder::new(Instant::now())
            }
        };
        if finished.opened > 0 && measured.hold_s > 0.0 && measured.events == 0 {
            problems.push(format!(
                "{}: no event arrived while {} connections were held",
                spec.wire, finished.opened
            ));
        }
        let server = match (&before, &measured.held, &after, &measured.end) {
            (Some(b), Some(h), Some(a), Some(e)) => Some(ServerCost {
                rss_before: b.rss_bytes,
                rss_held: h.rss_bytes,
                rss_after: a.rss_bytes,
                rss_per_connection: h.rss_bytes.saturating_sub(b.rss_bytes) as f64
                    / finished.opened.max(1) as f64,
                cpu_us_hold: e.cpu_us.saturating_sub(h.cpu_us),
                cpu_us_per_event: per(e.cpu_us.saturating_sub(h.cpu_us), measured.events),
            }),
            _ => None,
        };
        WireOutcome {
            recorder,
            opened_peak: finished.opened,
            h2_connections: finished.h2_connections,
            protocols_seen: finished.protocols_seen,
            hold_s: measured.hold_s,
            events_in_hold: measured.events,
            bytes_in_hold: measured.bytes,
            missing_at_end: finished.missing_at_end,
            final_id,
            server,
            loadgen: LoadgenCost {
                cpu_us_hold: measured.own_cpu_us,
                cpu_us_per_event: per(measured.own_cpu_us, measured.events),
                rss_bytes: measured.own_rss,
            },
            first_errors: finished.first_errors,
            problems,
            processes: 1,
            hold_latency: measured.latency,
            spec,
        }
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
            problems.push(format!("reading the server's /stats {when}: {e}"));
            None
        }
    }
}
