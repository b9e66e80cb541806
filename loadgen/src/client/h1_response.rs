//! An HTTP/1.1 response read straight from its socket, for event streams
//! and for the WebSocket handshake's `101` (`ws_handshake`):
//! the request written once, the head parsed with `httparse`, the body's
//! framing (chunked, a length, or to the close) decoded in place.
//!
//! Why not hyper's HTTP/1.1 client here: a stream is one GET and then a
//! body that never ends, read at hundreds of thousands of events a second
//! across thousands of connections. hyper's client gives each connection a
//! task or a future to drive, a request channel, an 8 KiB read and an 8 KiB
//! write buffer, and hands each chunk over through a channel (two wake-ups).
//! Here a connection is its socket and ONE small buffer ([`ReadBuffer`]),
//! read by the task that parses the events: one wake-up and one `read` per
//! arrival, the data passed to the parser as slices of that buffer.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::chunked::ChunkedDecoder;
use super::error::{body_snippet, ClientError, ERROR_BODY_MAX, ERROR_BODY_WAIT};
use super::io::Io;
use super::read_buffer::ReadBuffer;
use super::request::Body;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines in a response head.
const MAX_HEADERS: usize = 64;

/// What the response head said that the reader needs.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    /// The `Content-Type`, empty when absent.
    pub content_type: String,
    /// What a `101 Switching Protocols` switched to; `None` for any other status.
    pub upgrade: Option<Upgrade>,
}

/// The headers of a `101 Switching Protocols` (RFC 9110 §7.8) that a
/// WebSocket client checks (RFC 6455 §4.1).
#[derive(Debug, Default)]
pub struct Upgrade {
    /// The `Upgrade` header, empty when absent.
    pub protocol: String,
    /// Whether a `Connection` header lists `upgrade`.
    pub connection_upgrade: bool,
    /// The `Sec-WebSocket-Accept` header, empty when absent.
    pub websocket_accept: String,
}

/// How the body ends (RFC 9112 §6.3).
#[derive(Debug)]
enum Framing {
    Chunked(ChunkedDecoder),
    /// This many bytes still to come.
    Length(u64),
    /// The body runs until the server closes.
    Close,
}

/// A response body on its connection.
pub struct H1Body {
    io: Io,
    /// Bytes read but not yet decoded.
    read: ReadBuffer,
    framing: Framing,
    /// The server closed the connection.
    eof: bool,
    url: Arc<str>,
}

/// Sends `req` (a GET without a body) on `io` and reads the response head.
pub async fn send(
    mut io: Io,
    req: &http::Request<Body>,
    url: &Arc<str>,
) -> Result<(Head, H1Body), ClientError> {
    let closed = |_: std::io::Error| ClientError::Closed { url: url.clone() };
    io.write_all(&request_head(req)).await.map_err(closed)?;
    io.flush().await.map_err(closed)?;
    let mut read = ReadBuffer::new();
    loop {
        if read.unread().len() >= MAX_HEAD {
            return Err(ClientError::Http {
                url: url.clone(),
                detail: format!("the response head is larger than {MAX_HEAD} bytes"),
            });
        }
        // The buffer grows while the head fills it, and keeps what it read.
        let n = io.read(read.free_space()).await.map_err(closed)?;
        read.filled(n);
        if n == 0 {
            // What hyper calls an incomplete message: the peer went away.
            return Err(ClientError::Closed { url: url.clone() });
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let head_len = match res.parse(read.unread()) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => {
                return Err(ClientError::Http {
                    url: url.clone(),
                    detail: format!(
                        "invalid HTTP/1.1 response head ({e}): {}",
                        server::event::snippet(&String::from_utf8_lossy(read.unread()))
                    ),
                })
            }
        };
        let status = res.code.unwrap_or_default();
        let (head, framing) = head_and_framing(status, res.headers)
            .map_err(|detail| ClientError::protocol(url, detail))?;
        read.consume(head_len);
        read.shrink_to_start();
        let body = H1Body {
            io,
            read,
            framing,
            eof: false,
            url: url.clone(),
        };
        return Ok((head, body));
    }
}

/// The request head on the wire: origin-form, the headers as built.
fn request_head(req: &http::Request<Body>) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(req.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(req.uri().to_string().as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The head's status and content type, and how its body is framed.
fn head_and_framing(
    status: u16,
    headers: &[httparse::Header<'_>],
) -> Result<(Head, Framing), String> {
    let mut content_type = String::new();
    let mut chunked = None;
    let mut length = None;
    let mut upgrade = (status == 101).then(Upgrade::default);
    for h in headers {
        if let Some(up) = upgrade.as_mut() {
            let value = || String::from_utf8_lossy(h.value).trim().to_string();
            if h.name.eq_ignore_ascii_case("upgrade") {
                up.protocol = value();
            } else if h.name.eq_ignore_ascii_case("connection") {
                up.connection_upgrade |= value()
                    .split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
            } else if h.name.eq_ignore_ascii_case("sec-websocket-accept") {
                up.websocket_accept = value();
            }
        }
        if h.name.eq_ignore_ascii_case("content-type") {
            content_type = String::from_utf8_lossy(h.value).into_owned();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only when it is the last coding; any other coding
            // last means the body runs to the close.
            let value = String::from_utf8_lossy(h.value);
            let last = value.rsplit(',').next().unwrap_or_default();
            chunked = Some(last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let text = String::from_utf8_lossy(h.value);
            let n = text
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("invalid Content-Length `{text}`"))?;
            if length.is_some_and(|l| l != n) {
                return Err("two different Content-Length headers".into());
            }
            length = Some(n);
        }
    }
    let framing = match (status, chunked, length) {
        (100..=199 | 204 | 304, _, _) => Framing::Length(0),
        (_, Some(true), _) => Framing::Chunked(ChunkedDecoder::default()),
        (_, Some(false), _) => Framing::Close,
        (_, None, Some(n)) => Framing::Length(n),
        (_, None, None) => Framing::Close,
    };
    Ok((
        Head {
            status,
            content_type,
            upgrade,
        },
        framing,
    ))
}

impl H1Body {
    /// Waits for bytes (none when some are still undecoded): one `read`.
    /// The end of the connection is noted for [`decode`](Self::decode).
    pub async fn fill(&mut self) -> Result<(), ClientError> {
        if !self.read.unread().is_empty() || self.eof {
            return Ok(());
        }
        let n = self
            .io
            .read(self.read.free_space())
            .await
            .map_err(|_| ClientError::Closed {
                url: self.url.clone(),
            })?;
        self.read.filled(n);
        self.eof = n == 0;
        Ok(())
    }

    /// Decodes what [`fill`](Self::fill) read, each run of body data to
    /// `on_data`. `Ok(true)` once the body has ended (its data delivered);
    /// a connection closed before the body's end is
    /// [`ClientError::Closed`], garbage in the framing a protocol error.
    pub fn decode(&mut self, mut on_data: impl FnMut(&[u8])) -> Result<bool, ClientError> {
        let input = self.read.take_unread();
        let ended = match &mut self.framing {
            Framing::Chunked(decoder) => {
                decoder
                    .decode(input, on_data)
                    .map_err(|e| ClientError::protocol(&self.url, e.to_string()))?;
                decoder.is_done()
            }
            Framing::Length(left) => {
                let take = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                if take > 0 {
                    on_data(&input[..take]);
                }
                *left -= take as u64;
                *left == 0
            }
            Framing::Close => {
                if !input.is_empty() {
                    on_data(input);
                }
                self.eof
            }
        };
        if self.eof && !ended {
            return Err(ClientError::Closed {
                url: self.url.clone(),
            });
        }
        Ok(ended)
    }

    /// Up to [`ERROR_BODY_MAX`] bytes of the body, trimmed, for an error
    /// message; whatever arrived within [`ERROR_BODY_WAIT`].
    pub async fn error_snippet(mut self) -> String {
        let mut out = Vec::new();
        let read = async {
            while out.len() < ERROR_BODY_MAX {
                if self.fill().await.is_err() {
                    break;
                }
                match self.decode(|d| out.extend_from_slice(d)) {
                    Ok(false) => {}
                    Ok(true) | Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(ERROR_BODY_WAIT, read).await;
        body_snippet(&out)
    }

    /// The connection after a `101 Switching Protocols`, for the protocol
    /// it switched to: the socket, and the read buffer with the bytes the
    /// server sent after the head unread in it (a first frame may have come
    /// in the same segment as the head).
    pub fn into_upgraded(self) -> (Io, ReadBuffer) {
        (self.io, self.read)
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_buffer::{READ_MAX, READ_START};
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A body on a real socket, and the peer's end of it.
    async fn body_and_peer() -> (H1Body, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let body = H1Body {
            io: Io::Plain(client),
            read: ReadBuffer::new(),
            framing: Framing::Close,
            eof: false,
            url: "http://test/".into(),
        };
        (body, peer)
    }

    #[tokio::test]
    async fn the_buffer_grows_under_a_backlog_up_to_its_cap_and_shrinks_after() {
        let (mut body, mut peer) = body_and_peer().await;
        let backlog = vec![b'x'; 64 * 1024];
        peer.write_all(&backlog).await.unwrap();
        let mut got = 0;
        let mut largest = 0;
        while got < backlog.len() {
            body.fill().await.unwrap();
            largest = largest.max(body.read.size());
            body.decode(|d| got += d.len()).unwrap();
        }
        assert_eq!(largest, READ_MAX, "grew while reads filled it, to the cap");
        peer.write_all(b"data: one\n\n").await.unwrap();
        body.fill().await.unwrap();
        assert_eq!(
            body.read.size(),
            READ_START,
            "back to rest after a short read"
        );
        let mut data = Vec::new();
        body.decode(|d| data.extend_from_slice(d)).unwrap();
        assert_eq!(data, b"data: one\n\n");
        drop(peer);
        body.fill().await.unwrap();
        assert!(
            body.decode(|_| {}).unwrap(),
            "a close ends a close-delimited body"
        );
    }

    #[test]
    fn framing_follows_the_head() {
        let h = |name, value| httparse::Header { name, value };
        let framing = |status, headers: &[httparse::Header<'_>]| {
            head_and_framing(status, headers).map(|(_, f)| format!("{f:?}"))
        };
        let chunked = h("Transfer-Encoding", b"gzip, chunked");
        let length = h("content-length", b"12");
        assert!(framing(200, &[chunked, length])
            .unwrap()
            .starts_with("Chunked"));
        assert_eq!(framing(200, &[length]).unwrap(), "Length(12)");
        assert_eq!(framing(200, &[]).unwrap(), "Close");
        assert_eq!(
            framing(200, &[h("transfer-encoding", b"gzip")]).unwrap(),
            "Close"
        );
        assert_eq!(framing(204, &[length]).unwrap(), "Length(0)");
        assert!(framing(200, &[h("content-length", b"x")]).is_err());
        assert!(framing(200, &[length, h("content-length", b"13")]).is_err());
    }
}
