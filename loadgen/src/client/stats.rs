//! The one typed `/stats` probe: the server's memory, CPU, open streams,
//! newest id and announced gaps, from an embedded child server or an
//! external one alike.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::http::call_once;

/// How long one `/stats` call may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// The figures of `/stats` the load generator uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerSnapshot {
    pub rss_bytes: u64,
    pub cpu_us: u64,
    pub last_id: u64,
    pub open: i64,
    pub events_sent: u64,
    pub rate_hz: f64,
    pub payload_bytes: usize,
    /// Ids the server announced lost with gap events, since it started.
    #[serde(default)]
    pub gap_ids: u64,
    /// Streams resumed from an event id, since it started.
    #[serde(default)]
    pub resumes: u64,
    /// WebSockets closed for no pong within twice the keep-alive period.
    #[serde(default)]
    pub ws_timeouts: u64,
}

#[derive(Deserialize)]
struct RawStats {
    connections_open_total: i64,
    events_sent: u64,
    #[serde(default)]
    gap_ids: u64,
    #[serde(default)]
    resumes: u64,
    #[serde(default)]
    ws_timeouts: u64,
    process: RawProcess,
    feed: RawFeed,
}

#[derive(Deserialize)]
struct RawProcess {
    rss_bytes: u64,
    cpu_user_us: u64,
    cpu_system_us: u64,
}

#[derive(Deserialize)]
struct RawFeed {
    rate_hz: f64,
    last_id: u64,
    payload_bytes: usize,
}

/// Asks one server for its figures.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    endpoint: Endpoint,
    dialer: Dialer,
}

impl ServerProbe {
    /// The probe of the server whose plain listener is `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        ServerProbe::with_dialer(addr, Dialer::default())
    }

    /// The same, its connections made by `dialer` (e.g. from inside a
    /// network namespace).
    pub fn with_dialer(addr: SocketAddr, dialer: Dialer) -> Self {
        let endpoint = Endpoint::new(&format!("http://{addr}/stats"), addr, None)
            .expect("a socket address and a path make a URL");
        ServerProbe { endpoint, dialer }
    }

    /// One `GET /stats`, bounded in time.
    pub async fn snapshot(&self) -> Result<ServerSnapshot, ClientError> {
        let url = self.endpoint.shown();
        let (status, body) = call_once(
            &self.dialer,
            &self.endpoint,
            http::Method::GET,
            STATS_TIMEOUT,
            "reading /stats",
        )
        .await?;
        if status != 200 {
            return Err(ClientError::Status {
                url: url.clone(),
                status,
                body: server::event::snippet(&String::from_utf8_lossy(&body)),
            });
        }
        let raw: RawStats = serde_json::from_slice(&body).map_err(|e| {
            ClientError::protocol(url, format!("not the feed server's /stats: {e}"))
        })?;
        Ok(ServerSnapshot {
            rss_bytes: raw.process.rss_bytes,
            cpu_us: raw.process.cpu_user_us + raw.process.cpu_system_us,
            last_id: raw.feed.last_id,
            open: raw.connections_open_total,
            events_sent: raw.events_sent,
            rate_hz: raw.feed.rate_hz,
            payload_bytes: raw.feed.payload_bytes,
            gap_ids: raw.gap_ids,
            resumes: raw.resumes,
            ws_timeouts: raw.ws_timeouts,
        })
    }
}
