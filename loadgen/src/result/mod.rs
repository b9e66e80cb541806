//! `result.json`: everything a run measured, versioned, and mergeable
//! (histograms are stored encoded, so results from several machines can be
//! combined exactly).
//!
//! This is the schema and nothing else: the runners (`run`, `scenarios`,
//! `limit`) produce these types, the readers (`report`, `compare`, `merge`)
//! consume them, and nothing here knows how a connection is made. The
//! settings of each scenario kind live here too ([`Scenario`], [`ChatSpec`],
//! ...), because every result carries the settings it was run with.

mod any_server;
mod bounds;
mod chat;
mod echo;
mod environment;
mod faults;
mod feed;
mod histogram;
mod limit;
mod network;
mod recording;
mod scenario;
mod section;
mod stack;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use any_server::{parse_header, AnyServer, SseProtocol, StampUnit};
pub use bounds::{Bounds, Figure, DAY_S};
pub use chat::{ChatResult, ChatSpec, ChatWire};
pub use echo::{EchoLevel, EchoResult, EchoSpec};
pub use environment::Environment;
pub use faults::{FaultSpec, FaultWire, FaultsResult};
pub use feed::{EdgeSetup, LoadgenCost, Measured, ProxyCost, ServerCost, ServerSetup, WireResult};
pub use histogram::{
    new_histogram, summarize, HistogramError, HistogramSummary, HIGHEST_US, LOWEST_US,
    SIGNIFICANT_FIGURES,
};
pub use limit::{
    GetProbe, LimitCase, LimitCaseResult, LimitResult, LimitSpec, Protocol, BROWSER_H1_PER_HOST,
    BROWSER_H2_DEFAULT_STREAMS, BROWSER_H2_STREAM_CAP, PER_STREAM_KEPT,
};
pub use network::{
    network_suite, network_wires, KeepAliveFigures, LinkTiming, NetworkResult, OutageRecovery,
    OutageWindow, StallSummary, MIN_RTT_US,
};
pub use recording::{Counters, RecorderSnapshot};
pub use scenario::{check_ramp, stacks_suite, standard_suite, Scenario, ScenarioError};
pub use section::Section;
pub use stack::Stack;

/// Bumped on any change a reader of an older version would misread.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run: one or more scenarios.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    pub schema_version: u32,
    pub tool: String,
    pub name: String,
    pub started_at: String,
    pub finished_at: String,
    /// False when any scenario could not do all that was asked.
    pub complete: bool,
    pub problems: Vec<String>,
    /// Scenarios left out, and why (e.g. the network scenarios without
    /// root); not a problem: the run did what it could here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub environment: Environment,
    pub scenarios: Vec<ScenarioResult>,
}

/// One scenario against one server: a feed scenario's figures are in
/// `wires`; any other kind has its own [`Section`] (and no wires).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub server: ServerSetup,
    pub wires: Vec<WireResult>,
    /// The emulated link the scenario ran over, if any: its settings and
    /// the emulator's figures over the wires' holds together (each wire's
    /// own are in its `network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<netlab::LinkReport>,
    /// The stack that served this scenario (`--stacks`), if it was one of several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
    /// Written as its own field (`chat`, `echo`, `faults` or `limit`), or
    /// not at all for a feed scenario.
    #[serde(flatten)]
    pub section: Section,
}

impl ScenarioResult {
    /// Chat-style streamed answers, if this scenario measured them.
    pub fn chat(&self) -> Option<&ChatResult> {
        match &self.section {
            Section::Chat(c) => Some(c),
            _ => None,
        }
    }

    /// Round trips, if this scenario measured them.
    pub fn echo(&self) -> Option<&EchoResult> {
        match &self.section {
            Section::Echo(e) => Some(e),
            _ => None,
        }
    }

    /// Reconnect and resume under drops, if this scenario measured them.
    pub fn faults(&self) -> Option<&FaultsResult> {
        match &self.section {
            Section::Faults(f) => Some(f),
            _ => None,
        }
    }

    /// The six-connection limit (browser model), if this scenario measured it.
    pub fn limit(&self) -> Option<&LimitResult> {
        match &self.section {
            Section::Limit(l) => Some(l),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a result file: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}, this loadgen reads version {SCHEMA_VERSION} only: regenerate it with this version, or use the loadgen that wrote it")]
    Version { path: String, found: u64 },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl RunResult {
    /// The JSON Schema of `result.json`, generated from these types (what
    /// `loadgen schema` prints and `results/schema.json` holds).
    pub fn schema() -> serde_json::Value {
        let schema = schemars::schema_for!(RunResult);
        serde_json::to_value(&schema).expect("a schema always serializes")
    }

    /// Reads and checks a `result.json`.
    pub fn load(path: &Path) -> Result<RunResult, ResultError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ResultError::Read {
            path: shown.clone(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ResultError::Corrupt {
                path: shown.clone(),
                source,
            })?;
        let found = value
            .get("schema_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ResultError::Version { path: shown, found });
        }
        serde_json::from_value(value).map_err(|source| ResultError::Corrupt {
            path: shown,
            source,
        })
    }

    /// Writes `result.json` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<std::path::PathBuf, ResultError> {
        let path = dir.join("result.json");
        let err = |source| ResultError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let json = serde_json::to_string_pretty(self).expect("a result always serializes");
        std::fs::write(&path, json + "\n").map_err(err)?;
        Ok(path)
    }
}
