//! A feed scenario's figures: where the server ran, and per wire what the
//! connections received, what the server cost and what the load generator
//! itself spent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::HistogramSummary;
use super::network::NetworkResult;
use super::recording::RecorderSnapshot;
use crate::wire::Wire;

/// Where the server ran and how it was set.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The proxy in front of the server, if the streams went through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<EdgeSetup>,
}

/// An edge proxy (nginx, HAProxy) the streams went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EdgeSetup {
    /// `nginx` or `haproxy`.
    pub kind: String,
    /// `tuned`, `naive` or the config file's path.
    pub config: String,
    /// `https://localhost:PORT/`.
    pub url: String,
    /// The proxy's version line (`nginx version: nginx/1.22.1`).
    #[serde(default)]
    pub version: String,
    /// SETTINGS_MAX_CONCURRENT_STREAMS the edge announces (none: unlimited).
    pub h2_max_concurrent_streams: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL: WebSocket over HTTP/2 (RFC 8441).
    pub enable_connect_protocol: bool,
    /// The rendered config, as it ran.
    pub config_text: String,
}

/// Everything measured on one wire.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WireResult {
    #[schemars(with = "crate::wire::WireSchema")]
    pub wire: Wire,
    pub connections: usize,
    /// The most connections open at once.
    pub opened: usize,
    /// HTTP/2 connections that carried the streams (h2 and h2c only).
    pub h2_connections: Option<u64>,
    /// Protocols the server said it negotiated, with stream counts (behind
    /// an edge: the proxy's upstream hop).
    pub protocols_seen: BTreeMap<String, u64>,
    /// Protocols the load generator's own connections negotiated (ALPN
    /// `h2` or `http/1.1`, `h2c`), with stream counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_protocols: BTreeMap<String, u64>,
    pub hold_s: f64,
    pub events_in_hold: u64,
    pub events_per_s: f64,
    pub bytes_per_s: f64,
    /// The newest id when the hold ended: every connection should reach it.
    pub final_id: u64,
    /// Ids never received: holes plus ids short of `final_id` at the end
    /// (the server's newest id from its /stats); against any other server,
    /// holes inside each connection's id sequence only.
    pub lost: u64,
    /// Ids short of `final_id` when the hold ended. `final_id` is the feed
    /// server's newest id, or the highest id any connection saw when the
    /// server has no /stats (connections end a tick apart: not counted lost).
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
    /// From a stream's break (the server closed it, or it failed) to the
    /// response of the stream that resumed it, µs: the retry delay
    /// included. Absent when nothing reconnected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_us: Option<HistogramSummary>,
    pub server: Option<ServerCost>,
    /// What the edge proxy cost and held, when the streams went through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyCost>,
    pub loadgen: LoadgenCost,
    pub problems: Vec<String>,
    /// Load-generator processes that shared the connections.
    #[serde(default = "one")]
    pub processes: usize,
    /// What could not be measured: latency without a stamp in the events,
    /// loss without ids (then `lost` is 0 and means nothing).
    #[serde(default, skip_serializing_if = "Measured::is_all")]
    pub measured: Measured,
    /// Seconds from the first connection attempt until every asked
    /// connection was open (none when they never all were): the connect rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_in_s: Option<f64>,
    /// The raw recorder: exact histograms and per-second counts, for merging.
    pub recorder: RecorderSnapshot,
    /// Stalls, outages and the emulator's figures, when the wire ran over
    /// an emulated link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkResult>,
}

fn one() -> usize {
    1
}

/// Which figures a wire could measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Measured {
    /// Events carried a send time: latency is measured.
    pub latency: bool,
    /// Events carried ids: loss is checked.
    pub loss: bool,
}

impl Default for Measured {
    fn default() -> Self {
        Measured {
            latency: true,
            loss: true,
        }
    }
}

impl Measured {
    pub fn is_all(&self) -> bool {
        self.latency && self.loss
    }
}

/// What the server cost while the connections were held.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerCost {
    pub rss_before: u64,
    pub rss_held: u64,
    /// Read once the connections were gone and RSS had settled: back within
    /// 20 % of `rss_before`, or still for 2 s, or 10 s passed.
    pub rss_after: u64,
    /// Seconds from the connections gone to the `rss_after` reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_after_s: Option<f64>,
    /// (held - before) / connections: idle memory per connection (process RSS;
    /// kernel socket buffers are outside RSS).
    pub rss_per_connection: f64,
    pub cpu_us_hold: u64,
    pub cpu_us_per_event: f64,
}

/// What the edge proxy cost while the connections were held: its
/// processes (master and workers) summed, from /proc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProxyCost {
    pub processes: usize,
    pub rss_before: u64,
    pub rss_held: u64,
    pub rss_after: u64,
    /// (held - before) / connections.
    pub rss_per_connection: f64,
    pub cpu_us_hold: u64,
    pub cpu_us_per_event: f64,
    /// TCP connections the proxy held to the server with the streams open.
    pub upstream_connections: usize,
    /// `upstream_connections` / streams open: 1 when every stream (even
    /// those multiplexed on one client h2 connection) costs its own.
    pub upstream_per_stream: f64,
}

/// What the load generator itself spent during the hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadgenCost {
    pub cpu_us_hold: u64,
    pub cpu_us_per_event: f64,
    /// With the connections held (process RSS).
    pub rss_bytes: u64,
    /// Before connecting (absent from results older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_before: Option<u64>,
    /// (rss_bytes - rss_before) / connections: what a held connection
    /// costs the load generator (memory an earlier wire of the run left
    /// to the allocator is reused, so a later wire may show less).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_per_connection: Option<f64>,
}

impl LoadgenCost {
    /// The cost from what was measured: CPU over the hold's `events`, RSS
    /// held against `rss_before` over the `opened` connections (no figure
    /// per connection when either RSS is unknown).
    pub fn measured(
        cpu_us_hold: u64,
        events: u64,
        rss_bytes: u64,
        rss_before: Option<u64>,
        opened: usize,
    ) -> Self {
        LoadgenCost {
            cpu_us_hold,
            cpu_us_per_event: if events > 0 {
                cpu_us_hold as f64 / events as f64
            } else {
                0.0
            },
            rss_bytes,
            rss_before,
            rss_per_connection: rss_before
                .filter(|_| rss_bytes > 0)
                .map(|before| rss_bytes.saturating_sub(before) as f64 / opened.max(1) as f64),
        }
    }
}
