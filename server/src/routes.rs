//! Every route, registered in one function that the binary, the embedded
//! server and the tests share.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{StatusCode, Version};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::{Deserialize, Serialize};

use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::stats::{ProcessStats, Protocol, WireSnapshot};
use crate::{chaos, chat, echo, sse, web as assets, ws};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<ServerConfig>,
    pub info: Info,
}

/// `GET /info`: how to reach this server and what it is set to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub http_url: String,
    pub https_url: Option<String>,
    pub rate_hz: f64,
    pub payload_bytes: usize,
    pub replay: usize,
    pub retry_ms: u64,
    pub keepalive_s: f64,
    pub cert_path: Option<String>,
    pub spki_sha256: Option<String>,
    /// Always null: actix-http sends no SETTINGS_MAX_CONCURRENT_STREAMS, so
    /// HTTP/2 streams per connection are unlimited (clients assume their own
    /// default; Chromium assumes 100).
    pub h2_max_concurrent_streams: Option<u32>,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sse", web::get().to(sse::handler))
        .route("/ws", web::get().to(ws::handler))
        .route("/stats", web::get().to(stats))
        .route("/metrics", web::get().to(metrics))
        .route("/info", web::get().to(info))
        .route("/admin/drop", web::post().to(admin_drop))
        .route("/admin/restart", web::post().to(chaos::restart))
        .route("/chat", web::post().to(chat::sse_handler))
        .route("/ws/chat", web::get().to(chat::ws_handler))
        .route("/ws/echo", web::get().to(echo::ws_handler))
        .route("/sse/echo", web::get().to(echo::sse_handler))
        .route("/echo", web::post().to(echo::post_handler))
        .route("/", web::get().to(assets::index))
        .route("/{path:.*}", web::get().to(assets::file));
}

/// The protocol the server negotiated for this request.
pub fn protocol_of(req: &HttpRequest) -> Protocol {
    match req.version() {
        Version::HTTP_2 if req.app_config().secure() => Protocol::H2,
        Version::HTTP_2 => Protocol::H2c,
        _ => Protocol::Http1,
    }
}

/// 503 for a stream beyond `--max-connections`.
pub fn refused(state: &AppState) -> HttpResponse {
    tracing::debug!(max = state.config.max_connections, "refusing a stream");
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .body(format!(
            "too many streams: this server holds at most {} (--max-connections)\n",
            state.config.max_connections
        ))
}

fn with_cors(state: &AppState, status: StatusCode) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    if let Ok(origin) = HeaderValue::from_str(&state.config.cors_origin) {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        // Lets a page read Resource Timing (nextHopProtocol) cross-origin.
        res.insert_header(("Timing-Allow-Origin", origin));
    }
    res
}

/// `GET /stats`
#[derive(Debug, Clone, Serialize)]
pub struct StatsBody {
    pub uptime_s: f64,
    pub connections_open: std::collections::BTreeMap<String, i64>,
    pub connections_open_total: i64,
    pub events_sent: u64,
    pub wires: Vec<WireSnapshot>,
    pub resumes: u64,
    pub gaps: u64,
    pub gap_ids: u64,
    pub malformed_resumes: u64,
    pub future_resumes: u64,
    pub refused: u64,
    pub lagged: u64,
    pub slow_gaps: u64,
    pub slow_disconnects: u64,
    pub ws_protocol_errors: u64,
    pub ws_timeouts: u64,
    pub admin_drops: u64,
    pub chaos_drops: u64,
    pub restarts: u64,
    pub restart_refusals: u64,
    pub echo_replies: u64,
    pub echo_rejected: u64,
    pub chat_answers: u64,
    pub process: ProcessStats,
    pub feed: FeedStats,
    pub h2_max_concurrent_streams: Option<u32>,
    pub h2_note: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedStats {
    pub rate_hz: f64,
    pub last_id: u64,
    pub payload_bytes: usize,
    pub replay: usize,
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
        resumes: s.resumes.get(),
        gaps: s.gaps.get(),
        gap_ids: s.gap_ids.get(),
        malformed_resumes: s.malformed_resumes.get(),
        future_resumes: s.future_resumes.get(),
        refused: s.refused.get(),
        lagged: s.lagged.get(),
        slow_gaps: s.slow_gaps.get(),
        slow_disconnects: s.slow_disconnects.get(),
        ws_protocol_errors: s.ws_protocol_errors.get(),
        ws_timeouts: s.ws_timeouts.get(),
        admin_drops: s.admin_drops.get(),
        chaos_drops: s.chaos_drops.get(),
        restarts: s.restarts.get(),
        restart_refusals: s.restart_refusals.get(),
        echo_replies: s.echo_replies.get(),
        echo_rejected: s.echo_rejected.get(),
        chat_answers: s.chat_answers.get(),
        process: s.process(),
        feed: FeedStats {
            rate_hz: state.config.rate,
            last_id: state.hub.latest_id(),
            payload_bytes: state.config.payload_bytes,
            replay: state.config.replay,
        },
        h2_max_concurrent_streams: None,
        h2_note: H2_NOTE,
    }
}

async fn stats(state: web::Data<AppState>) -> HttpResponse {
    with_cors(&state, StatusCode::OK)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(stats_body(&state))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.hub.stats.prometheus())
}

async fn info(state: web::Data<AppState>) -> HttpResponse {
    with_cors(&state, StatusCode::OK).json(&state.info)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AdminQuery {
    token: Option<String>,
}

/// Admin routes: with `--admin-token`, the token is required; without it,
/// only loopback clients are served.
pub(crate) fn admin_allowed(req: &HttpRequest, state: &AppState, query: &AdminQuery) -> bool {
    match &state.config.admin_token {
        Some(token) => {
            let given = query.token.as_deref().or_else(|| {
                req.headers()
                    .get("X-Admin-Token")
                    .and_then(|v| v.to_str().ok())
            });
            given == Some(token.as_str())
        }
        None => req.peer_addr().is_some_and(|a| a.ip().is_loopback()),
    }
}

/// `POST /admin/drop`: closes every stream at once; with `?fraction=f`,
/// about that fraction of them (see `chaos`).
async fn admin_drop(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AdminQuery>,
    fault: web::Query<chaos::DropQuery>,
) -> HttpResponse {
    if !admin_allowed(&req, &state, &query) {
        return HttpResponse::Forbidden().body(
            "admin routes need the server's --admin-token (?token=), or a loopback client\n",
        );
    }
    if let Some(fraction) = fault.fraction {
        if !(0.0..=1.0).contains(&fraction) {
            return HttpResponse::BadRequest().body("fraction must be between 0 and 1\n");
        }
        let body = chaos::fraction_body(&state.hub, fraction);
        tracing::info!(?body, "dropped a fraction of the streams on request");
        return with_cors(&state, StatusCode::OK).json(body);
    }
    let dropped = state.hub.drop_all();
    tracing::info!(dropped, "dropped every stream on request");
    with_cors(&state, StatusCode::OK).json(serde_json::json!({ "dropped": dropped }))
}
