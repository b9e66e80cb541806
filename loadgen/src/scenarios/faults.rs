//! Faults: reconnect and resume under drops, with nothing lost.
//!
//! Each wire runs two phases against a server with a small replay ring:
//!
//! - `within`: every `drop_every_s` the server drops `drop_fraction` of the
//!   streams (`POST /admin/drop?fraction=`); clients reconnect after the
//!   retry delay and resume (SSE `Last-Event-ID`, WS `lastEventId`) well
//!   inside the replay window. Target: 0 lost, 0 duplicated, no gap.
//! - `beyond`: the server "restarts" (`POST /admin/restart`, streams refused
//!   with 503 for `outage_ms`, longer than the ring holds), so resuming
//!   clients are past the window: the server sends gap events, and they are
//!   counted as loss (`gap_ids`), never hidden.
//!
//! Per connection the ids are tracked ([`IdTracker`]) and, independently,
//! the true gap across every break is measured (first id after the break
//! minus the last one before it, minus one): the reported loss
//! (`lost + gap_ids`) must equal it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::http::call;
use super::{ScenarioServer, Timing};
use crate::client::{ClientError, FeedStream, Msg};
use crate::h2_pool::H2Pool;
use crate::recorder::{HistogramSummary, IdOutcome, IdTracker};
use crate::result::ScenarioResult;
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::target::Target;
use crate::wire::Wire;
use crate::{sse_client, ws_client};

/// What the faults scenario runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    pub wires: Vec<Wire>,
    /// Streams per wire.
    pub connections: usize,
    /// Feed rate (events/s).
    pub rate_hz: f64,
    /// The server's replay ring (events): the resume window.
    pub replay: usize,
    /// Reconnect delay (the SSE `retry:` the server sends, and the WS client's).
    pub retry_ms: u64,
    /// How long the `within` phase drops streams.
    pub duration_s: f64,
    pub drop_fraction: f64,
    pub drop_every_s: f64,
    /// The `beyond` phase's outage (default: twice the ring's span).
    pub outage_ms: Option<u64>,
    /// Run the `beyond` phase.
    pub beyond: bool,
    pub drain_timeout_s: f64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            wires: Wire::ALL.to_vec(),
            connections: 50,
            rate_hz: 50.0,
            replay: 32,
            retry_ms: 100,
            duration_s: 4.0,
            drop_fraction: 0.5,
            drop_every_s: 1.0,
            outage_ms: None,
            beyond: true,
            drain_timeout_s: 5.0,
        }
    }
}

impl FaultSpec {
    /// The outage of the `beyond` phase: given, or twice the ring's span.
    pub fn outage(&self) -> Duration {
        let ring_s = self.replay as f64 / self.rate_hz;
        self.outage_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| Duration::from_secs_f64(2.0 * ring_s + 0.2))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.wires.is_empty() || self.connections == 0 {
            return Err("faults: at least one wire and one connection".into());
        }
        if !(self.rate_hz > 0.0 && self.rate_hz <= 10_000.0) {
            return Err("faults: rate_hz must be above 0 and at most 10000".into());
        }
        if !(0.0..=1.0).contains(&self.drop_fraction) {
            return Err("faults: drop_fraction is between 0 and 1".into());
        }
        for (v, what) in [
            (self.duration_s, "duration_s"),
            (self.drop_every_s, "drop_every_s"),
            (self.drain_timeout_s, "drain_timeout_s"),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 3600.0) {
                return Err(format!("faults: {what} must be above 0 and at most 3600"));
            }
        }
        if self.outage() > server::chaos::MAX_PAUSE {
            return Err("faults: the outage must be at most 60 s".into());
        }
        Ok(())
    }
}

/// The `faults` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultsResult {
    pub spec: FaultSpec,
    pub wires: Vec<FaultWire>,
}

/// One wire in one phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultWire {
    pub wire: Wire,
    /// `within` (resume inside the replay window) or `beyond` (past it).
    pub phase: String,
    pub connections: usize,
    /// Drops (or restarts) the load generator asked the server for.
    pub faults_requested: u64,
    /// Streams that ended under a client.
    pub breaks: u64,
    /// Streams reopened after a break.
    pub reconnects: u64,
    /// Reopen attempts refused with 503 (the restart's outage).
    pub refused: u64,
    /// Break to the resumed stream's hello, µs.
    pub reconnect_us: HistogramSummary,
    /// Break to the first event after it, µs.
    pub recovery_us: HistogramSummary,
    /// Ids neither received nor announced by a gap event (holes plus ids
    /// short of the final one at the end): must be 0.
    pub lost: u64,
    pub duplicates: u64,
    pub gap_events: u64,
    /// Ids announced lost by gap events: the loss beyond the window.
    pub gap_ids: u64,
    /// `lost + gap_ids`: everything the wire lost, as reported.
    pub reported_loss: u64,
    /// Ids not received across breaks, measured from the ids alone.
    pub true_gap: u64,
    /// The server's own count of ids announced lost (`/stats` gap_ids).
    pub server_gap_ids: u64,
    pub final_id: u64,
    pub missing_at_end: u64,
    pub errors: BTreeMap<String, u64>,
    pub problems: Vec<String>,
}

/// Runs every wire in both phases against a server set for it.
pub async fn run(spec: &FaultSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    spec.validate().map_err(anyhow::Error::msg)?;
    let server = ScenarioServer::start(
        opts,
        spec.rate_hz,
        &[
            ("--replay", spec.replay.to_string()),
            ("--retry-ms", spec.retry_ms.to_string()),
        ],
    )
    .await?;
    let target = Arc::new(server.target.clone());
    let mut wires = Vec::new();
    for &wire in &spec.wires {
        wires.push(run_phase(spec, &target, wire, Phase::Within).await);
        if spec.beyond {
            wires.push(run_phase(spec, &target, wire, Phase::Beyond).await);
        }
    }
    let setup = server.setup.clone();
    server.stop().await;
    Ok(ScenarioResult {
        scenario: Scenario::extra(
            "faults",
            spec.wires.clone(),
            spec.connections,
            spec.rate_hz,
            spec.duration_s,
        ),
        server: setup,
        wires: Vec::new(),
        chat: None,
        echo: None,
        faults: Some(FaultsResult {
            spec: spec.clone(),
            wires,
        }),
        limit: None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Within,
    Beyond,
}

/// Opens a feed stream on one wire (resuming after `last_id`).
struct Opener {
    wire: Wire,
    target: Arc<Target>,
    h2: Option<H2Pool>,
    url: Arc<str>,
}

impl Opener {
    fn new(wire: Wire, target: Arc<Target>, connections: usize) -> Result<Opener, String> {
        let pool_size = connections
            .div_ceil(crate::driver::BROWSER_H2_STREAMS)
            .max(2);
        let h2 = match wire {
            Wire::SseH2c => Some(H2Pool::new(target.http_addr, None, "/sse", pool_size)),
            Wire::SseH2 => {
                let tls = target.tls.as_ref().ok_or("sse-h2 needs the TLS listener")?;
                Some(H2Pool::new(
                    tls.addr,
                    Some(tls.h2.clone()),
                    "/sse",
                    pool_size,
                ))
            }
            _ => None,
        };
        let url = match (&h2, wire) {
            (Some(p), _) => p.url().clone(),
            (None, Wire::WsH1) => format!("ws://{}/ws", target.http_addr).into(),
            (None, _) => format!("{}/sse", target.http_url).into(),
        };
        Ok(Opener {
            wire,
            target,
            h2,
            url,
        })
    }

    async fn open(&self, index: usize, last_id: Option<u64>) -> Result<FeedStream, ClientError> {
        let addr = self.target.http_addr;
        match (&self.h2, self.wire) {
            (Some(pool), _) => pool.open(index, last_id).await.map(FeedStream::Sse),
            (None, Wire::WsH1) => ws_client::open(addr, None, "/ws", last_id, &self.url)
                .await
                .map(FeedStream::Ws),
            (None, _) => sse_client::open_h1(addr, None, "/sse", last_id, &self.url)
                .await
                .map(FeedStream::Sse),
        }
    }
}

/// Shared by one phase's connections.
struct PhaseCtx {
    opener: Opener,
    retry: Duration,
    stop: CancellationToken,
    /// Connections that have received a tick.
    ready: AtomicUsize,
    /// Once set, a connection stops at this id.
    drain_to: AtomicU64,
}

/// What one connection saw.
#[derive(Default)]
struct ConnStats {
    tracker: IdTracker,
    reconnect: Timing,
    recovery: Timing,
    breaks: u64,
    reconnects: u64,
    refused: u64,
    duplicates: u64,
    gap_events: u64,
    gap_ids: u64,
    true_gap: u64,
    errors: BTreeMap<String, u64>,
}

async fn connection(ctx: Arc<PhaseCtx>, index: usize) -> ConnStats {
    let mut s = ConnStats::default();
    // The break being recovered from: when, and the last id before it.
    let mut broken: Option<(Instant, Option<u64>)> = None;
    let mut counted_ready = false;
    'reopen: loop {
        if ctx.stop.is_cancelled() {
            break;
        }
        let opened = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => break,
            r = ctx.opener.open(index, s.tracker.last_seen()) => r,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                match e {
                    ClientError::Status { status: 503, .. } => s.refused += 1,
                    other => *s.errors.entry(other.kind().to_string()).or_default() += 1,
                }
                if !pause(&ctx.stop, ctx.retry).await {
                    break;
                }
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => break 'reopen,
                m = stream.next() => m,
            };
            match next {
                Ok(Some(Msg::Hello { .. })) => {
                    if let Some((at, _)) = broken {
                        s.reconnect.record(at.elapsed());
                        s.reconnects += 1;
                    }
                }
                Ok(Some(Msg::Tick { id, .. })) => {
                    if let Some((at, before)) = broken.take() {
                        s.recovery.record(at.elapsed());
                        if let Some(last) = before {
                            s.true_gap += id.saturating_sub(last + 1);
                        }
                    }
                    if s.tracker.observe(id) == IdOutcome::Duplicate {
                        s.duplicates += 1;
                    }
                    if !counted_ready {
                        counted_ready = true;
                        ctx.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    let to = ctx.drain_to.load(Ordering::Acquire);
                    if to > 0 && id >= to {
                        stream.close().await;
                        break 'reopen;
                    }
                }
                Ok(Some(Msg::Gap { from, to })) => {
                    s.gap_events += 1;
                    s.gap_ids += s.tracker.gap(from, to).announced;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    s.breaks += 1;
                    if broken.is_none() {
                        broken = Some((Instant::now(), s.tracker.last_seen()));
                    }
                    if !pause(&ctx.stop, ctx.retry).await {
                        break 'reopen;
                    }
                    continue 'reopen;
                }
            }
        }
    }
    s
}

async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn server_stats(target: &Target) -> Result<serde_json::Value, ClientError> {
    call(target.http_addr, http::Method::GET, "/stats")
        .await
        .map(|(_, v)| v)
}

async fn run_phase(spec: &FaultSpec, target: &Arc<Target>, wire: Wire, phase: Phase) -> FaultWire {
    let mut problems = Vec::new();
    let mut result = FaultWire {
        wire,
        phase: match phase {
            Phase::Within => "within".into(),
            Phase::Beyond => "beyond".into(),
        },
        connections: spec.connections,
        faults_requested: 0,
        breaks: 0,
        reconnects: 0,
        refused: 0,
        reconnect_us: Timing::default().summary(),
        recovery_us: Timing::default().summary(),
        lost: 0,
        duplicates: 0,
        gap_events: 0,
        gap_ids: 0,
        reported_loss: 0,
        true_gap: 0,
        server_gap_ids: 0,
        final_id: 0,
        missing_at_end: 0,
        errors: BTreeMap::new(),
        problems: Vec::new(),
    };
    let opener = match Opener::new(wire, target.clone(), spec.connections) {
        Ok(o) => o,
        Err(e) => {
            result.problems.push(e);
            return result;
        }
    };
    let gaps_before = server_stats(target)
        .await
        .ok()
        .map(|s| s["gap_ids"].as_u64().unwrap_or(0));
    let ctx = Arc::new(PhaseCtx {
        opener,
        retry: Duration::from_millis(spec.retry_ms),
        stop: CancellationToken::new(),
        ready: AtomicUsize::new(0),
        drain_to: AtomicU64::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.connections {
        tasks.spawn(connection(ctx.clone(), i));
    }
    // Faults start once every connection has an id to resume after.
    let deadline = Instant::now() + Duration::from_secs(15);
    while ctx.ready.load(Ordering::Relaxed) < spec.connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = ctx.ready.load(Ordering::Relaxed);
    if ready < spec.connections {
        problems.push(format!(
            "{wire} {}: only {ready} of {} connections received an event within 15 s",
            result.phase, spec.connections
        ));
    }
    let addr = target.http_addr;
    match phase {
        Phase::Within => {
            let end = Instant::now() + Duration::from_secs_f64(spec.duration_s);
            let every = Duration::from_secs_f64(spec.drop_every_s);
            while Instant::now() + every <= end {
                tokio::time::sleep(every).await;
                let path = format!("/admin/drop?fraction={}", spec.drop_fraction);
                match call(addr, http::Method::POST, &path).await {
                    Ok((200, _)) => result.faults_requested += 1,
                    Ok((status, body)) => problems.push(format!("{path}: {status} {body}")),
                    Err(e) => problems.push(format!("{path}: {e}")),
                }
            }
            tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
        }
        Phase::Beyond => {
            let outage = spec.outage();
            let path = format!("/admin/restart?pause_ms={}", outage.as_millis());
            match call(addr, http::Method::POST, &path).await {
                Ok((200, _)) => result.faults_requested += 1,
                Ok((status, body)) => problems.push(format!("{path}: {status} {body}")),
                Err(e) => problems.push(format!("{path}: {e}")),
            }
            tokio::time::sleep(outage + Duration::from_secs(1)).await;
        }
    }
    // Let the last reconnects land, then every connection reads to the newest id.
    tokio::time::sleep(ctx.retry * 3 + Duration::from_millis(200)).await;
    let final_id = match server_stats(target).await {
        Ok(s) => s["feed"]["last_id"].as_u64().unwrap_or(0),
        Err(e) => {
            problems.push(format!("reading /stats for the final id: {e}"));
            0
        }
    };
    ctx.drain_to.store(final_id.max(1), Ordering::Release);
    let drain = Duration::from_secs_f64(spec.drain_timeout_s);
    let mut stats = Vec::new();
    let joined = tokio::time::timeout(drain, async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(s) = r {
                stats.push(s);
            }
        }
    })
    .await;
    if joined.is_err() {
        ctx.stop.cancel();
        while let Some(r) = tasks.join_next().await {
            if let Ok(s) = r {
                stats.push(s);
            }
        }
    }
    let mut reconnect = Timing::default();
    let mut recovery = Timing::default();
    for s in &stats {
        reconnect.merge(&s.reconnect);
        recovery.merge(&s.recovery);
        result.breaks += s.breaks;
        result.reconnects += s.reconnects;
        result.refused += s.refused;
        result.duplicates += s.duplicates;
        result.gap_events += s.gap_events;
        result.gap_ids += s.gap_ids;
        result.true_gap += s.true_gap;
        let short = s
            .tracker
            .last_seen()
            .map_or(final_id, |l| final_id.saturating_sub(l));
        result.missing_at_end += short;
        result.lost += s.tracker.missing() + short;
        for (k, v) in &s.errors {
            *result.errors.entry(k.clone()).or_default() += v;
        }
    }
    if stats.len() < spec.connections {
        problems.push(format!(
            "{wire}: {} connection tasks failed",
            spec.connections - stats.len()
        ));
    }
    if result.missing_at_end > 0 {
        problems.push(format!(
            "{wire} {}: {} ids short of the final id {final_id} after {:.1} s",
            result.phase, result.missing_at_end, spec.drain_timeout_s
        ));
    }
    let gaps_after = server_stats(target)
        .await
        .ok()
        .map(|s| s["gap_ids"].as_u64().unwrap_or(0));
    if let (Some(b), Some(a)) = (gaps_before, gaps_after) {
        result.server_gap_ids = a.saturating_sub(b);
    }
    result.reported_loss = result.lost + result.gap_ids;
    result.final_id = final_id;
    result.reconnect_us = reconnect.summary();
    result.recovery_us = recovery.summary();
    result.problems = problems;
    result
}
