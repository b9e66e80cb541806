//! What every client shares: the messages a feed stream yields, the errors a
//! client reports, and [`FeedStream`], one stream over any wire.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use crate::recorder::ErrorKind;
use crate::sse_client::SseStream;
use crate::wire::Wire;
use crate::ws_client::WsStream;

/// One message from the feed, decoded just enough to measure it.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The first message of every stream: what the server negotiated.
    Hello {
        protocol: String,
        resume: String,
        last_id: u64,
    },
    Tick {
        id: u64,
        sent_unix_ns: u64,
        /// When the chunk that carried it was read (one clock read per chunk).
        recv_unix_ns: u64,
        bytes: usize,
    },
    Gap {
        from: u64,
        to: u64,
    },
    /// An SSE keep-alive comment or a WebSocket ping.
    KeepAlive,
    /// The SSE `retry:` field, in milliseconds.
    Retry(u64),
}

/// Why a stream could not be opened or read. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: connection failed: {source} (is the server running and listening there?)")]
    Connect {
        url: Arc<str>,
        source: std::io::Error,
    },
    #[error("{url}: TLS handshake failed: {source} (trust the server's certificate with --ca-cert FILE, or pass --insecure)")]
    Tls {
        url: Arc<str>,
        source: std::io::Error,
    },
    #[error("{url}: the server answered {status} instead of a stream: {body}")]
    Status {
        url: Arc<str>,
        status: u16,
        body: String,
    },
    #[error("{url}: expected Content-Type text/event-stream, got `{got}` (is this the feed server's /sse?)")]
    ContentType { url: Arc<str>, got: String },
    #[error("{url}: malformed stream: {detail}")]
    Protocol { url: Arc<str>, detail: String },
    #[error("{url}: HTTP error: {detail}")]
    Http { url: Arc<str>, detail: String },
    #[error("{url}: the server closed the stream")]
    Closed { url: Arc<str> },
    #[error("{url}: nothing within {secs:.1} s while {what}")]
    Timeout {
        url: Arc<str>,
        what: &'static str,
        secs: f64,
    },
}

impl ClientError {
    /// The counter this error goes to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Connect { .. } => ErrorKind::Connect,
            ClientError::Tls { .. } => ErrorKind::Tls,
            ClientError::Status { status, .. } => ErrorKind::Http(*status),
            ClientError::ContentType { .. } | ClientError::Protocol { .. } => ErrorKind::Protocol,
            ClientError::Http { .. } => ErrorKind::Protocol,
            ClientError::Closed { .. } => ErrorKind::Closed,
            ClientError::Timeout { .. } => ErrorKind::Timeout,
        }
    }

    pub fn protocol(url: &Arc<str>, detail: impl Into<String>) -> Self {
        ClientError::Protocol {
            url: url.clone(),
            detail: detail.into(),
        }
    }
}

/// Every field any feed message has; absent ones are `None`.
#[derive(Debug, Deserialize)]
struct RawMsg<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u64>,
    sent_unix_ns: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
    #[serde(borrow)]
    protocol: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resume: Option<Cow<'a, str>>,
    last_id: Option<u64>,
}

/// Decodes one JSON message (an SSE `data` or a WS text message).
///
/// Ticks borrow from the input: no allocation per event.
pub fn decode(json: &str, recv_unix_ns: u64) -> Result<Msg, String> {
    let raw: RawMsg<'_> =
        serde_json::from_str(json).map_err(|e| format!("bad JSON ({e}): {}", snippet(json)))?;
    let missing = |field: &str| {
        format!(
            "a {} message without `{field}`: {}",
            raw.kind,
            snippet(json)
        )
    };
    match &*raw.kind {
        "tick" => Ok(Msg::Tick {
            id: raw.id.ok_or_else(|| missing("id"))?,
            sent_unix_ns: raw.sent_unix_ns.ok_or_else(|| missing("sent_unix_ns"))?,
            recv_unix_ns,
            bytes: json.len(),
        }),
        "gap" => Ok(Msg::Gap {
            from: raw.from.ok_or_else(|| missing("from"))?,
            to: raw.to.ok_or_else(|| missing("to"))?,
        }),
        "hello" => Ok(Msg::Hello {
            protocol: raw
                .protocol
                .ok_or_else(|| missing("protocol"))?
                .into_owned(),
            resume: raw.resume.map(Cow::into_owned).unwrap_or_default(),
            last_id: raw.last_id.unwrap_or(0),
        }),
        other => Err(format!("unknown message type `{other}`")),
    }
}

/// The start of a peer's text, for an error message.
pub fn snippet(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// One open feed stream, over whichever wire.
pub enum FeedStream {
    Sse(SseStream),
    Ws(WsStream),
}

impl FeedStream {
    /// The next message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Msg>, ClientError> {
        match self {
            FeedStream::Sse(s) => s.next().await,
            FeedStream::Ws(s) => s.next().await,
        }
    }

    /// Closes politely where the wire has a way (WS close frame).
    pub async fn close(self) {
        if let FeedStream::Ws(s) = self {
            s.close().await;
        }
    }
}

/// Which wire a stream is for, with its URL (for messages).
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub wire: Wire,
    pub url: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_message() {
        let t = decode(
            r#"{"type":"tick","id":5,"server_time":"x","sent_unix_ns":10,"pad":"xx"}"#,
            20,
        )
        .unwrap();
        assert!(matches!(
            t,
            Msg::Tick {
                id: 5,
                sent_unix_ns: 10,
                recv_unix_ns: 20,
                ..
            }
        ));
        let g = decode(r#"{"type":"gap","from":3,"to":9}"#, 0).unwrap();
        assert_eq!(g, Msg::Gap { from: 3, to: 9 });
        let h = decode(
            r#"{"type":"hello","transport":"sse","protocol":"h2","resume":"none","last_id":4,"rate_hz":1.0}"#,
            0,
        )
        .unwrap();
        assert!(matches!(h, Msg::Hello { ref protocol, last_id: 4, .. } if protocol == "h2"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "nope",
            "{}",
            r#"{"type":"tick"}"#,
            r#"{"type":"boom"}"#,
            "[1,2]",
            "\u{0}",
        ] {
            assert!(decode(bad, 0).is_err(), "{bad:?}");
        }
        let long = "x".repeat(1000);
        assert!(decode(&long, 0).unwrap_err().len() < 300);
    }
}
