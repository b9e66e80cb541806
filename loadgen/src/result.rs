//! `result.json`: everything a run measured, versioned, and mergeable
//! (histograms are stored encoded, so results from several machines can be
//! combined exactly).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::driver::{LoadgenCost, ServerCost, WireOutcome};
use crate::recorder::{HistogramSummary, RecorderSnapshot};
use crate::scenario::Scenario;
use crate::wire::Wire;

/// Bumped on any change a reader of an older version would misread.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run: one or more scenarios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    pub tool: String,
    pub name: String,
    pub started_at: String,
    pub finished_at: String,
    /// False when any scenario could not do all that was asked.
    pub complete: bool,
    pub problems: Vec<String>,
    pub environment: Environment,
    pub scenarios: Vec<ScenarioResult>,
}

/// One scenario against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub server: ServerSetup,
    pub wires: Vec<WireResult>,
    /// Chat-style streamed answers (see `scenarios::chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<crate::scenarios::chat::ChatResult>,
    /// Round trips (see `scenarios::echo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<crate::scenarios::echo::EchoResult>,
    /// Reconnect and resume under drops (see `scenarios::faults`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::scenarios::faults::FaultsResult>,
    /// The six-connection limit, browser model (see `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<crate::limit::LimitResult>,
}

/// Where the server ran and how it was set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSetup {
    /// `child-process` (the embedded server in its own process: clean
    /// server figures), `in-process` (server and load generator share one
    /// process: memory and CPU figures are of both) or `external`.
    pub mode: String,
    pub http_url: String,
    pub https_url: Option<String>,
    pub rate_hz: f64,
    pub payload_bytes: usize,
    pub workers: Option<usize>,
}

/// Everything measured on one wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireResult {
    pub wire: Wire,
    pub connections: usize,
    /// The most connections open at once.
    pub opened: usize,
    /// HTTP/2 connections that carried the streams (h2 and h2c only).
    pub h2_connections: Option<u64>,
    /// Protocols the server said it negotiated, with stream counts.
    pub protocols_seen: BTreeMap<String, u64>,
    pub hold_s: f64,
    pub events_in_hold: u64,
    pub events_per_s: f64,
    pub bytes_per_s: f64,
    /// The newest id when the hold ended: every connection should reach it.
    pub final_id: u64,
    /// Ids never received: holes plus ids short of `final_id` at the end.
    pub lost: u64,
    pub missing_at_end: u64,
    pub duplicates: u64,
    pub gap_events: u64,
    pub gap_missing: u64,
    pub reconnects: u64,
    pub errors: BTreeMap<String, u64>,
    pub first_errors: BTreeMap<String, String>,
    pub latency_us: HistogramSummary,
    /// Latency of the events received during the hold only: `latency_us`
    /// also holds the ramp, when thousands of connections open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_hold_us: Option<HistogramSummary>,
    pub connect_us: HistogramSummary,
    pub first_event_us: HistogramSummary,
    pub server: Option<ServerCost>,
    pub loadgen: LoadgenCost,
    pub problems: Vec<String>,
    /// Load-generator processes that shared the connections.
    #[serde(default = "one")]
    pub processes: usize,
    /// The raw recorder: exact histograms and per-second counts, for merging.
    pub recorder: RecorderSnapshot,
}

impl WireResult {
    pub fn from_outcome(o: &WireOutcome) -> Result<WireResult, crate::recorder::RecorderError> {
        let snap = o.recorder.snapshot()?;
        let c = &snap.counters;
        Ok(WireResult {
            wire: o.spec.wire,
            connections: o.spec.connections,
            opened: o.opened_peak,
            h2_connections: o.h2_connections,
            protocols_seen: o.protocols_seen.clone(),
            hold_s: o.hold_s,
            events_in_hold: o.events_in_hold,
            events_per_s: rate(o.events_in_hold, o.hold_s),
            bytes_per_s: rate(o.bytes_in_hold, o.hold_s),
            final_id: o.final_id,
            lost: c.lost + o.missing_at_end,
            missing_at_end: o.missing_at_end,
            duplicates: c.duplicates,
            gap_events: c.gap_events,
            gap_missing: c.gap_missing,
            reconnects: c.reconnects,
            errors: c.errors.clone(),
            first_errors: o.first_errors.clone(),
            latency_us: snap.latency_us.clone(),
            latency_hold_us: o
                .hold_latency
                .as_ref()
                .and_then(|h| crate::recorder::summarize(h).ok()),
            connect_us: snap.connect_us.clone(),
            first_event_us: snap.first_event_us.clone(),
            server: o.server.clone(),
            loadgen: o.loadgen.clone(),
            problems: o.problems.clone(),
            processes: o.processes,
            recorder: snap,
        })
    }
}

fn one() -> usize {
    1
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The machine and build a result came from, so a figure can be reproduced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub rustc: String,
    pub git_commit: String,
    pub open_files_limit: u64,
    pub command_line: Vec<String>,
}

impl Environment {
    /// Reads what it can; unknown figures are empty or 0, never an error.
    pub fn detect() -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or(0);
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Environment {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            rustc: env!("LOADGEN_RUSTC_VERSION").to_string(),
            git_commit,
            open_files_limit: rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft),
            command_line: std::env::args().collect(),
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
