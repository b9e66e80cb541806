//! Settings of a run against any SSE or WebSocket server (`--sse-url`,
//! `--ws-url`): its URLs, extra headers, TLS trust, and where its events
//! carry a send time and an id. The same fields as the flags, so a scenario
//! file (`[scenario.any_server]`) says everything the command line can.
//!
//! Nothing here connects: the client layer resolves these settings into
//! endpoints and a decoder.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bounds::Bounds;
use crate::wire::Wire;

/// How the SSE URL is carried.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SseProtocol {
    /// HTTP/1.1 (over TLS for `https://`, offering `http/1.1` alone).
    #[default]
    H1,
    /// HTTP/2 over TLS (`https://`, ALPN h2 required).
    H2,
    /// Cleartext HTTP/2 by prior knowledge (`http://`).
    H2c,
}

impl SseProtocol {
    /// The wire a stream of this kind is reported as.
    pub fn wire(self) -> Wire {
        match self {
            SseProtocol::H1 => Wire::SseH1,
            SseProtocol::H2 => Wire::SseH2,
            SseProtocol::H2c => Wire::SseH2c,
        }
    }
}

/// What a stamp's number counts since the Unix epoch, or `rfc3339` for a
/// date-time string.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StampUnit {
    #[default]
    Ns,
    Us,
    Ms,
    S,
    Rfc3339,
}

impl StampUnit {
    /// Decimal digits from this unit down to nanoseconds (`None` for a date-time).
    pub fn digits_to_ns(self) -> Option<u32> {
        match self {
            StampUnit::Ns => Some(0),
            StampUnit::Us => Some(3),
            StampUnit::Ms => Some(6),
            StampUnit::S => Some(9),
            StampUnit::Rfc3339 => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StampUnit::Ns => "ns",
            StampUnit::Us => "us",
            StampUnit::Ms => "ms",
            StampUnit::S => "s",
            StampUnit::Rfc3339 => "rfc3339",
        }
    }
}

impl fmt::Display for StampUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StampUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            StampUnit::Ns,
            StampUnit::Us,
            StampUnit::Ms,
            StampUnit::S,
            StampUnit::Rfc3339,
        ]
        .into_iter()
        .find(|u| u.name() == s)
        .ok_or_else(|| format!("unknown stamp unit `{s}`: use ns, us, ms, s or rfc3339"))
    }
}

/// Any server's feed: where it is, and how to read its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnyServer {
    /// The event stream's full URL (`http://` or `https://`, any path and query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse_url: Option<String>,
    /// How the SSE URL is carried.
    #[serde(default)]
    pub sse_protocol: SseProtocol,
    /// The WebSocket's full URL (`ws://` or `wss://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    /// Extra request headers, `Name: value` each (authentication...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// A PEM file with the certificate to trust for `https`/`wss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the TLS certificate.
    #[serde(default)]
    pub insecure: bool,
    /// Allow URLs that are not loopback addresses.
    #[serde(default)]
    pub allow_remote: bool,
    /// JSON pointer to the send time inside an event's JSON (`/sent_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp_field: Option<String>,
    #[serde(default)]
    pub stamp_unit: StampUnit,
    /// JSON pointer to the event id; SSE uses its `id:` field without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// Count only SSE events of this type (`event:` field; `message` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The server's process id: its RSS and CPU from /proc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pid: Option<u32>,
    /// The query parameter a WebSocket resumes with (none: it reconnects live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_resume_query: Option<String>,
    /// An inter-arrival gap longer than this is a stall, in milliseconds.
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u64,
}

fn default_stall_ms() -> u64 {
    1_000
}

impl AnyServer {
    /// A stall: from 1 ms to an hour.
    pub const STALL_MS: Bounds<u64> = Bounds::new(1, 3_600_000, " ms");

    /// The wires these URLs make, in report order.
    pub fn wires(&self) -> Vec<Wire> {
        let mut out = Vec::new();
        if self.sse_url.is_some() {
            out.push(self.sse_protocol.wire());
        }
        if self.ws_url.is_some() {
            out.push(Wire::WsH1);
        }
        out
    }

    /// The URL a wire loads.
    pub fn url_of(&self, wire: Wire) -> Option<&str> {
        if wire.is_ws() {
            self.ws_url.as_deref()
        } else {
            self.sse_url.as_deref()
        }
    }

    /// The first URL, for what the result shows as the server.
    pub fn shown_url(&self) -> &str {
        self.sse_url
            .as_deref()
            .or(self.ws_url.as_deref())
            .unwrap_or("")
    }

    /// Checks what can be checked without the network: URLs and their
    /// schemes, headers, pointers, the stall threshold.
    pub fn validate(&self) -> Result<(), String> {
        if self.sse_url.is_none() && self.ws_url.is_none() {
            return Err("give --sse-url, --ws-url or both (sse_url, ws_url)".into());
        }
        let mut tls = false;
        if let Some(u) = &self.sse_url {
            let scheme = scheme_of(u, "--sse-url")?;
            match (scheme.as_str(), self.sse_protocol) {
                ("http", SseProtocol::H2) => {
                    return Err(format!(
                        "--sse-url {u}: --h2 is HTTP/2 over TLS and needs an https:// URL (--h2c for cleartext)"
                    ))
                }
                ("https", SseProtocol::H2c) => {
                    return Err(format!(
                        "--sse-url {u}: --h2c is cleartext HTTP/2 and needs an http:// URL (--h2 for TLS)"
                    ))
                }
                ("http", _) => {}
                ("https", _) => tls = true,
                (other, _) => {
                    return Err(format!(
                        "--sse-url {u}: `{other}://` is not http or https"
                    ))
                }
            }
        }
        if let Some(u) = &self.ws_url {
            match scheme_of(u, "--ws-url")?.as_str() {
                "ws" => {}
                "wss" => tls = true,
                other => return Err(format!("--ws-url {u}: `{other}://` is not ws or wss")),
            }
        }
        if tls && self.ca_cert.is_none() && !self.insecure {
            return Err(
                "an https:// or wss:// URL needs --ca-cert FILE (the server's certificate) or --insecure"
                    .into(),
            );
        }
        for h in &self.headers {
            parse_header(h)?;
        }
        for (ptr, flag) in [
            (&self.stamp_field, "--stamp-field"),
            (&self.id_field, "--id-field"),
        ] {
            if let Some(p) = ptr {
                if !(p.is_empty() || p.starts_with('/')) {
                    return Err(format!(
                        "{flag} `{p}` is not a JSON pointer: it starts with `/`, e.g. /{p}"
                    ));
                }
            }
        }
        if let Some(q) = &self.ws_resume_query {
            if q.is_empty() {
                return Err("--ws-resume-query needs a parameter name".into());
            }
        }
        Self::STALL_MS
            .check_named("stall_ms", self.stall_ms)
            .map(|_| ())
    }
}

fn scheme_of(url: &str, flag: &str) -> Result<String, String> {
    url::Url::parse(url)
        .map(|u| u.scheme().to_string())
        .map_err(|e| format!("{flag} `{url}` is not a valid URL: {e}"))
}

/// `Name: value` into its name and value, both checked as HTTP allows.
pub fn parse_header(h: &str) -> Result<(http::HeaderName, http::HeaderValue), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("--header `{h}` is not `Name: value`"))?;
    let name = http::HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| format!("--header `{h}`: bad name: {e}"))?;
    let value = http::HeaderValue::from_str(value.trim())
        .map_err(|e| format!("--header `{h}`: bad value: {e}"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(sse: Option<&str>, ws: Option<&str>) -> AnyServer {
        AnyServer {
            sse_url: sse.map(String::from),
            ws_url: ws.map(String::from),
            stall_ms: 1000,
            ..AnyServer::default()
        }
    }

    #[test]
    fn urls_make_wires_and_are_checked() {
        let a = any(
            Some("http://127.0.0.1:1/events"),
            Some("ws://127.0.0.1:1/ws"),
        );
        assert!(a.validate().is_ok());
        assert_eq!(a.wires(), vec![Wire::SseH1, Wire::WsH1]);
        let mut h2 = any(Some("http://127.0.0.1:1/e"), None);
        h2.sse_protocol = SseProtocol::H2;
        assert!(h2.validate().unwrap_err().contains("https://"));
        let tls = any(None, Some("wss://localhost:1/ws"));
        assert!(tls.validate().unwrap_err().contains("--insecure"));
        assert!(any(None, None).validate().is_err());
        assert!(any(Some("ftp://x/"), None).validate().is_err());
        let mut bad = any(Some("http://127.0.0.1:1/e"), None);
        bad.stamp_field = Some("ts".into());
        assert!(bad.validate().unwrap_err().contains("/ts"));
        bad.stamp_field = None;
        bad.headers = vec!["no colon".into()];
        assert!(bad.validate().unwrap_err().contains("Name: value"));
    }

    #[test]
    fn headers_and_units_parse() {
        let (n, v) = parse_header("Authorization: Bearer x").unwrap();
        assert_eq!(
            (n.as_str(), v.to_str().unwrap()),
            ("authorization", "Bearer x")
        );
        assert!(parse_header("Bad Name: x").is_err());
        assert_eq!("ms".parse::<StampUnit>(), Ok(StampUnit::Ms));
        assert!("minutes".parse::<StampUnit>().is_err());
        assert_eq!(StampUnit::S.digits_to_ns(), Some(9));
    }
}
