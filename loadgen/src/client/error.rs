//! Why a stream could not be opened or read, in words that name the URL and
//! say what to do next, and the counter each failure goes to.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection or stream failed, for the error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The server answered with this HTTP status instead of a stream.
    Http(u16),
    /// The stream did not follow the wire format (bad frame, bad JSON, line too long).
    Protocol,
    /// The server closed a stream that should have stayed open.
    Closed,
    /// Nothing arrived within the allowed time.
    Timeout,
}

impl fmt::Display for ErrorKind {
    /// The key in [`Counters::errors`]: `connect`, `tls`, `http_503`, `protocol`, `closed`, `timeout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Tls => f.write_str("tls"),
            ErrorKind::Http(status) => write!(f, "http_{status}"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::Closed => f.write_str("closed"),
            ErrorKind::Timeout => f.write_str("timeout"),
        }
    }
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
    #[error("{url}: the server answered {status} instead of 101 Switching Protocols: it did not accept a WebSocket there (is this a WebSocket URL?): {body}")]
    NoUpgrade {
        url: Arc<str>,
        status: u16,
        body: String,
    },
    #[error("{url}: expected Content-Type text/event-stream, got `{got}`: not an event stream (is this the server's SSE URL?)")]
    ContentType { url: Arc<str>, got: String },
    #[error("{url}: malformed stream: {detail}")]
    Protocol { url: Arc<str>, detail: String },
    #[error("{url}: HTTP error: {detail}")]
    Http { url: Arc<str>, detail: String },
    /// The server lacks what the wire needs (e.g. RFC 8441 for ws-h2).
    #[error("{url}: {detail}")]
    Unsupported { url: Arc<str>, detail: String },
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
            ClientError::Status { status, .. } | ClientError::NoUpgrade { status, .. } => {
                ErrorKind::Http(*status)
            }
            ClientError::ContentType { .. } | ClientError::Protocol { .. } => ErrorKind::Protocol,
            ClientError::Http { .. } | ClientError::Unsupported { .. } => ErrorKind::Protocol,
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

impl ClientError {
    /// A hyper error: a connection that ended under a stream is `Closed`
    /// (a drop, a restart, a link that went away and a peer that gave up
    /// on it: the connection reset or broken, an HTTP/2 connection closed
    /// under its streams), anything else an HTTP error.
    pub fn http(url: &Arc<str>, e: hyper::Error) -> Self {
        if e.is_incomplete_message() || e.is_canceled() || e.is_closed() || ended_under(&e) {
            ClientError::Closed { url: url.clone() }
        } else {
            ClientError::Http {
                url: url.clone(),
                detail: e.to_string(),
            }
        }
    }
}

/// `f`, given at most `limit`: past it, a [`ClientError::Timeout`] naming
/// the URL and what was awaited.
pub async fn within<T>(
    limit: Duration,
    url: &Arc<str>,
    what: &'static str,
    f: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            what,
            secs: limit.as_secs_f64(),
        })?
}

/// Whether a hyper error is the connection breaking under a stream: an
/// I/O error anywhere in its causes (reset, broken pipe), or an HTTP/2
/// connection that the peer closed (GOAWAY) or that broke under its
/// streams. A stream reset for a protocol reason stays an HTTP error.
fn ended_under(e: &hyper::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        if let Some(h2) = c.downcast_ref::<h2::Error>() {
            return h2.is_io() || h2.is_go_away() || h2.reason() == Some(h2::Reason::CANCEL);
        }
        cause = c.source();
    }
    false
}

/// How much of an error response's body is kept for the message.
pub const ERROR_BODY_MAX: usize = 512;
/// How long an error response's body may take to arrive.
pub const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);

/// What an error message quotes of a response body read so far.
pub fn body_snippet(body: &[u8]) -> String {
    let body = &body[..body.len().min(ERROR_BODY_MAX)];
    server::event::snippet(String::from_utf8_lossy(body).trim())
}
