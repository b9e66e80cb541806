//! The wires the workbench compares, named once for both crates.
//!
//! A wire is a transport (SSE or WebSocket) over a negotiated HTTP protocol
//! (HTTP/1.1, h2 over TLS, cleartext h2c). The server counts its streams by
//! wire; the load generator opens, measures and reports by wire. Both use
//! this one type, so a name means the same thing in `/stats`, in
//! `result.json` and on the command line.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which transport carries a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Sse,
    Ws,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
        }
    }
}

/// The HTTP protocol negotiated for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "http/1.1")]
    Http1,
    #[serde(rename = "h2")]
    H2,
    #[serde(rename = "h2c")]
    H2c,
}

impl Protocol {
    /// The name the server's hello uses (ALPN's spelling, plus `h2c`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }

    /// The short form used in wire names.
    pub fn short(self) -> &'static str {
        match self {
            Protocol::Http1 => "h1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }
}

/// A transport over a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Wire {
    /// SSE over HTTP/1.1: one TCP connection per stream.
    #[serde(rename = "sse-h1")]
    SseH1,
    /// SSE over HTTP/2 with TLS (ALPN h2): streams multiplexed.
    #[serde(rename = "sse-h2")]
    SseH2,
    /// SSE over cleartext HTTP/2 (prior knowledge).
    #[serde(rename = "sse-h2c")]
    SseH2c,
    /// WebSocket over HTTP/1.1 (the Upgrade handshake).
    #[serde(rename = "ws-h1")]
    WsH1,
    /// WebSocket over HTTP/2 with TLS (RFC 8441 extended CONNECT). actix
    /// does not implement it; a proxy at the edge can.
    #[serde(rename = "ws-h2")]
    WsH2,
    /// WebSocket over cleartext HTTP/2 (RFC 8441 with prior knowledge).
    #[serde(rename = "ws-h2c")]
    WsH2c,
}

impl Wire {
    /// The wires the feed server serves itself, in report order: what
    /// `--wire all` means. WebSocket over HTTP/2 is not among them (actix
    /// has no RFC 8441).
    pub const ALL: [Wire; 4] = [Wire::SseH1, Wire::SseH2, Wire::SseH2c, Wire::WsH1];

    /// Every transport and protocol pair, for counters broken down by wire.
    pub const EVERY: [Wire; 6] = [
        Wire::SseH1,
        Wire::SseH2,
        Wire::SseH2c,
        Wire::WsH1,
        Wire::WsH2,
        Wire::WsH2c,
    ];

    pub const fn new(transport: Transport, protocol: Protocol) -> Wire {
        match (transport, protocol) {
            (Transport::Sse, Protocol::Http1) => Wire::SseH1,
            (Transport::Sse, Protocol::H2) => Wire::SseH2,
            (Transport::Sse, Protocol::H2c) => Wire::SseH2c,
            (Transport::Ws, Protocol::Http1) => Wire::WsH1,
            (Transport::Ws, Protocol::H2) => Wire::WsH2,
            (Transport::Ws, Protocol::H2c) => Wire::WsH2c,
        }
    }

    pub const fn transport(self) -> Transport {
        match self {
            Wire::SseH1 | Wire::SseH2 | Wire::SseH2c => Transport::Sse,
            Wire::WsH1 | Wire::WsH2 | Wire::WsH2c => Transport::Ws,
        }
    }

    pub const fn protocol(self) -> Protocol {
        match self {
            Wire::SseH1 | Wire::WsH1 => Protocol::Http1,
            Wire::SseH2 | Wire::WsH2 => Protocol::H2,
            Wire::SseH2c | Wire::WsH2c => Protocol::H2c,
        }
    }

    /// `sse-h1`, `ws-h2c`...: the name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Wire::SseH1 => "sse-h1",
            Wire::SseH2 => "sse-h2",
            Wire::SseH2c => "sse-h2c",
            Wire::WsH1 => "ws-h1",
            Wire::WsH2 => "ws-h2",
            Wire::WsH2c => "ws-h2c",
        }
    }

    /// The same name with `_` for `-` (`sse_h1`): the keys of `/stats`
    /// `connections_open` and `wires`, kept from the first release so
    /// existing dashboards and scripts keep working.
    pub fn stats_key(self) -> &'static str {
        match self {
            Wire::SseH1 => "sse_h1",
            Wire::SseH2 => "sse_h2",
            Wire::SseH2c => "sse_h2c",
            Wire::WsH1 => "ws_h1",
            Wire::WsH2 => "ws_h2",
            Wire::WsH2c => "ws_h2c",
        }
    }

    /// What the server's hello must say it negotiated.
    pub fn expected_protocol(self) -> &'static str {
        self.protocol().as_str()
    }

    pub fn is_h2(self) -> bool {
        self.protocol() != Protocol::Http1
    }

    pub fn is_ws(self) -> bool {
        self.transport() == Transport::Ws
    }

    pub fn needs_tls(self) -> bool {
        self.protocol() == Protocol::H2
    }

    /// Parses `sse-h1,ws-h1` or `all` (the wires in [`Wire::ALL`]).
    pub fn parse_list(s: &str) -> Result<Vec<Wire>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Wire::ALL);
            } else {
                out.push(part.parse()?);
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(format!("no wire named; use {} or all", names()));
        }
        Ok(out)
    }
}

fn names() -> String {
    Wire::EVERY.map(Wire::name).join(", ")
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Wire {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Wire::EVERY
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown wire `{s}`: use {} or all", names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(Wire::parse_list("all").unwrap(), Wire::ALL.to_vec());
        assert_eq!(
            Wire::parse_list("ws-h1, sse-h1,ws-h1").unwrap(),
            vec![Wire::SseH1, Wire::WsH1]
        );
        assert!(Wire::parse_list("sse-h3").unwrap_err().contains("sse-h3"));
        assert!(Wire::parse_list("").is_err());
    }

    #[test]
    fn one_name_per_wire_in_every_spelling() {
        for w in Wire::EVERY {
            assert_eq!(Wire::new(w.transport(), w.protocol()), w);
            assert_eq!(w.name().parse::<Wire>().unwrap(), w);
            assert_eq!(w.stats_key(), w.name().replace('-', "_"));
            assert_eq!(
                w.name(),
                format!("{}-{}", w.transport().as_str(), w.protocol().short())
            );
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(json, format!("\"{}\"", w.name()));
        }
    }
}
