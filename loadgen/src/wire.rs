//! The four wires the workbench compares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport over an HTTP version.
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
    /// WebSocket over HTTP/1.1 (RFC 8441 over h2 is supported by no crate here).
    #[serde(rename = "ws-h1")]
    WsH1,
}

impl Wire {
    pub const ALL: [Wire; 4] = [Wire::SseH1, Wire::SseH2, Wire::SseH2c, Wire::WsH1];

    pub fn name(self) -> &'static str {
        match self {
            Wire::SseH1 => "sse-h1",
            Wire::SseH2 => "sse-h2",
            Wire::SseH2c => "sse-h2c",
            Wire::WsH1 => "ws-h1",
        }
    }

    /// What the server's hello must say it negotiated.
    pub fn expected_protocol(self) -> &'static str {
        match self {
            Wire::SseH1 | Wire::WsH1 => "http/1.1",
            Wire::SseH2 => "h2",
            Wire::SseH2c => "h2c",
        }
    }

    pub fn is_h2(self) -> bool {
        matches!(self, Wire::SseH2 | Wire::SseH2c)
    }

    pub fn needs_tls(self) -> bool {
        self == Wire::SseH2
    }

    /// Parses `sse-h1,ws-h1` or `all`.
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
            return Err("no wire named; use sse-h1, sse-h2, sse-h2c, ws-h1 or all".into());
        }
        Ok(out)
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Wire {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Wire::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown wire `{s}`: use sse-h1, sse-h2, sse-h2c, ws-h1 or all"))
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
}
