//! The echo scenario's settings and figures: closed-loop round trips at
//! several client counts (see `scenarios::echo`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bounds::Bounds;
use super::histogram::HistogramSummary;
use crate::wire::Wire;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EchoSpec {
    #[schemars(with = "Vec<crate::wire::WireSchema>")]
    pub wires: Vec<Wire>,
    /// Client counts to run, one after another.
    pub clients: Vec<usize>,
    /// How long each (wire, client count) runs.
    pub duration_s: f64,
}

impl Default for EchoSpec {
    fn default() -> Self {
        EchoSpec {
            wires: Wire::ALL.to_vec(),
            clients: vec![1, 100, 1000],
            duration_s: 3.0,
        }
    }
}

impl EchoSpec {
    /// Clients at one level.
    pub const CLIENTS: Bounds<usize> = Bounds::new(1, 100_000, "");
    /// Levels (client counts) in one run.
    pub const LEVELS: Bounds<usize> = Bounds::new(1, 64, " client counts");
    /// How long each level runs.
    pub const DURATION_S: Bounds<f64> = Bounds::new(0.01, 3_600.0, " s");

    /// Checks every number against its range.
    pub fn validate(&self) -> Result<(), String> {
        let named = |e: String| format!("echo: {e}");
        if self.wires.is_empty() {
            return Err(named("at least one wire".into()));
        }
        Self::LEVELS
            .check_named("clients", self.clients.len())
            .map_err(named)?;
        for &n in &self.clients {
            Self::CLIENTS.check_named("clients", n).map_err(named)?;
        }
        Self::DURATION_S
            .check_named("duration_s", self.duration_s)
            .map_err(named)?;
        Ok(())
    }
}

/// The `echo` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EchoResult {
    pub spec: EchoSpec,
    pub levels: Vec<EchoLevel>,
}

/// One wire at one client count.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EchoLevel {
    #[schemars(with = "crate::wire::WireSchema")]
    pub wire: Wire,
    pub clients: usize,
    /// Clients that got their stream or socket open.
    pub connected: usize,
    /// TCP connections the clients used (SSE over HTTP/1.1: two per client).
    pub tcp_connections: usize,
    pub duration_s: f64,
    pub round_trips: u64,
    pub round_trips_per_s: f64,
    /// Send to reply received, µs.
    pub rtt_us: HistogramSummary,
    /// Round trips whose reply never came within 5 s.
    pub unanswered: u64,
    pub errors: BTreeMap<String, u64>,
    pub problems: Vec<String>,
}
