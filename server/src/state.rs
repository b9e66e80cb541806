//! What every route shares: the app state, the server's description, and
//! the small answers several routes give alike (the 503 refusal, a 400 for a
//! number out of range, CORS headers, the keep-alive timer).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{StatusCode, Version};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::{Deserialize, Serialize};
use tokio::time::{Interval, MissedTickBehavior};

use crate::broker::SharedFeed;
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::wire::Protocol;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub hub: Arc<Hub>,
    pub config: Arc<ServerConfig>,
    pub info: Info,
    /// The shared feed this server relays (`--feed-redis`), if any.
    pub shared_feed: Option<Arc<SharedFeed>>,
    /// Every event stream's response headers, made once.
    pub stream_headers: StreamHeaders,
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
    /// Streams (SSE and WebSocket) beyond which new ones get 503: the
    /// `--max-connections` given, or the one derived from the open-file limit.
    #[serde(default)]
    pub max_streams: usize,
    /// TCP connections the server accepts at once (all workers together);
    /// beyond it new ones wait in the kernel's backlog.
    #[serde(default)]
    pub max_tcp_connections: usize,
    /// The process's open-file limit when the server started.
    #[serde(default)]
    pub open_files_limit: u64,
}

/// The protocol the server negotiated for this request.
pub fn protocol_of(req: &HttpRequest) -> Protocol {
    match req.version() {
        Version::HTTP_2 if req.app_config().secure() => Protocol::H2,
        Version::HTTP_2 => Protocol::H2c,
        _ => Protocol::Http1,
    }
}

/// What the client negotiated with a reverse proxy in front, from the
/// `X-Client-Alpn` header the project's edge configs set (HAProxy
/// `%[ssl_fc_alpn]`, nginx `$ssl_alpn_protocol`). Only the two ALPN names a
/// browser uses are taken; anything else (a client's own header, a proxy
/// without TLS) is ignored. Informational: it goes into the hello only.
pub fn edge_protocol_of(req: &HttpRequest) -> Option<&'static str> {
    match req.headers().get("x-client-alpn")?.as_bytes() {
        b"h2" => Some("h2"),
        b"http/1.1" => Some("http/1.1"),
        _ => None,
    }
}

/// 503 for a stream beyond the stream limit. On HTTP/1.1 the connection is
/// closed after it, so a refused client gives its descriptor back at once
/// instead of holding it in keep-alive.
pub fn refused(state: &AppState) -> HttpResponse {
    let max = state.info.max_streams;
    tracing::debug!(max, "refusing a stream");
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .force_close()
        .body(format!(
            "too many streams: this server holds at most {max} (--max-connections)\n"
        ))
}

/// 400 for a request whose number or body is out of range, with the reason.
/// A client mistake: counted, logged at DEBUG only.
pub fn bad_request(state: &AppState, reason: impl std::fmt::Display) -> HttpResponse {
    state.hub.stats.counters.bad_requests.inc();
    tracing::debug!(%reason, "bad request");
    HttpResponse::BadRequest().body(format!("{reason}\n"))
}

/// A response builder with the CORS headers of `--cors-origin`.
pub fn with_cors(state: &AppState, status: StatusCode) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    for header in cors_headers(&state.config.cors_origin) {
        res.insert_header(header);
    }
    res
}

/// The CORS headers of `--cors-origin` (none if it is not a valid header
/// value): every response's, event streams' included.
fn cors_headers(origin: &str) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    HeaderValue::from_str(origin)
        .into_iter()
        .flat_map(|origin| {
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()),
                // Lets a page read Resource Timing (nextHopProtocol) cross-origin.
                (HeaderName::from_static("timing-allow-origin"), origin),
            ]
        })
}

/// The headers of every event stream, built once: `text/event-stream`,
/// `no-cache`, the CORS headers of `--cors-origin`, and
/// `X-Accel-Buffering: no` so nginx forwards each event at once.
#[derive(Debug, Clone)]
pub struct StreamHeaders(HeaderMap);

impl StreamHeaders {
    pub fn new(cors_origin: &str) -> Self {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        for (name, value) in cors_headers(cors_origin) {
            headers.insert(name, value);
        }
        StreamHeaders(headers)
    }

    /// A copy for one response: same capacity, names and values shared.
    pub fn to_map(&self) -> HeaderMap {
        self.0.clone()
    }

    /// Puts the headers into `map` (names and values shared), keeping the
    /// map's own allocation.
    pub fn fill(&self, map: &mut HeaderMap) {
        for (name, value) in self.0.iter() {
            map.insert(name.clone(), value.clone());
        }
    }
}

/// The keep-alive timer of a stream: first tick one period from now; a late
/// tick is not made up for (an idle stream needs one sign of life, not a burst).
pub fn keepalive_timer(period: Duration) -> Interval {
    let period = period.max(Duration::from_millis(1));
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}
