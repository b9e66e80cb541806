//! Reads the server's `/stats`: its memory, CPU, open streams and newest id.
//! The same for an embedded child server and an external one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::client::ClientError;
use crate::net::connect_tcp;
use crate::sse_client::http_error;

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
}

#[derive(Deserialize)]
struct RawStats {
    connections_open_total: i64,
    events_sent: u64,
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
    addr: SocketAddr,
    url: Arc<str>,
}

impl ServerProbe {
    pub fn new(addr: SocketAddr) -> Self {
        ServerProbe {
            addr,
            url: format!("http://{addr}/stats").into(),
        }
    }

    /// One `GET /stats`, bounded in time.
    pub async fn snapshot(&self) -> Result<ServerSnapshot, ClientError> {
        let timeout = Duration::from_secs(5);
        tokio::time::timeout(timeout, self.fetch())
            .await
            .map_err(|_| ClientError::Timeout {
                url: self.url.clone(),
                what: "reading /stats",
                secs: timeout.as_secs_f64(),
            })?
    }

    async fn fetch(&self) -> Result<ServerSnapshot, ClientError> {
        let tcp = connect_tcp(self.addr, None, &self.url).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| http_error(&self.url, e))?;
        tokio::spawn(conn);
        let req = http::Request::get("/stats")
            .header(http::header::HOST, self.addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("a request from valid parts always builds");
        let res = send
            .send_request(req)
            .await
            .map_err(|e| http_error(&self.url, e))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| http_error(&self.url, e))?
            .to_bytes();
        if status != 200 {
            return Err(ClientError::Status {
                url: self.url.clone(),
                status,
                body: crate::client::snippet(&String::from_utf8_lossy(&body)),
            });
        }
        let raw: RawStats = serde_json::from_slice(&body).map_err(|e| {
            ClientError::protocol(&self.url, format!("not the feed server's /stats: {e}"))
        })?;
        Ok(ServerSnapshot {
            rss_bytes: raw.process.rss_bytes,
            cpu_us: raw.process.cpu_user_us + raw.process.cpu_system_us,
            last_id: raw.feed.last_id,
            open: raw.connections_open_total,
            events_sent: raw.events_sent,
            rate_hz: raw.feed.rate_hz,
            payload_bytes: raw.feed.payload_bytes,
        })
    }
}
