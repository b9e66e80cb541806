//! What every client shares: the messages a feed stream yields, the errors a
//! client reports, and [`FeedStream`], one stream over any wire.

use std::sync::Arc;

use server::event::Message;

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

/// Decodes one JSON message (an SSE `data` or a WS text message) with the
/// server's own decoder; ticks borrow from the input: no allocation per event.
pub fn decode(json: &str, recv_unix_ns: u64) -> Result<Msg, String> {
    Ok(match server::event::decode(json)? {
        Message::Tick { id, sent_unix_ns } => Msg::Tick {
            id,
            sent_unix_ns,
            recv_unix_ns,
            bytes: json.len(),
        },
        Message::Gap(g) => Msg::Gap {
            from: g.from,
            to: g.to,
        },
        Message::Hello {
            protocol,
            resume,
            last_id,
        } => Msg::Hello {
            protocol: protocol.into_owned(),
            resume: resume.into_owned(),
            last_id,
        },
    })
}

pub use server::event::snippet;

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
}
