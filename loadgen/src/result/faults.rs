//! The faults scenario's settings and figures: reconnect and resume under
//! dropped streams and a restart (see `scenarios::faults`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::Bounds;
use super::histogram::HistogramSummary;
use crate::wire::Wire;

/// What the faults scenario runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    #[schemars(with = "Vec<crate::wire::WireSchema>")]
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
    /// Streams per wire.
    pub const CONNECTIONS: Bounds<usize> = Bounds::new(1, 100_000, "");
    /// Feed rate.
    pub const RATE_HZ: Bounds<f64> = Bounds::new(0.01, 10_000.0, " events/s");
    /// The server's replay ring.
    pub const REPLAY: Bounds<usize> = Bounds::new(1, 1_000_000, " events");
    /// Reconnect delay: at least the 10 ms every client waits at the least.
    pub const RETRY_MS: Bounds<u64> = Bounds::new(10, 60_000, " ms");
    /// The `within` phase, the drop period and the drain.
    pub const SECONDS: Bounds<f64> = Bounds::new(0.01, 3_600.0, " s");
    pub const DROP_FRACTION: Bounds<f64> = Bounds::new(0.0, 1.0, "");
    /// The restart's outage: what the server's `/admin/restart` accepts.
    pub const OUTAGE_MS: Bounds<u64> = Bounds::new(1, 60_000, " ms");

    /// The outage of the `beyond` phase: given, or twice the ring's span
    /// ([`Duration::MAX`] for settings [`validate`](Self::validate) refuses).
    pub fn outage(&self) -> Duration {
        let ring_s = self.replay as f64 / self.rate_hz;
        self.outage_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| {
                Duration::try_from_secs_f64(2.0 * ring_s + 0.2).unwrap_or(Duration::MAX)
            })
    }

    /// Checks every number against its range, and the outage against the
    /// longest the server pauses.
    pub fn validate(&self) -> Result<(), String> {
        let named = |e: String| format!("faults: {e}");
        if self.wires.is_empty() {
            return Err(named("at least one wire".into()));
        }
        Self::CONNECTIONS
            .check_named("connections", self.connections)
            .map_err(named)?;
        Self::RATE_HZ
            .check_named("rate_hz", self.rate_hz)
            .map_err(named)?;
        Self::REPLAY
            .check_named("replay", self.replay)
            .map_err(named)?;
        Self::RETRY_MS
            .check_named("retry_ms", self.retry_ms)
            .map_err(named)?;
        Self::DROP_FRACTION
            .check_named("drop_fraction", self.drop_fraction)
            .map_err(named)?;
        for (v, what) in [
            (self.duration_s, "duration_s"),
            (self.drop_every_s, "drop_every_s"),
            (self.drain_timeout_s, "drain_timeout_s"),
        ] {
            Self::SECONDS.check_named(what, v).map_err(named)?;
        }
        if let Some(ms) = self.outage_ms {
            Self::OUTAGE_MS
                .check_named("outage_ms", ms)
                .map_err(named)?;
        }
        if self.outage() > server::chaos::MAX_PAUSE {
            return Err(named(format!(
                "the outage (twice the ring's span: {} events at {} events/s, plus 0.2 s) must be at most 60 s: give a shorter outage_ms, a smaller replay or a higher rate",
                self.replay, self.rate_hz
            )));
        }
        Ok(())
    }
}

/// The `faults` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultsResult {
    pub spec: FaultSpec,
    pub wires: Vec<FaultWire>,
}

/// One wire in one phase.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultWire {
    #[schemars(with = "crate::wire::WireSchema")]
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
