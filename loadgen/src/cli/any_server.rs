//! `loadgen run --sse-url URL --ws-url URL ...`: load any SSE or WebSocket
//! server, with the flags that say how to reach it and how to read its
//! events (the same fields as a scenario file's `[scenario.any_server]`).

use std::time::Duration;

use clap::Args;

use super::numbers::millis;
use crate::result::{AnyServer, SseProtocol, StampUnit};

/// Any server's URLs and event fields.
#[derive(Debug, Clone, Args)]
pub struct AnyServerArgs {
    /// Load any server's event stream at this URL (http:// or https://, any
    /// path and query) instead of the feed server; reported as sse-h1 (or
    /// sse-h2, sse-h2c with --h2, --h2c).
    #[arg(long, value_name = "URL", conflicts_with_all = ["target", "in_process", "scenario"])]
    pub sse_url: Option<String>,
    /// Load any server's WebSocket at this URL (ws:// or wss://); reported as ws-h1.
    #[arg(long, value_name = "URL", conflicts_with_all = ["target", "in_process", "scenario"])]
    pub ws_url: Option<String>,
    /// Carry the SSE URL over HTTP/2 with TLS (an https:// URL, ALPN h2).
    #[arg(long, conflicts_with = "h2c")]
    pub h2: bool,
    /// Carry the SSE URL over cleartext HTTP/2 (prior knowledge, an http:// URL).
    #[arg(long)]
    pub h2c: bool,
    /// An extra request header, `Name: value` (repeatable), e.g. authentication.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// JSON pointer to the send time in each event's JSON (`/sent_at`):
    /// without it no latency, only arrival rate, gaps and stalls.
    #[arg(long, value_name = "POINTER")]
    pub stamp_field: Option<String>,
    /// What the stamp counts since the Unix epoch (ns, us, ms, s; fractions
    /// allowed), or rfc3339 for a UTC date-time string.
    #[arg(long, default_value = "ns")]
    pub stamp_unit: StampUnit,
    /// JSON pointer to the event id (SSE: its `id:` field without this):
    /// without ids there is no loss check.
    #[arg(long, value_name = "POINTER")]
    pub id_field: Option<String>,
    /// Count only SSE events of this type (`event:` field; `message` when absent).
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// The server's process id: its memory and CPU from /proc (else not measured).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// The query parameter a WebSocket resumes with after a reconnect
    /// (`lastEventId`); without it a WebSocket reopens live.
    #[arg(long, value_name = "NAME")]
    pub ws_resume_query: Option<String>,
    /// An inter-arrival gap longer than this counts as a stall.
    #[arg(long, default_value = "1s", value_parser = millis(AnyServer::STALL_MS))]
    pub stall: Duration,
}

impl AnyServerArgs {
    /// Any server's settings, when a URL was given; TLS trust and the
    /// remote permission come from the shared server flags.
    pub fn settings(
        &self,
        ca_cert: Option<std::path::PathBuf>,
        insecure: bool,
        allow_remote: bool,
    ) -> Result<Option<AnyServer>, String> {
        if self.sse_url.is_none() && self.ws_url.is_none() {
            let only_with_urls = [
                (self.h2, "--h2"),
                (self.h2c, "--h2c"),
                (!self.headers.is_empty(), "--header"),
                (self.stamp_field.is_some(), "--stamp-field"),
                (self.id_field.is_some(), "--id-field"),
                (self.event.is_some(), "--event"),
                (self.server_pid.is_some(), "--server-pid"),
                (self.ws_resume_query.is_some(), "--ws-resume-query"),
            ];
            if let Some((_, flag)) = only_with_urls.iter().find(|(set, _)| *set) {
                return Err(format!(
                    "{flag} is for any server: give --sse-url or --ws-url too"
                ));
            }
            return Ok(None);
        }
        let any = AnyServer {
            sse_url: self.sse_url.clone(),
            sse_protocol: match (self.h2, self.h2c) {
                (true, _) => SseProtocol::H2,
                (_, true) => SseProtocol::H2c,
                _ => SseProtocol::H1,
            },
            ws_url: self.ws_url.clone(),
            headers: self.headers.clone(),
            ca_cert,
            insecure,
            allow_remote,
            stamp_field: self.stamp_field.clone(),
            stamp_unit: self.stamp_unit,
            id_field: self.id_field.clone(),
            event: self.event.clone(),
            server_pid: self.server_pid,
            ws_resume_query: self.ws_resume_query.clone(),
            stall_ms: u64::try_from(self.stall.as_millis()).unwrap_or(u64::MAX),
        };
        any.validate()?;
        Ok(Some(any))
    }
}
