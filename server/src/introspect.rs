//! What the server says about itself: `GET /stats` (JSON, read by the page
//! and the load generator), `GET /metrics` (Prometheus text) and `GET /info`.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::allocator::AllocatorStats;
use crate::broker::BrokerFigures;
use crate::state::{with_cors, AppState};
use crate::stats::{CounterValues, ProcessStats, WireSnapshot};

/// `GET /stats`
#[derive(Debug, Clone, Serialize)]
pub struct StatsBody {
    pub uptime_s: f64,
    pub connections_open: BTreeMap<String, i64>,
    pub connections_open_total: i64,
    pub events_sent: u64,
    pub wires: Vec<WireSnapshot>,
    /// Every counter, by its own name (`resumes`, `gaps`, `refused`, …).
    #[serde(flatten)]
    pub counters: CounterValues,
    pub process: ProcessFigures,
    pub feed: FeedStats,
    /// The shared feed (`--feed-redis`): this instance's role, whether Redis
    /// is reachable, the last id read, reconnects. Absent for a feed of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerFigures>,
    pub limits: Limits,
    pub h2_max_concurrent_streams: Option<u32>,
    pub h2_note: &'static str,
}

/// The process's figures: memory, CPU, descriptors.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessFigures {
    #[serde(flatten)]
    pub usage: ProcessStats,
    /// Descriptors held now: sockets, listeners and the runtime's own.
    pub open_fds: u64,
    /// Log lines from actix's internals (accept errors, malformed requests)
    /// dropped by the log throttle.
    pub log_lines_suppressed: u64,
    /// The allocator's own figures: what the program holds (`allocated`)
    /// against what stays resident.
    pub allocator: Option<AllocatorStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedStats {
    pub rate_hz: f64,
    pub last_id: u64,
    pub payload_bytes: usize,
    pub replay: usize,
}

/// The limits in force (see `nofile` for how they are derived).
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_streams: usize,
    pub max_tcp_connections: usize,
    pub open_files_limit: u64,
    pub ws_max_frame: usize,
}

const H2_NOTE: &str = "actix-http announces no SETTINGS_MAX_CONCURRENT_STREAMS: HTTP/2 streams per connection are unlimited on this server";

pub fn stats_body(state: &AppState) -> StatsBody {
    let s = &state.hub.stats;
    let wires = s.by_wire();
    StatsBody {
        uptime_s: s.uptime_s(),
        connections_open: wires.iter().map(|w| (w.wire.clone(), w.open)).collect(),
        connections_open_total: s.open_total(),
        events_sent: s.events_total(),
        wires,
        counters: s.counters.values(),
        process: ProcessFigures {
            usage: s.process(),
            open_fds: s.open_fds(),
            log_lines_suppressed: crate::logging::suppressed(),
            allocator: crate::allocator::stats(),
        },
        feed: FeedStats {
            rate_hz: state.config.rate,
            last_id: state.hub.latest_id(),
            payload_bytes: state.config.payload_bytes,
            replay: state.config.replay,
        },
        broker: state.shared_feed.as_ref().map(|f| f.figures()),
        limits: Limits {
            max_streams: state.info.max_streams,
            max_tcp_connections: state.info.max_tcp_connections,
            open_files_limit: state.info.open_files_limit,
            ws_max_frame: state.config.ws_max_frame,
        },
        h2_max_concurrent_streams: None,
        h2_note: H2_NOTE,
    }
}

/// `GET /stats`
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    with_cors(&state, StatusCode::OK)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(stats_body(&state))
}

/// `GET /metrics`
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.hub.stats.prometheus())
}

/// `GET /info`
pub async fn info(state: web::Data<AppState>) -> HttpResponse {
    with_cors(&state, StatusCode::OK).json(&state.info)
}
