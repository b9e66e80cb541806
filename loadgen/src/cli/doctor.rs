//! `loadgen doctor URL`: check a deployed SSE or WebSocket endpoint.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::numbers::seconds;
use crate::client::Trust;
use crate::doctor::{DoctorSpec, EventReading, FEED_STAMP_FIELD};
use crate::result::{Bounds, StampUnit, DAY_S};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The endpoint: an SSE URL (http://, https://) or a WebSocket URL
    /// (ws://, wss://), path and query included.
    pub url: String,
    /// The WebSocket to check beside an SSE URL (default: the same origin's
    /// /ws when the SSE path ends in /sse).
    #[arg(long)]
    pub ws_url: Option<String>,
    /// Bounds the whole run (the SSE stream is watched for about 45 % of it).
    #[arg(long, default_value = "10s", value_parser = seconds(Bounds::new(1.0, DAY_S, " s")))]
    pub max_wait: Duration,
    /// PEM file with the certificate to trust (without it the certificate
    /// is not verified, and the doctor says so).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Allow a URL that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// An extra request header, `Name: value` (repeatable), e.g.
    /// authentication; sent on the stream's and the WebSocket's requests.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// JSON pointer to the send time in each event's JSON: with it the
    /// buffering check measures lateness (default: the feed server's).
    #[arg(long, value_name = "POINTER", default_value = FEED_STAMP_FIELD)]
    pub stamp_field: String,
    /// What the stamp counts since the Unix epoch (ns, us, ms, s; fractions
    /// allowed), or rfc3339 for a UTC date-time string.
    #[arg(long, default_value = "ns")]
    pub stamp_unit: StampUnit,
    /// Only SSE events of this type count (`event:` field; `message` when absent).
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
}

impl DoctorArgs {
    pub fn spec(&self) -> DoctorSpec {
        DoctorSpec {
            url: self.url.clone(),
            ws_url: self.ws_url.clone(),
            trust: match &self.ca_cert {
                Some(p) => Trust::CaFile(p.clone()),
                None => Trust::Insecure,
            },
            allow_remote: self.allow_remote,
            max_wait: self.max_wait,
            reading: EventReading {
                headers: self.headers.clone(),
                stamp_field: self.stamp_field.clone(),
                stamp_unit: self.stamp_unit,
                event: self.event.clone(),
            },
        }
    }
}
