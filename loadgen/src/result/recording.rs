//! A recorder's measurements as `result.json` stores them: every counter,
//! the events-per-second series and the three histograms.
//!
//! Id accounting, with the server's promise that nothing is dropped silently:
//! `lost` counts ids that never arrived and were never announced; `gap_missing`
//! counts ids the server announced as lost with a gap event. A correct server
//! under any load shows `lost == 0`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::HistogramSummary;

/// Every counter of a recorder; all add up under merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counters {
    /// Tick events received, duplicates included.
    pub events: u64,
    /// Bytes received, as reported by the caller.
    pub bytes: u64,
    /// Keep-alive comments (SSE) or pings (WS) received.
    pub keepalives: u64,
    /// Reconnections after a stream ended or failed.
    pub reconnects: u64,
    /// Ids skipped and never announced by a gap event (nor received late).
    pub lost: u64,
    /// Ids received after a higher id (they had been counted lost until then).
    pub out_of_order: u64,
    /// Ids received again.
    pub duplicates: u64,
    /// Gap events received.
    pub gap_events: u64,
    /// Ids announced missing by gap events.
    pub gap_missing: u64,
    /// Durations above `HIGHEST_US` µs, clamped to it before recording
    /// (negative latencies are not: see `negative_latency`).
    pub clamped: u64,
    /// Events received after `MAX_SECONDS` (24 h) into the run, left out of the per-second series.
    pub rate_overflow: u64,
    /// Events without a usable send time (none configured, or its field
    /// absent or not a time): no latency for them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unstamped: u64,
    /// Events without an id: no loss check for them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_id: u64,
    /// Events received before their send time: the server's clock and this
    /// machine's disagree. Never recorded as latency, never clamped to 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub negative_latency: u64,
    /// The earliest such arrival, µs before its send time (merged by max).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub negative_latency_max_us: u64,
    /// Inter-arrival gaps on one connection longer than the stall threshold.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalls: u64,
    /// Failures by error kind (`connect`, `tls`, `http_503`, `protocol`, `closed`, `timeout`).
    pub errors: BTreeMap<String, u64>,
}

/// New counters are left out of `result.json` while 0, so results of runs
/// that never meet them read and write back unchanged.
fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Counters {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counters) {
        self.events += other.events;
        self.bytes += other.bytes;
        self.keepalives += other.keepalives;
        self.reconnects += other.reconnects;
        self.lost += other.lost;
        self.out_of_order += other.out_of_order;
        self.duplicates += other.duplicates;
        self.gap_events += other.gap_events;
        self.gap_missing += other.gap_missing;
        self.clamped += other.clamped;
        self.rate_overflow += other.rate_overflow;
        self.unstamped += other.unstamped;
        self.no_id += other.no_id;
        self.negative_latency += other.negative_latency;
        self.negative_latency_max_us = self
            .negative_latency_max_us
            .max(other.negative_latency_max_us);
        self.stalls += other.stalls;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
    }
}

/// All of a recorder (`measure::Recorder`), for `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecorderSnapshot {
    /// The run start the per-second series counts from, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// The counters.
    pub counters: Counters,
    /// Events received in each second since the run start.
    pub events_per_second: Vec<u64>,
    /// Event latency, µs.
    pub latency_us: HistogramSummary,
    /// Connection set-up time, µs.
    pub connect_us: HistogramSummary,
    /// Connect start to first tick event, µs.
    pub first_event_us: HistogramSummary,
    /// A stream's break to its resumed stream's response, µs (absent when
    /// nothing reconnected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_us: Option<HistogramSummary>,
    /// Time between consecutive events on one connection, µs (absent in
    /// results written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_gap_us: Option<HistogramSummary>,
}
