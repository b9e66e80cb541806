//! Opens, ramps, holds and drains the connections of one wire, and measures
//! both sides while they are held.
//!
//! Every connection is one task (`feed::connection`). Measurements go to a
//! few sharded [`Recorder`]s (one HDR histogram set per shard, not per
//! connection: a histogram is a few hundred KiB, times 10,000 connections
//! would be gigabytes), one shard per runtime thread (`live::local_shard`).
//! A connection takes its shard's lock once per batch of events, not per
//! event (`measure::RecordBatch`), and that lock is never contended.
//!
//! At the end of the hold the driver asks the server for its newest id and
//! lets every connection read up to it: an id that never arrives is counted
//! as missing, so "nothing lost" is checked, not assumed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edge::Edge;
use hdrhistogram::Histogram;
use server::event::unix_now_ns;
use tokio_util::sync::CancellationToken;

use super::feed::{connection, FeedCtx};
use super::gauge::ServerGauge;
use super::lanes;
use super::link::{HoldHooks, NoHooks};
use super::live::{lock, Live, Shards};
use super::outcome::{hold_only, own_usage, Finished, Held, WireOutcome};
use super::proxy::ProxySamples;
use super::source::Source;
use super::spec::WireSpec;
use crate::client::{ServerProbe, ServerSnapshot, Target};
use crate::measure::{LinkRecorder, Recorder};
use crate::result::new_histogram;

/// Shards of recorders per wire run.
const SHARDS: usize = 16;
/// How far before its stamp an event may arrive before the clocks are
/// called out as disagreeing (the run is then incomplete). Below it the
/// events are still counted and reported: a server's own clock reading
/// can be that coarse (Node's `performance.timeOrigin` is).
pub const CLOCK_TOLERANCE_US: u64 = 1_000;
/// How long connection tasks may take to stop once told.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// The connections of one wire in this process, driven phase by phase:
/// [`start`](Self::start) ramps them, [`wait_connected`](Self::wait_connected),
/// [`counters`](Self::counters) while held, [`finish`](Self::finish) drains
/// and stops. [`run_wire`] drives one process; `workers` drives several.
pub struct WireRun {
    ctx: Arc<FeedCtx>,
    spec: WireSpec,
    ramp: Option<tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<u64>>>>,
    deadline: tokio::time::Instant,
    /// Connections open when [`wait_connected`](Self::wait_connected) returned.
    opened: usize,
    problems: Vec<String>,
}

impl WireRun {
    /// Starts ramping `spec.connections` connections, numbered from
    /// `first_index` (so several processes spread over source addresses).
    pub fn start(
        source: &Source,
        spec: WireSpec,
        live: Arc<Live>,
        cancel: CancellationToken,
        first_index: usize,
    ) -> Result<WireRun, String> {
        spec.validate()?;
        let start_ns = unix_now_ns();
        let shards: Shards = Arc::new(
            (0..SHARDS)
                .map(|_| {
                    let mut r = Recorder::with_start_unix_ns(start_ns);
                    r.set_stall_after(spec.stall_after);
                    Mutex::new(r)
                })
                .collect(),
        );
        live.target.store(spec.connections, Ordering::Relaxed);
        live.connected.store(0, Ordering::Relaxed);
        live.errors.store(0, Ordering::Relaxed);
        live.watch(Some(shards.clone()));
        // Sized for every index up to this process's last (a shard's or a
        // worker's block starts at `first_index`), so blocks on one machine
        // share the source addresses round-robin like one process would.
        let opener = source.opener(&spec, first_index + spec.connections)?;
        let link_shards = match &spec.link {
            Some(timing) => (0..SHARDS)
                .map(|_| Mutex::new(LinkRecorder::new(timing)))
                .collect(),
            None => Vec::new(),
        };
        let ctx = Arc::new(FeedCtx {
            wire: spec.wire,
            opener,
            shards,
            live,
            stop: cancel.child_token(),
            drain: CancellationToken::new(),
            drain_to: AtomicU64::new(0),
            retry: spec.retry,
            first_errors: Mutex::new(BTreeMap::new()),
            protocols: Mutex::new(BTreeMap::new()),
            hello_protocol: if source.through_edge() {
                server::wire::Protocol::Http1.as_str()
            } else {
                spec.wire.expected_protocol()
            },
            client_protocols: Mutex::new(BTreeMap::new()),
            running: AtomicUsize::new(0),
            link: spec.link.clone(),
            link_shards,
            hold_start_ns: AtomicU64::new(0),
            carrier_base: (first_index as u64) << 32,
            next_carrier: AtomicU64::new(1),
            highest_id: AtomicU64::new(0),
            connections: spec.connections,
            started: Instant::now(),
            all_open_after_us: AtomicU64::new(0),
            stamp_shown: source.stamp_shown(),
        });
        let start = tokio::time::Instant::now();
        let ramp = tokio::spawn(ramp(ctx.clone(), spec.clone(), first_index));
        Ok(WireRun {
            ctx,
            deadline: start + spec.ramp_time() + spec.connect_timeout,
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
        let mut h = new_histogram();
        for shard in self.ctx.shards.iter() {
            // Same bounds everywhere, so adding cannot fail.
            let _ = h.add(lock(shard).latency_us());
        }
        h
    }

    /// The hold starts now (`unix_ns`): over a link, events are judged
    /// for stalls and outage recovery from here on.
    pub fn hold_started(&self, unix_ns: u64) {
        self.ctx.hold_start_ns.store(unix_ns, Ordering::Relaxed);
    }

    /// The highest id any connection has seen so far.
    pub fn highest_id(&self) -> u64 {
        self.ctx.highest_id.load(Ordering::Relaxed)
    }

    /// Sleeps, or returns false if the run is cancelled meanwhile.
    pub async fn pause(&self, d: Duration) -> bool {
        super::connection::pause(&self.ctx.stop, d).await
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
        if drained.is_err() && final_id > 0 && self.spec.saturation {
            tracing::info!(
                wire = %self.spec.wire,
                behind = ctx.running.load(Ordering::Acquire),
                "saturation step: connections still behind at the end are counted as lost"
            );
        } else if drained.is_err() && final_id > 0 {
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
        if tokio::time::timeout(STOP_LIMIT, join_all).await.is_err() {
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
        let c = recorder.counters();
        if c.negative_latency_max_us > CLOCK_TOLERANCE_US {
            self.problems.push(format!(
                "{} {}: {} events arrived before their send time, up to {:.3} ms early: the server's clock and this machine's disagree, so latency is off by at least that much (not clamped: those events have no latency)",
                self.spec.wire,
                ctx.opener.url(),
                c.negative_latency,
                c.negative_latency_max_us as f64 / 1000.0
            ));
        }
        let all_open = ctx.all_open_after_us.load(Ordering::Relaxed);
        ctx.live.watch(None);
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
        let client_protocols = lock(&ctx.client_protocols).clone();
        let h2_connections = ctx.opener.h2_connections();
        let network = ctx.link.as_ref().map(|timing| {
            let mut all = LinkRecorder::new(timing);
            for shard in &ctx.link_shards {
                all.merge(std::mem::take(&mut *lock(shard)));
            }
            all.result(timing)
        });
        Finished {
            recorder,
            opened,
            missing_at_end,
            first_errors,
            protocols_seen,
            client_protocols,
            h2_connections,
            all_open_after_us: (all_open > 0).then_some(all_open),
            problems: std::mem::take(&mut self.problems),
            network,
        }
    }
}

/// A run dropped before [`finish`](WireRun::finish) (an error on the way,
/// a cancelled driver) stops its connections: they run on the lanes,
/// which outlive any one runtime, so nothing else would.
impl Drop for WireRun {
    fn drop(&mut self) {
        self.ctx.stop.cancel();
    }
}

/// Starts connection `first_index + i` at `i / rate` seconds.
async fn ramp(
    ctx: Arc<FeedCtx>,
    spec: WireSpec,
    first_index: usize,
) -> Vec<tokio::task::JoinHandle<u64>> {
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections {
        if spec.ramp_per_s > 0.0 {
            // A checked spec's ramp ends within a day: the sum cannot overflow.
            let at = start + spec.ramp_offset(i);
            if at > tokio::time::Instant::now() {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
        }
        ctx.running.fetch_add(1, Ordering::AcqRel);
        let index = first_index + i;
        let lane_key = ctx.opener.placement_key(index);
        handles.push(lanes::spawn(lane_key, connection(ctx.clone(), index)));
    }
    handles
}

/// Runs one wire of the feed server in this process: ramp, settle, hold,
/// drain, close, with the server's `/stats` (and the edge proxy's figures,
/// if there is one) read at each step.
pub async fn run_wire(
    target: Arc<Target>,
    spec: WireSpec,
    probe: &ServerProbe,
    proxy: Option<&Edge>,
    live: Arc<Live>,
    cancel: CancellationToken,
) -> WireOutcome {
    let gauge = ServerGauge::Stats(Box::new(probe.clone()));
    let source = Source::Feed(target);
    run_wire_on(&source, spec, &gauge, proxy, live, cancel, &NoHooks).await
}

/// Runs one wire against any source in this process, with the server's
/// figures read through `gauge` (and the edge proxy's, if there is one) at
/// each step. The final id every connection must reach is the server's
/// newest (from `/stats`), or else the highest any connection saw (0
/// without ids: nothing to drain). `hooks` are called when the hold starts
/// and ends (over an emulated link: the outage schedule, the emulator's
/// figures).
pub async fn run_wire_on(
    source: &Source,
    spec: WireSpec,
    gauge: &ServerGauge,
    proxy: Option<&Edge>,
    live: Arc<Live>,
    cancel: CancellationToken,
    hooks: &dyn HoldHooks,
) -> WireOutcome {
    let mut problems = Vec::new();
    let mut proxied = ProxySamples::default();
    ProxySamples::take(&mut proxied.before, proxy);
    let before = snapshot(gauge, &mut problems, "before connecting").await;
    // The lanes' runtimes are the process's, not the connections'.
    lanes::start_once();
    let (_, own_rss_before) = own_usage();
    let mut run = match WireRun::start(source, spec.clone(), live, cancel, spec.first_index) {
        Ok(r) => r,
        Err(msg) => {
            problems.push(msg);
            return WireOutcome::empty(spec, problems);
        }
    };
    let opened = run.wait_connected().await;
    let mut measured = Held {
        own_rss_before,
        ..Held::default()
    };
    if opened > 0 && !run.cancelled() {
        let _ = run.pause(spec.settle).await;
        if let Some(at) = spec.hold_at_unix_ns {
            if let Some(late) = super::shard::wait_until(at).await {
                problems.push(super::shard::late_start(late));
            }
        }
        measured.held = snapshot(gauge, &mut problems, "with the connections held").await;
        ProxySamples::take(&mut proxied.held, proxy);
        let (e0, b0) = run.counters();
        let lat0 = run.latency();
        let (cpu0, _) = own_usage();
        let t0 = Instant::now();
        run.hold_started(unix_now_ns());
        hooks.hold_started();
        let _ = run.pause(spec.hold).await;
        hooks.hold_ended();
        measured.hold_s = t0.elapsed().as_secs_f64();
        let (cpu1, rss1) = own_usage();
        let (e1, b1) = run.counters();
        measured.latency = hold_only(run.latency(), &lat0);
        measured.events = e1 - e0;
        measured.bytes = b1 - b0;
        measured.end = snapshot(gauge, &mut problems, "at the end of the hold").await;
        ProxySamples::take(&mut proxied.end, proxy);
        measured.own_cpu_us = cpu1.saturating_sub(cpu0);
        measured.own_rss = rss1;
    }
    let final_id = if gauge.knows_newest_id() {
        measured.end.as_ref().map_or(0, |e| e.last_id.max(1))
    } else {
        run.highest_id()
    };
    let finished = run.finish(final_id).await;
    let after = gauge.settle_after(before.as_ref()).await;
    ProxySamples::take(&mut proxied.after, proxy);
    measured.proxy = proxied;
    let mut outcome =
        WireOutcome::assemble(spec, finished, measured, before, after, final_id, problems);
    outcome.missing_is_lost = gauge.knows_newest_id();
    outcome
}

async fn snapshot(
    gauge: &ServerGauge,
    problems: &mut Vec<String>,
    when: &str,
) -> Option<ServerSnapshot> {
    match gauge.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("reading the server's figures {when}: {e}"));
            None
        }
    }
}
