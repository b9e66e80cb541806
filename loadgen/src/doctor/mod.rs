//! `loadgen doctor URL`: checks a deployed SSE or WebSocket endpoint for
//! the pitfalls that hurt in production (a proxy buffering or cutting the
//! stream, compression, no HTTP/2, no resume, a WebSocket that never
//! upgrades) and says, per check, PASS, WARN or FAIL with the fix.
//!
//! It speaks to the endpoint with the load generator's own connection core
//! (endpoints, the dialer, the event-stream parser, the WebSocket client)
//! and reads events with the any-server decoder (`FieldDecoder`), so a
//! server that does not speak the feed's JSON is read by where it keeps
//! its send time (`--stamp-field`, `--stamp-unit`) and which event type
//! counts (`--event`); `--header` goes on every request. `--max-wait`
//! bounds the whole run.
//!
//! - [`check`]: a check's verdict, what was seen, the fix.
//! - [`origin`]: TLS, ALPN and what an HTTP/2 server announces.
//! - [`stream`]: one SSE stream watched for a while, then resumed.
//! - [`socket`]: the WebSocket upgrade, a ping, and WebSocket over HTTP/2.

mod check;
mod origin;
mod socket;
mod stream;

use std::time::Duration;

use tokio::time::Instant;

use crate::client::{locate, FieldDecoder, Trust};
use crate::result::{parse_header, AnyServer, StampUnit};
pub use check::{Check, DoctorError, Verdict};

/// The feed server's stamp: where the doctor looks when not told.
pub const FEED_STAMP_FIELD: &str = "/sent_unix_ns";

/// What to check and how.
#[derive(Debug, Clone)]
pub struct DoctorSpec {
    /// The SSE (`http`, `https`) or WebSocket (`ws`, `wss`) URL.
    pub url: String,
    /// The WebSocket URL to check beside an SSE URL (default: the same
    /// origin's `/ws` when the SSE path is `/sse`).
    pub ws_url: Option<String>,
    pub trust: Trust,
    pub allow_remote: bool,
    /// The whole run's bound.
    pub max_wait: Duration,
    /// How to read the events: extra request headers (`Name: value`), the
    /// stamp's JSON pointer and unit, the event type that counts. The
    /// default reads the feed server's `sent_unix_ns` (ns).
    pub reading: EventReading,
}

/// How the doctor reads a server's events and what it sends with requests.
#[derive(Debug, Clone)]
pub struct EventReading {
    /// `Name: value` each, on the stream's and the WebSocket's requests.
    pub headers: Vec<String>,
    /// JSON pointer to the send time in each event's JSON.
    pub stamp_field: String,
    pub stamp_unit: StampUnit,
    /// Only SSE events of this type count (`message` when absent).
    pub event: Option<String>,
}

impl Default for EventReading {
    fn default() -> Self {
        EventReading {
            headers: Vec::new(),
            stamp_field: FEED_STAMP_FIELD.into(),
            stamp_unit: StampUnit::Ns,
            event: None,
        }
    }
}

impl EventReading {
    /// The headers, parsed; the SSE decoder (pointers checked).
    fn prepare(
        &self,
    ) -> Result<(Vec<(http::HeaderName, http::HeaderValue)>, FieldDecoder), DoctorError> {
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DoctorError::Settings)?;
        let any = AnyServer {
            stamp_field: Some(self.stamp_field.clone()),
            stamp_unit: self.stamp_unit,
            event: self.event.clone(),
            ..AnyServer::default()
        };
        let decoder = FieldDecoder::new(&any, true).map_err(DoctorError::Settings)?;
        Ok((headers, decoder))
    }
}

/// Every check's outcome, in order.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The worst verdict (PASS when nothing was checked).
    pub fn worst(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Runs every check that applies to the URL within `max_wait`.
pub async fn diagnose(spec: &DoctorSpec) -> Result<Diagnosis, DoctorError> {
    let deadline = Instant::now() + spec.max_wait;
    let url = url::Url::parse(&spec.url).map_err(|e| crate::client::TargetError::BadUrl {
        url: spec.url.clone(),
        reason: e.to_string(),
    })?;
    let (headers, decoder) = spec.reading.prepare()?;
    let (addr, host) = locate(&url, &spec.url, spec.allow_remote).await?;
    let place = origin::Place {
        url: url.clone(),
        addr,
        host,
        trust: spec.trust.clone(),
        headers: headers.clone(),
    };
    let mut checks = Vec::new();
    let secure = matches!(url.scheme(), "https" | "wss");
    let announced = if secure {
        origin::checks(&place, deadline, &mut checks).await
    } else {
        checks.push(Check::warn(
            "HTTP/2",
            format!("plain {}:// (no TLS, so no ALPN h2 for browsers)", url.scheme()),
            "serve over TLS with HTTP/2 at the edge (nginx `listen … ssl http2`, HAProxy `bind … ssl alpn h2,http/1.1`): over HTTP/1.1 a browser holds 6 streams per origin",
        ));
        None
    };
    let ws_url = match url.scheme() {
        "http" | "https" => {
            stream::checks(&place, &decoder, deadline, &mut checks).await?;
            spec.ws_url.clone().or_else(|| socket::beside(&url))
        }
        _ => Some(spec.url.clone()),
    };
    if let Some(ws) = ws_url {
        socket::checks(
            &ws,
            &spec.trust,
            &headers,
            spec.allow_remote,
            announced,
            deadline,
            &mut checks,
        )
        .await?;
    }
    Ok(Diagnosis { checks })
}
