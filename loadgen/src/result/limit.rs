//! The browser model's settings and figures: streams asked, opened and
//! pending per pool, the GET stuck behind them (see `limit`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::Bounds;
use super::histogram::HistogramSummary;
use crate::wire::Wire;

/// Per-stream times kept in the result (the summary covers all of them).
pub const PER_STREAM_KEPT: usize = 1000;

/// Chromium's HTTP/1.1 connections per group.
pub const BROWSER_H1_PER_HOST: usize = 6;
/// Chromium's HTTP/2 streams per connection when the server announces none.
pub const BROWSER_H2_DEFAULT_STREAMS: u32 = 100;
/// Chromium never opens more streams per connection than this, whatever
/// the server announces.
pub const BROWSER_H2_STREAM_CAP: u32 = 256;

/// The page's origin: HTTP/1.1 (plain) or HTTP/2 (TLS, ALPN h2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    H1,
    H2,
}

impl Protocol {
    /// As `nextHopProtocol` and the server's hello name it.
    pub fn http_name(self) -> &'static str {
        match self {
            Protocol::H1 => "http/1.1",
            Protocol::H2 => "h2",
        }
    }

    /// The wire its streams use.
    pub fn wire(self) -> Wire {
        match self {
            Protocol::H1 => Wire::SseH1,
            Protocol::H2 => Wire::SseH2,
        }
    }
}

/// One configuration of the browser model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitCase {
    pub protocol: Protocol,
    /// Browser profiles (each has its own pools).
    #[serde(default = "one")]
    pub profiles: usize,
    /// Tabs per profile (they share the profile's pools).
    #[serde(default = "one")]
    pub tabs: usize,
    /// EventSources each tab opens.
    pub streams_per_tab: usize,
    /// Host names the streams are spread over, round-robin (sharding): each
    /// is its own pool group.
    #[serde(default = "one")]
    pub hosts: usize,
    /// WebSockets each tab opens alongside (outside the pools).
    #[serde(default)]
    pub ws_per_tab: usize,
    /// The workaround: one stream per profile, fanned out to every tab's
    /// streams (a SharedWorker or a leader tab).
    #[serde(default)]
    pub shared_stream: bool,
}

fn one() -> usize {
    1
}

impl LimitCase {
    pub fn new(protocol: Protocol, tabs: usize, streams_per_tab: usize) -> LimitCase {
        LimitCase {
            protocol,
            profiles: 1,
            tabs,
            streams_per_tab,
            hosts: 1,
            ws_per_tab: 0,
            shared_stream: false,
        }
    }

    /// `none`, `sharding` or `shared-stream`.
    pub fn workaround(&self) -> &'static str {
        if self.shared_stream {
            "shared-stream"
        } else if self.hosts > 1 {
            "sharding"
        } else {
            "none"
        }
    }

    /// `h1 2x4`, `h1 2x6 shared-stream`, `h2 1x8 2 profiles`...
    pub fn label(&self) -> String {
        let mut s = format!(
            "{} {}x{}",
            match self.protocol {
                Protocol::H1 => "h1",
                Protocol::H2 => "h2",
            },
            self.tabs,
            self.streams_per_tab
        );
        if self.profiles > 1 {
            s.push_str(&format!(" {} profiles", self.profiles));
        }
        if self.hosts > 1 {
            s.push_str(&format!(" {} hosts", self.hosts));
        }
        if self.shared_stream {
            s.push_str(" shared-stream");
        }
        if self.ws_per_tab > 0 {
            s.push_str(&format!(" +{}ws", self.ws_per_tab));
        }
        s
    }

    /// Browser profiles.
    pub const PROFILES: Bounds<usize> = Bounds::new(1, 1_000, "");
    /// Tabs per profile.
    pub const TABS: Bounds<usize> = Bounds::new(1, 1_000, "");
    /// EventSources per tab.
    pub const STREAMS_PER_TAB: Bounds<usize> = Bounds::new(1, 10_000, "");
    /// Host names (pool groups) per profile.
    pub const HOSTS: Bounds<usize> = Bounds::new(1, 250, "");
    /// WebSockets per tab.
    pub const WS_PER_TAB: Bounds<usize> = Bounds::new(0, 10_000, "");
    /// Streams and WebSockets of one case together.
    pub const MAX_OPEN: usize = 10_000;

    /// Checks every number against its range, and the case's total.
    pub fn validate(&self) -> Result<(), String> {
        let label = self.label();
        let named = |e: String| format!("{label}: {e}");
        Self::PROFILES
            .check_named("profiles", self.profiles)
            .map_err(named)?;
        Self::TABS.check_named("tabs", self.tabs).map_err(named)?;
        Self::STREAMS_PER_TAB
            .check_named("streams per tab", self.streams_per_tab)
            .map_err(named)?;
        Self::HOSTS
            .check_named("hosts", self.hosts)
            .map_err(named)?;
        Self::WS_PER_TAB
            .check_named("WebSockets per tab", self.ws_per_tab)
            .map_err(named)?;
        // Each factor is bounded above, so these products fit in a u64.
        let pages = self.profiles as u64 * self.tabs as u64;
        let open = pages * (self.streams_per_tab as u64 + self.ws_per_tab as u64);
        if open > Self::MAX_OPEN as u64 {
            return Err(format!(
                "{label}: at most {} streams and WebSockets in one case",
                Self::MAX_OPEN
            ));
        }
        if self.protocol == Protocol::H2 && self.hosts > 2 {
            return Err(format!(
                "{label}: the generated certificate names two hosts (localhost, 127.0.0.1): --hosts 2 at most over h2"
            ));
        }
        Ok(())
    }
}

/// A `limit` run: some cases and the browser's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitSpec {
    pub cases: Vec<LimitCase>,
    /// HTTP/1.1 connections per group (Chromium: 6).
    pub h1_per_host: usize,
    /// HTTP/2 streams per connection when the server announces no
    /// SETTINGS_MAX_CONCURRENT_STREAMS (Chromium: 100).
    pub h2_default_streams: u32,
    /// How long the model waits for every connected stream's first event.
    pub settle_ms: u64,
    /// How long the GET may wait before it counts as stalled (and again
    /// after streams were closed to free a slot).
    pub get_cap_ms: u64,
    /// The embedded server's feed rate.
    pub rate_hz: f64,
    /// An edge proxy (`nginx`, `haproxy`) in front of the embedded server:
    /// the HTTP/2 cases go through it, so the model learns its SETTINGS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// The edge's config: `tuned` (default), `naive`, or a template file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_config: Option<String>,
}

impl Default for LimitSpec {
    fn default() -> Self {
        LimitSpec {
            cases: vec![LimitCase::new(Protocol::H1, 1, 8)],
            h1_per_host: BROWSER_H1_PER_HOST,
            h2_default_streams: BROWSER_H2_DEFAULT_STREAMS,
            settle_ms: 5000,
            get_cap_ms: 1500,
            rate_hz: 5.0,
            edge: None,
            edge_config: None,
        }
    }
}

impl LimitSpec {
    /// HTTP/1.1 connections per pool group.
    pub const H1_PER_HOST: Bounds<usize> = Bounds::new(1, 1_000, "");
    /// HTTP/2 streams per connection when the server announces none.
    pub const H2_DEFAULT_STREAMS: Bounds<u32> = Bounds::new(1, 1_000_000, "");
    /// The model's settle time and the GET's cap.
    pub const MILLIS: Bounds<u64> = Bounds::new(1, 600_000, " ms");
    /// The embedded server's feed rate.
    pub const RATE_HZ: Bounds<f64> = Bounds::new(0.01, 1_000_000.0, " events/s");

    /// Checks every case and number against its range.
    pub fn validate(&self) -> Result<(), String> {
        let named = |e: String| format!("limit: {e}");
        if self.cases.is_empty() {
            return Err(named("at least one case".into()));
        }
        for case in &self.cases {
            case.validate()?;
        }
        Self::H1_PER_HOST
            .check_named("connections per host (h1_per_host)", self.h1_per_host)
            .map_err(named)?;
        Self::H2_DEFAULT_STREAMS
            .check_named("h2_default_streams", self.h2_default_streams)
            .map_err(named)?;
        Self::MILLIS
            .check_named("settle_ms", self.settle_ms)
            .map_err(named)?;
        Self::MILLIS
            .check_named("get_cap_ms", self.get_cap_ms)
            .map_err(named)?;
        Self::RATE_HZ
            .check_named("rate_hz", self.rate_hz)
            .map_err(named)?;
        self.edge().map_err(named)?;
        Ok(())
    }

    /// The edge proxy in front of the embedded server and its config, if any.
    pub fn edge(&self) -> Result<Option<(edge::EdgeKind, edge::EdgeProfile)>, String> {
        super::scenario::edge_choice(self.edge.as_deref(), self.edge_config.as_deref())
    }
}

/// The `limit` section of a scenario's result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitResult {
    pub spec: LimitSpec,
    /// What the server announced in SETTINGS_MAX_CONCURRENT_STREAMS (null:
    /// nothing, as actix does), read off a real h2 connection.
    pub h2_announced_max_streams: Option<u32>,
    /// The streams per HTTP/2 connection the model allowed.
    pub h2_streams_in_force: usize,
    /// The server announced SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441):
    /// the model then opens an HTTP/2 case's WebSockets on the origin's h2
    /// connection, as Chromium does for `wss://`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub h2_enable_connect_protocol: bool,
    pub cases: Vec<LimitCaseResult>,
}

/// One configuration's figures.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LimitCaseResult {
    /// `h1 2x4` and the like: protocol, tabs x streams per tab, extras.
    pub label: String,
    pub case: LimitCase,
    /// `http/1.1` or `h2`.
    pub protocol_name: String,
    /// `none`, `sharding` or `shared-stream`.
    pub workaround: String,
    pub host_names: Vec<String>,
    /// Slots per group: connections (HTTP/1.1) or streams (HTTP/2).
    pub pool_limit: usize,
    /// Pool groups used (profiles x host names).
    pub pools: usize,
    pub streams_asked: usize,
    /// Streams whose first event arrived.
    pub streams_opened: usize,
    /// Neither open nor failed: queued for a slot, or connecting.
    pub streams_pending: usize,
    /// Of the pending, those waiting for a pool slot (no socket).
    pub streams_queued: usize,
    pub streams_failed: usize,
    /// TCP connections the streams used.
    pub connections: usize,
    /// The most slots of one group held at once.
    pub peak_slots_in_use: usize,
    /// What the server's hello said it negotiated, with stream counts.
    pub protocols_seen: BTreeMap<String, u64>,
    /// Asked (`new EventSource`) to first event, opened streams, µs.
    pub first_event_us: HistogramSummary,
    /// The same per stream in asking order, ms; null: never opened.
    pub first_event_ms: Vec<Option<f64>>,
    pub get: GetProbe,
    pub ws_asked: usize,
    pub ws_opened: usize,
    pub ws_failed: usize,
    /// TCP connections of their own the WebSockets used: one each over
    /// HTTP/1.1, none when they ride the origin's h2 connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_connections: Option<usize>,
    /// `new WebSocket` to first message, µs.
    pub ws_first_event_us: HistogramSummary,
    pub problems: Vec<String>,
}

/// A plain `GET /info` to the first group's origin, issued while the
/// streams are held: on HTTP/1.1 with 6 open it waits for a slot.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GetProbe {
    pub issued: bool,
    /// Whether a slot was free when it was issued.
    pub slot_free: bool,
    /// Requests that were already waiting in its group when it was issued.
    pub queued_behind: usize,
    /// Issued to response body read, ms (including any wait); null if it
    /// never completed.
    pub latency_ms: Option<f64>,
    /// Still waiting at the cap.
    pub stalled: bool,
    pub cap_ms: u64,
    /// Streams closed to free a slot for it (after it stalled).
    pub released: usize,
    /// From closing those streams to the response, ms.
    pub after_release_ms: Option<f64>,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl GetProbe {
    /// A GET that was not issued (the case opened no pool).
    pub fn not_run(cap: Duration) -> GetProbe {
        GetProbe {
            issued: false,
            slot_free: false,
            queued_behind: 0,
            latency_ms: None,
            stalled: false,
            cap_ms: cap.as_millis() as u64,
            released: 0,
            after_release_ms: None,
            status: None,
            error: None,
        }
    }
}
