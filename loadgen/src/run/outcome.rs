//! What one wire run measured: [`WireOutcome`] (put together from one
//! process or several), the parts it is made of ([`Finished`], [`Held`]),
//! and its entry in `result.json`.

use std::collections::BTreeMap;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::proxy::ProxySamples;
use super::spec::WireSpec;
use crate::client::ServerSnapshot;
use crate::measure::Recorder;
use crate::result::{
    summarize, HistogramError, LoadgenCost, Measured, NetworkResult, ProxyCost, RecorderSnapshot,
    ServerCost, WireResult,
};

/// Everything measured on one wire.
#[derive(Debug)]
pub struct WireOutcome {
    pub spec: WireSpec,
    pub recorder: Recorder,
    pub opened_peak: usize,
    pub h2_connections: Option<u64>,
    pub protocols_seen: BTreeMap<String, u64>,
    pub client_protocols: BTreeMap<String, u64>,
    pub hold_s: f64,
    pub events_in_hold: u64,
    pub bytes_in_hold: u64,
    /// Ids up to the final one that some connection never received.
    pub missing_at_end: u64,
    /// The final id was the server's newest (its `/stats`): ids short of
    /// it are lost. When it was only the highest any connection saw,
    /// connections end a tick apart and the shortfall is reported apart.
    pub missing_is_lost: bool,
    pub final_id: u64,
    /// µs from the first connection attempt until all were open.
    pub all_open_after_us: Option<u64>,
    pub server: Option<ServerCost>,
    pub proxy: Option<ProxyCost>,
    pub loadgen: LoadgenCost,
    /// The first message of each kind of error, for the user.
    pub first_errors: BTreeMap<String, String>,
    /// Why the run did not do all that was asked (empty when it did).
    pub problems: Vec<String>,
    /// Load-generator processes that shared the connections.
    pub processes: usize,
    /// Latency of the events received during the hold only.
    pub hold_latency: Option<Histogram<u64>>,
    /// Over an emulated link: stalls, outages, keep-alive figures (the
    /// emulator's are added by the runner, which owns the link).
    pub network: Option<NetworkResult>,
}

/// What one process measured on one wire, ready to merge with others'.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub recorder: RecorderSnapshot,
    pub opened: usize,
    pub missing_at_end: u64,
    pub first_errors: BTreeMap<String, String>,
    pub protocols_seen: BTreeMap<String, u64>,
    /// What this process's own connections negotiated, per stream.
    #[serde(default)]
    pub client_protocols: BTreeMap<String, u64>,
    pub h2_connections: Option<u64>,
    /// µs from the first connection attempt until all were open.
    #[serde(default)]
    pub all_open_after_us: Option<u64>,
    pub problems: Vec<String>,
    /// Over an emulated link: what the streams found (`measure::LinkRecorder`).
    #[serde(default)]
    pub network: Option<NetworkResult>,
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
    /// This process's RSS (or the workers', summed) before connecting.
    pub own_rss_before: u64,
    /// Latencies of the events received during the hold only (the ramp's
    /// connection storm is left out).
    pub latency: Option<Histogram<u64>>,
    /// The edge proxy's readings, when there is one.
    pub proxy: ProxySamples,
}

/// `end` minus `start`: what was recorded in between.
pub fn hold_only(mut end: Histogram<u64>, start: &Histogram<u64>) -> Option<Histogram<u64>> {
    end.subtract(start).ok()?;
    Some(end)
}

impl WireOutcome {
    /// A wire that could not start: only its problems.
    pub fn empty(spec: WireSpec, problems: Vec<String>) -> WireOutcome {
        WireOutcome {
            spec,
            recorder: Recorder::new(Instant::now()),
            opened_peak: 0,
            h2_connections: None,
            protocols_seen: BTreeMap::new(),
            client_protocols: BTreeMap::new(),
            hold_s: 0.0,
            events_in_hold: 0,
            bytes_in_hold: 0,
            missing_at_end: 0,
            missing_is_lost: true,
            final_id: 0,
            all_open_after_us: None,
            server: None,
            proxy: None,
            loadgen: LoadgenCost::default(),
            first_errors: BTreeMap::new(),
            problems,
            processes: 1,
            hold_latency: None,
            network: None,
        }
    }

    /// Puts the pieces of a wire run together (one process or several).
    pub fn assemble(
        spec: WireSpec,
        finished: Finished,
        measured: Held,
        before: Option<ServerSnapshot>,
        after: Option<(ServerSnapshot, f64)>,
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
            (Some(b), Some(h), Some((a, after_s)), Some(e)) => Some(ServerCost {
                rss_before: b.rss_bytes,
                rss_held: h.rss_bytes,
                rss_after: a.rss_bytes,
                rss_after_s: Some(*after_s),
                rss_per_connection: h.rss_bytes.saturating_sub(b.rss_bytes) as f64
                    / finished.opened.max(1) as f64,
                cpu_us_hold: e.cpu_us.saturating_sub(h.cpu_us),
                cpu_us_per_event: per(e.cpu_us.saturating_sub(h.cpu_us), measured.events),
            }),
            _ => None,
        };
        let network = finished.network.map(|mut n| {
            if let (Some(h), Some(e)) = (&measured.held, &measured.end) {
                n.keepalive.server_ws_timeouts = e.ws_timeouts.saturating_sub(h.ws_timeouts);
                n.keepalive.server_resumes = e.resumes.saturating_sub(h.resumes);
            }
            n.keepalive.h2_reopened = finished
                .h2_connections
                .map(|made| made.saturating_sub(spec.h2_pool_size() as u64));
            n
        });
        WireOutcome {
            network,
            recorder,
            opened_peak: finished.opened,
            h2_connections: finished.h2_connections,
            protocols_seen: finished.protocols_seen,
            client_protocols: finished.client_protocols,
            proxy: measured.proxy.cost(finished.opened, measured.events),
            hold_s: measured.hold_s,
            events_in_hold: measured.events,
            bytes_in_hold: measured.bytes,
            missing_at_end: finished.missing_at_end,
            missing_is_lost: true,
            final_id,
            all_open_after_us: finished.all_open_after_us,
            server,
            loadgen: LoadgenCost::measured(
                measured.own_cpu_us,
                measured.events,
                measured.own_rss,
                Some(measured.own_rss_before),
                finished.opened,
            ),
            first_errors: finished.first_errors,
            problems,
            processes: 1,
            hold_latency: measured.latency,
            spec,
        }
    }

    /// The wire's entry in `result.json`.
    pub fn to_result(&self) -> Result<WireResult, HistogramError> {
        let snap = self.recorder.snapshot()?;
        let c = &snap.counters;
        Ok(WireResult {
            wire: self.spec.wire,
            connections: self.spec.connections,
            opened: self.opened_peak,
            h2_connections: self.h2_connections,
            protocols_seen: self.protocols_seen.clone(),
            client_protocols: self.client_protocols.clone(),
            hold_s: self.hold_s,
            events_in_hold: self.events_in_hold,
            events_per_s: rate(self.events_in_hold, self.hold_s),
            bytes_per_s: rate(self.bytes_in_hold, self.hold_s),
            final_id: self.final_id,
            lost: if self.missing_is_lost {
                c.lost + self.missing_at_end
            } else {
                c.lost
            },
            missing_at_end: self.missing_at_end,
            duplicates: c.duplicates,
            gap_events: c.gap_events,
            gap_missing: c.gap_missing,
            reconnects: c.reconnects,
            errors: c.errors.clone(),
            first_errors: self.first_errors.clone(),
            latency_us: snap.latency_us.clone(),
            latency_hold_us: self.hold_latency.as_ref().and_then(|h| summarize(h).ok()),
            connect_us: snap.connect_us.clone(),
            first_event_us: snap.first_event_us.clone(),
            reconnect_us: snap.reconnect_us.clone(),
            server: self.server.clone(),
            proxy: self.proxy.clone(),
            loadgen: self.loadgen.clone(),
            problems: self.problems.clone(),
            processes: self.processes,
            measured: Measured {
                latency: c.events == 0 || c.unstamped < c.events,
                loss: c.events == 0 || c.no_id < c.events,
            },
            connected_in_s: self.all_open_after_us.map(|us| us as f64 / 1e6),
            recorder: snap,
            network: self.network.clone(),
        })
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn per(total: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        total as f64 / n as f64
    }
}

/// This process's CPU time (µs) and RSS (bytes) now.
pub fn own_usage() -> (u64, u64) {
    let own = server::stats::ProcessStats::now();
    (own.cpu_us(), own.rss_bytes)
}
