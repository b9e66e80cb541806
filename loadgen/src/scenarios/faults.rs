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

use tokio_util::sync::CancellationToken;

use crate::client::{call_once, ClientError, Dialer, Msg, Opener, ServerProbe, Target};
use crate::measure::{IdOutcome, IdTracker, Timing};
use crate::result::{FaultSpec, FaultWire, FaultsResult, Scenario, ScenarioResult, Section};
use crate::run::connection::{hold, ConnectionHook, Ended, Flow, OnMessage, Reconnect};
use crate::run::{RunOptions, ServerSettings, StartedServer, BROWSER_H2_STREAMS};
use crate::wire::Wire;

/// How long one admin call may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every wire in both phases against a server set for it.
pub async fn run(spec: &FaultSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    spec.validate().map_err(anyhow::Error::msg)?;
    let settings = ServerSettings {
        replay: Some(spec.replay),
        retry_ms: Some(spec.retry_ms),
        ..ServerSettings::new(spec.rate_hz, opts.workers)
    };
    let server = StartedServer::start(opts, &settings).await?;
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
        link: None,
        stack: None,
        section: Section::Faults(FaultsResult {
            spec: spec.clone(),
            wires,
        }),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Within,
    Beyond,
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

/// One connection's hook: ids, breaks, and the time each took to recover.
struct Watch<'a> {
    ctx: &'a PhaseCtx,
    s: ConnStats,
    /// The break being recovered from: when, and the last id before it.
    broken: Option<(Instant, Option<u64>)>,
    counted_ready: bool,
}

impl OnMessage<Msg> for Watch<'_> {
    fn message(&mut self, msg: Msg) -> Flow {
        let s = &mut self.s;
        match msg {
            Msg::Hello { .. } => {
                if let Some((at, _)) = self.broken {
                    s.reconnect.record(at.elapsed());
                    s.reconnects += 1;
                }
            }
            Msg::Tick { id, .. } => {
                if let Some((at, before)) = self.broken.take() {
                    s.recovery.record(at.elapsed());
                    if let Some(last) = before {
                        s.true_gap += id.saturating_sub(last + 1);
                    }
                }
                if s.tracker.observe(id) == IdOutcome::Duplicate {
                    s.duplicates += 1;
                }
                if !self.counted_ready {
                    self.counted_ready = true;
                    self.ctx.ready.fetch_add(1, Ordering::Relaxed);
                }
                let to = self.ctx.drain_to.load(Ordering::Acquire);
                if to > 0 && id >= to {
                    return Flow::Stop;
                }
            }
            Msg::Gap { from, to } => {
                s.gap_events += 1;
                s.gap_ids += s.tracker.gap(from, to).announced;
            }
            // The feed server's events are ticks; nothing else is read here.
            Msg::KeepAlive | Msg::Retry(_) | Msg::Event { .. } => {}
        }
        Flow::Continue
    }
}

impl ConnectionHook for Watch<'_> {
    fn resume_id(&self) -> Option<u64> {
        self.s.tracker.last_seen()
    }

    fn open_failed(&mut self, error: ClientError) {
        match error {
            ClientError::Status { status: 503, .. }
            | ClientError::NoUpgrade { status: 503, .. } => self.s.refused += 1,
            other => *self.s.errors.entry(other.kind().to_string()).or_default() += 1,
        }
    }

    fn ended(&mut self, how: Ended) -> Flow {
        match how {
            Ended::Done | Ended::Stopped => Flow::Stop,
            Ended::Closed | Ended::Failed(_) => {
                self.s.breaks += 1;
                if self.broken.is_none() {
                    self.broken = Some((Instant::now(), self.s.tracker.last_seen()));
                }
                Flow::Continue
            }
        }
    }
}

async fn connection(ctx: Arc<PhaseCtx>, index: usize) -> ConnStats {
    let mut watch = Watch {
        ctx: &ctx,
        s: ConnStats::default(),
        broken: None,
        counted_ready: false,
    };
    let policy = Reconnect {
        reopen: true,
        retry: ctx.retry,
        backoff: false,
        close_on_stop: false,
    };
    hold(&ctx.opener, index, &mut watch, policy, &ctx.stop, None).await;
    watch.s
}

/// `POST` an admin path: the status and the answer (JSON, or `null`).
async fn admin(target: &Target, path: &str) -> Result<(u16, serde_json::Value), ClientError> {
    let (status, body) = call_once(
        &Dialer::default(),
        &target.plain(path),
        http::Method::POST,
        ADMIN_TIMEOUT,
        "waiting for an admin answer",
    )
    .await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
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
    let pool = spec.connections.div_ceil(BROWSER_H2_STREAMS).max(2);
    let opener = match Opener::for_wire(wire, target, Dialer::default(), pool) {
        Ok(o) => o,
        Err(e) => {
            result.problems.push(e);
            return result;
        }
    };
    let probe = ServerProbe::new(target.http_addr);
    let gaps_before = probe.snapshot().await.ok().map(|s| s.gap_ids);
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
    match phase {
        Phase::Within => {
            let end = Instant::now() + Duration::from_secs_f64(spec.duration_s);
            let every = Duration::from_secs_f64(spec.drop_every_s);
            while Instant::now() + every <= end {
                tokio::time::sleep(every).await;
                let path = format!("/admin/drop?fraction={}", spec.drop_fraction);
                match admin(target, &path).await {
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
            match admin(target, &path).await {
                Ok((200, _)) => result.faults_requested += 1,
                Ok((status, body)) => problems.push(format!("{path}: {status} {body}")),
                Err(e) => problems.push(format!("{path}: {e}")),
            }
            tokio::time::sleep(outage + Duration::from_secs(1)).await;
        }
    }
    // Let the last reconnects land, then every connection reads to the newest id.
    tokio::time::sleep(ctx.retry * 3 + Duration::from_millis(200)).await;
    let final_id = match probe.snapshot().await {
        Ok(s) => s.last_id,
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
    let gaps_after = probe.snapshot().await.ok().map(|s| s.gap_ids);
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
