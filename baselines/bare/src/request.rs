//! Reading an HTTP/1.1 request head (httparse) and answering errors.
//!
//! Every response closes the connection (`Connection: close`): a stream
//! holds its connection until the end anyway, and the short answers
//! (`/stats`, errors) are not worth keep-alive bookkeeping in a baseline.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tungstenite::http;

/// The largest request head accepted: far more than any client of a feed
/// sends, small enough that a garbage sender costs little.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// Why no request could be read; each maps to the status that answers it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("request head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers")]
    TooLarge,
    #[error("no complete request head within {0:?}")]
    Timeout(Duration),
    #[error("the client closed the connection before sending a request")]
    Closed,
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
}

impl RequestError {
    /// The status to answer with, or `None` when nobody is left to answer.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            RequestError::Malformed(_) => Some(http::StatusCode::BAD_REQUEST),
            RequestError::TooLarge => Some(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            RequestError::Timeout(_) => Some(http::StatusCode::REQUEST_TIMEOUT),
            RequestError::Closed | RequestError::Io(_) => None,
        }
    }
}

/// Reads one request head within `limit`.
///
/// Bytes the client sent after the head (none, for a well-behaved client of
/// these routes) are returned with it: a WebSocket must not lose them.
pub async fn read_head(
    socket: &TcpStream,
    limit: Duration,
) -> Result<(http::Request<()>, Vec<u8>), RequestError> {
    tokio::time::timeout(limit, read_head_untimed(socket))
        .await
        .map_err(|_| RequestError::Timeout(limit))?
}

async fn read_head_untimed(
    socket: &TcpStream,
) -> Result<(http::Request<()>, Vec<u8>), RequestError> {
    let mut buf = vec![0u8; 1024];
    let mut filled = 0;
    loop {
        socket.readable().await?;
        match socket.try_read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Err(RequestError::Closed),
            Ok(0) => return Err(RequestError::Malformed("the head ends early".into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
        if let Some((request, used)) = parse_head(&buf[..filled])? {
            return Ok((request, buf[used..filled].to_vec()));
        }
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(RequestError::TooLarge);
            }
            buf.resize((buf.len() * 2).min(MAX_HEAD_BYTES), 0);
        }
    }
}

/// Parses a complete head, or `None` when more bytes are needed.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(http::Request<()>, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let used = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let malformed = |what: &str| RequestError::Malformed(what.to_string());
    let version = match parsed.version {
        Some(0) => http::Version::HTTP_10,
        Some(1) => http::Version::HTTP_11,
        _ => return Err(malformed("unknown HTTP version")),
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.ok_or_else(|| malformed("no method"))?)
        .uri(parsed.path.ok_or_else(|| malformed("no path"))?)
        .version(version);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    let request = builder
        .body(())
        .map_err(|e| RequestError::Malformed(e.to_string()))?;
    Ok(Some((request, used)))
}

/// Answers with a status and a one-line plain-text explanation, then closes.
pub async fn respond_error(
    socket: &mut TcpStream,
    status: http::StatusCode,
    message: &str,
    extra_headers: &str,
) -> io::Result<()> {
    let body = format!("{message}\n");
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    respond(socket, head, body.as_bytes()).await
}

/// Answers `200 OK` with a JSON body, then closes.
pub async fn respond_json(socket: &mut TcpStream, json: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        json.len()
    );
    respond(socket, head, json.as_bytes()).await
}

async fn respond(socket: &mut TcpStream, head: String, body: &[u8]) -> io::Result<()> {
    let mut all = head.into_bytes();
    all.extend_from_slice(body);
    socket.write_all(&all).await?;
    socket.shutdown().await?;
    linger(socket).await;
    Ok(())
}

/// Reads and drops what the client still sends (the rest of an oversized
/// head, a body), briefly, before the socket closes: closing with unread
/// bytes makes the kernel send a reset, which can destroy the answer
/// before the client reads it.
async fn linger(socket: &mut TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    const LINGER_BYTES: usize = 64 * 1024;
    let mut sink = [0u8; 1024];
    let mut dropped = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while dropped < LINGER_BYTES {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head_and_reports_what_follows() {
        let raw = b"GET /ws?lastEventId=5 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\nXY";
        let (req, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(req.uri().path(), "/ws");
        assert_eq!(req.uri().query(), Some("lastEventId=5"));
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(&raw[used..], b"XY");
    }

    #[test]
    fn partial_and_bad_heads() {
        assert!(parse_head(b"GET /sse HTTP/1.1\r\nHost:").unwrap().is_none());
        for bad in [
            &b"\x00\x01garbage\r\n\r\n"[..],
            b"GET /sse HTTP/9.9\r\n\r\n",
            b"GET /sse HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            let err = parse_head(bad).unwrap_err();
            assert_eq!(err.status(), Some(http::StatusCode::BAD_REQUEST), "{err}");
        }
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            parse_head(raw.as_bytes()),
            Err(RequestError::TooLarge)
        ));
    }
}
