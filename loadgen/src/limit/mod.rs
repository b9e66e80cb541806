//! The six-connection limit: a browser model that opens SSE streams the way
//! Chromium does, against the real server, so its counts can be trusted at
//! scales no browser can be driven to.
//!
//! What Chromium does (measured, see CONVENTIONS.md): over HTTP/1.1 at most
//! 6 connections per group (profile, scheme, host, port), shared by every
//! tab of a profile, the rest queued first come first served, silently,
//! fetches included; over HTTP/2 one connection per origin carrying up to
//! the server's SETTINGS_MAX_CONCURRENT_STREAMS (none announced: 100; at
//! most 256); WebSockets outside the pools (at most 255 per page).
//!
//! The model keeps exactly that bookkeeping ([`pool`]) and really connects
//! ([`origin`]): a stream holds its slot while open, a queued request has
//! no socket, and a closed stream hands its slot to the oldest waiter. Per
//! configuration ([`LimitCase`]) it reports streams asked, opened, pending;
//! the time to first event per stream; what a plain GET to the same origin
//! costs while the streams are held; and WebSockets opened alongside.

mod model;
pub mod origin;
pub mod pool;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use model::{host_names, run_case, Limits, WS_PER_PAGE};

use crate::recorder::HistogramSummary;
use crate::result::ScenarioResult;
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::scenarios::ScenarioServer;
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

    fn wire(self) -> Wire {
        match self {
            Protocol::H1 => Wire::SseH1,
            Protocol::H2 => Wire::SseH2,
        }
    }
}

/// One configuration of the browser model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    pub fn validate(&self) -> Result<(), String> {
        let label = self.label();
        if self.profiles == 0 || self.tabs == 0 || self.streams_per_tab == 0 || self.hosts == 0 {
            return Err(format!(
                "{label}: profiles, tabs, streams per tab and hosts must be at least 1"
            ));
        }
        let streams = self.profiles * self.tabs * self.streams_per_tab;
        if streams + self.profiles * self.tabs * self.ws_per_tab > 10_000 {
            return Err(format!(
                "{label}: at most 10000 streams and WebSockets in one case"
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

/// The `limit` section of a scenario's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitResult {
    pub spec: LimitSpec,
    /// What the server announced in SETTINGS_MAX_CONCURRENT_STREAMS (null:
    /// nothing, as actix does), read off a real h2 connection.
    pub h2_announced_max_streams: Option<u32>,
    /// The streams per HTTP/2 connection the model allowed.
    pub h2_streams_in_force: usize,
    pub cases: Vec<LimitCaseResult>,
}

/// One configuration's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// `new WebSocket` to first message, µs.
    pub ws_first_event_us: HistogramSummary,
    pub problems: Vec<String>,
}

/// A plain `GET /info` to the first group's origin, issued while the
/// streams are held: on HTTP/1.1 with 6 open it waits for a slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    fn not_run(cap: Duration) -> GetProbe {
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

/// Runs every case of `spec` against one server.
pub async fn run(spec: &LimitSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    for case in &spec.cases {
        case.validate().map_err(anyhow::Error::msg)?;
    }
    if spec.cases.is_empty() || spec.h1_per_host == 0 || spec.h2_default_streams == 0 {
        anyhow::bail!("limit: at least one case, and pool limits of 1 or more");
    }
    let server = ScenarioServer::start(opts, spec.rate_hz, &[]).await?;
    let target = server.target.clone();
    let announced = match &target.tls {
        Some(tls) => match origin::announced_max_streams(tls.addr, &tls.h2).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the server's HTTP/2 SETTINGS");
                None
            }
        },
        None => None,
    };
    let h2_streams = announced
        .unwrap_or(spec.h2_default_streams)
        .min(BROWSER_H2_STREAM_CAP) as usize;
    let limits = Limits {
        h1_per_host: spec.h1_per_host,
        h2_streams: h2_streams.max(1),
    };
    let settle = Duration::from_millis(spec.settle_ms);
    let cap = Duration::from_millis(spec.get_cap_ms);
    let mut cases = Vec::new();
    for case in &spec.cases {
        cases.push(run_case(&target, case, limits, settle, cap).await);
    }
    let setup = server.setup.clone();
    server.stop().await;
    let mut wires: Vec<Wire> = spec.cases.iter().map(|c| c.protocol.wire()).collect();
    if spec.cases.iter().any(|c| c.ws_per_tab > 0) {
        wires.push(Wire::WsH1);
    }
    wires.sort();
    wires.dedup();
    let most = cases.iter().map(|c| c.streams_asked).max().unwrap_or(0);
    Ok(ScenarioResult {
        scenario: Scenario::extra("limit", wires, most, spec.rate_hz, 0.0),
        server: setup,
        wires: Vec::new(),
        chat: None,
        echo: None,
        faults: None,
        limit: Some(LimitResult {
            spec: spec.clone(),
            h2_announced_max_streams: announced,
            h2_streams_in_force: limits.h2_streams,
            cases,
        }),
    })
}

/// Runs `specs` one after another and adds their results (and problems)
/// to `result`.
pub async fn run_into(
    specs: &[LimitSpec],
    opts: &RunOptions,
    result: &mut crate::result::RunResult,
    cancel: &tokio_util::sync::CancellationToken,
) {
    for spec in specs {
        if cancel.is_cancelled() {
            result
                .problems
                .push("interrupted before scenario `limit`".into());
            break;
        }
        match run(spec, opts).await {
            Ok(r) => {
                if let Some(l) = &r.limit {
                    result.problems.extend(l.cases.iter().flat_map(|c| {
                        c.problems.iter().map(|p| format!("limit {}: {p}", c.label))
                    }));
                }
                result.scenarios.push(r);
            }
            Err(e) => result.problems.push(format!("limit: {e:#}")),
        }
    }
    result.complete = result.problems.is_empty();
}

/// The suite's limit matrix: 1 to 12 streams over 1 and 2 tabs on
/// HTTP/1.1 and h2, 120 streams on h2 (past the 100 default), a second
/// profile, and the two workarounds: a second host name and one shared
/// stream per profile. One WebSocket per tab rides alongside.
pub fn suite() -> LimitSpec {
    let mut cases = Vec::new();
    for protocol in [Protocol::H1, Protocol::H2] {
        for (tabs, per_tab) in [
            (1, [1, 2, 4, 6, 7, 8, 10, 12].as_slice()),
            (2, &[1, 2, 3, 4, 5, 6]),
        ] {
            for &n in per_tab {
                cases.push(LimitCase {
                    ws_per_tab: 1,
                    ..LimitCase::new(protocol, tabs, n)
                });
            }
        }
    }
    cases.push(LimitCase::new(Protocol::H2, 1, 120));
    cases.push(LimitCase {
        profiles: 2,
        ..LimitCase::new(Protocol::H1, 1, 8)
    });
    for (tabs, per_tab) in [(1, 12), (2, 6)] {
        cases.push(LimitCase {
            hosts: 2,
            ..LimitCase::new(Protocol::H1, tabs, per_tab)
        });
    }
    for tabs in [2, 4] {
        cases.push(LimitCase {
            shared_stream: true,
            ..LimitCase::new(Protocol::H1, tabs, 3)
        });
    }
    LimitSpec {
        cases,
        get_cap_ms: 1000,
        ..LimitSpec::default()
    }
}

/// A plain-text table of the limit sections, for the terminal.
pub fn summary(result: &crate::result::RunResult) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for l in result.scenarios.iter().filter_map(|r| r.limit.as_ref()) {
        let _ = writeln!(
            out,
            "limit (browser model: {} connections per host on HTTP/1.1, {} streams per h2 connection; server announced {})",
            l.spec.h1_per_host,
            l.h2_streams_in_force,
            l.h2_announced_max_streams
                .map_or("no SETTINGS_MAX_CONCURRENT_STREAMS".into(), |v| v.to_string())
        );
        let _ = writeln!(
            out,
            "  case                      asked  open  pending  conns  first event p50/max ms  GET ms (stalled: after release)  ws open"
        );
        for c in &l.cases {
            let get = match (c.get.stalled, c.get.latency_ms, c.get.after_release_ms) {
                (false, Some(ms), _) => format!("{ms:.1}"),
                (true, _, Some(after)) => format!(
                    ">{} (stalled; {after:.1} after {} closed)",
                    c.get.cap_ms, c.get.released
                ),
                (true, _, None) => format!(">{} (stalled)", c.get.cap_ms),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<25} {:>5} {:>5} {:>8} {:>6} {:>11.1} / {:<9.1} {:<32} {:>3}/{}",
                c.label,
                c.streams_asked,
                c.streams_opened,
                c.streams_pending,
                c.connections,
                c.first_event_us.p50 as f64 / 1000.0,
                c.first_event_us.max as f64 / 1000.0,
                get,
                c.ws_opened,
                c.ws_asked
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_valid_and_covers_both_workarounds() {
        let s = suite();
        assert!(s.cases.iter().all(|c| c.validate().is_ok()));
        for w in ["none", "sharding", "shared-stream"] {
            assert!(s.cases.iter().any(|c| c.workaround() == w), "{w}");
        }
        assert!(s
            .cases
            .iter()
            .any(|c| c.protocol == Protocol::H2 && c.tabs == 2));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LimitSpec>(&json).unwrap(), s);
    }

    #[test]
    fn bad_cases_say_why() {
        let mut c = LimitCase::new(Protocol::H2, 1, 4);
        c.hosts = 3;
        assert!(c.validate().unwrap_err().contains("two hosts"));
        assert!(LimitCase::new(Protocol::H1, 0, 4).validate().is_err());
        assert_eq!(LimitCase::new(Protocol::H1, 2, 4).label(), "h1 2x4");
    }
}
