//! The WebSocket client: over HTTP/1.1 (the Upgrade handshake, in
//! [`ws_handshake`]) on a plain or TLS socket (`ws://`, `wss://`; over TLS
//! the endpoint must offer ALPN `http/1.1` alone), or over HTTP/2 (RFC
//! 8441: an extended CONNECT with `:protocol websocket` on a pooled h2
//! connection, whose stream then carries the frames).
//!
//! Why not tokio-tungstenite: a feed connection receives one small text
//! frame per event, at hundreds of thousands a second across thousands of
//! connections, and sends nothing but a pong now and then. Its
//! `WebSocketStream` wraps the socket in waker proxies (two `Arc`'d wakers
//! per connection), its codec zero-fills the free part of its read buffer
//! before every read, and every message becomes a refcounted buffer passed
//! through `Sink`/`Stream`. Here a connection is its socket and ONE small
//! buffer ([`ReadBuffer`], the HTTP/1.1 reader's, handed over after the
//! `101`) read by the task that decodes the events: frames are parsed in
//! place ([`ws_frame`]) and a text message is handed over as a `&str`
//! into that buffer, valid until the next read; one clock read per
//! `read()`.
//!
//! Every `await` in a read leaves the stream consistent (the one read
//! loop drops a pending read when its stop or wake signal fires): bytes
//! read are kept in the buffer until parsed, and frames to send (pongs,
//! a close) wait in a queue that the next call writes out.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use server::event::unix_now_ns;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::{within, ClientError};
use super::h2::H2Pool;
use super::io::Io;
use super::read_buffer::ReadBuffer;
use super::request::websocket_request;
use super::stream::MessageStream;
use super::ws_frame::{check_close_body, new_mask, parse_head, write_masked, FrameKind};
use super::ws_handshake;

/// How long a polite close waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The largest message accepted, whole or put together from fragments: a
/// frame declaring more is refused from its header.
pub const MAX_MESSAGE: usize = 1 << 20;
/// The write queue's capacity kept after a send (a pong or a small text);
/// a larger one is freed.
const OUT_KEEP: usize = 256;
/// The reassembly buffer's capacity kept after a fragmented message.
const MESSAGE_KEEP: usize = 4 * 1024;
/// What [`WsStream::ping_pong`] pings with.
const PING_PAYLOAD: &[u8] = b"workbench";

/// What the server sent that a reader sees: text borrowed from the
/// connection's buffer (`WsIncoming<&str>`, from [`WsStream::next`]) or
/// owned (`WsIncoming<String>`, through [`MessageStream`]).
#[derive(Debug, Clone, PartialEq)]
pub enum WsIncoming<T = String> {
    Text(T),
    /// A ping (its pong is queued, and goes out on the next call).
    Ping,
}

impl WsIncoming<&str> {
    /// The same message owning its text.
    pub fn into_owned(self) -> WsIncoming<String> {
        match self {
            WsIncoming::Text(t) => WsIncoming::Text(t.to_string()),
            WsIncoming::Ping => WsIncoming::Ping,
        }
    }
}

/// An open WebSocket, on a socket (`Io`) or, for benches and tests, any
/// byte stream.
pub struct WsStream<S = Io> {
    io: S,
    /// Bytes read but not yet parsed. A frame at their front that has not
    /// all arrived sets its need, and the buffer grows to hold it.
    read: ReadBuffer,
    /// When the last `read()` returned: the arrival time of what it brought.
    read_at_ns: u64,
    /// A fragmented text message so far, while `fragmented`.
    message: Vec<u8>,
    fragmented: bool,
    /// Frames to send (masked), written out from `out_at` on.
    out: Vec<u8>,
    out_at: usize,
    /// Writing failed: the server is gone, reads will tell.
    write_failed: bool,
    close_sent: bool,
    close_received: bool,
    url: Arc<str>,
}

/// What one parsed frame came to.
enum Parsed {
    /// A text message in one frame: its payload's place in the buffer.
    Text(Range<usize>),
    /// The last fragment of a text message: the text is in `message`.
    Reassembled,
    /// A fragment before the last.
    Fragment,
    Ping,
    /// A pong: its payload's place in the buffer.
    Pong(Range<usize>),
    Close,
}

/// Opens the endpoint's WebSocket on connection `index`; `url` is the
/// request URL (the endpoint's, or it with a resume query added).
pub async fn open(
    dialer: &Dialer,
    endpoint: &Endpoint,
    index: usize,
    url: &str,
) -> Result<WsStream, ClientError> {
    let io = dialer.connect(endpoint, index).await?;
    let switched = ws_handshake::switch(io, endpoint, url).await?;
    Ok(WsStream::with_buffer(
        switched.io,
        switched.read,
        endpoint.shown().clone(),
    ))
}

/// Why a server cannot carry a WebSocket over HTTP/2.
pub const NO_EXTENDED_CONNECT: &str = "server does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL: no WebSocket over HTTP/2 (RFC 8441) here (actix and nginx 1.22 lack it; HAProxy at the edge has it: --edge haproxy)";

/// Opens a WebSocket over HTTP/2 on pool connection `index` by extended
/// CONNECT (RFC 8441) to `url` (the endpoint's `https://` URL, or it with a
/// resume query), once the server has announced it accepts one.
pub async fn open_h2(pool: &H2Pool, index: usize, url: &str) -> Result<WsStream, ClientError> {
    let endpoint = pool.endpoint();
    let shown = endpoint.shown();
    if !pool.settings(index).await?.enable_connect_protocol {
        return Err(ClientError::Unsupported {
            url: shown.clone(),
            detail: NO_EXTENDED_CONNECT.into(),
        });
    }
    let mut req = websocket_request(http::Method::CONNECT, endpoint, true);
    *req.uri_mut() = url
        .parse()
        .map_err(|e| ClientError::protocol(shown, format!("bad URL `{url}`: {e}")))?;
    req.headers_mut().insert(
        http::header::SEC_WEBSOCKET_VERSION,
        http::HeaderValue::from_static("13"),
    );
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let res = pool.send(index, req).await?;
    if res.status() != http::StatusCode::OK {
        return Err(ClientError::Status {
            url: shown.clone(),
            status: res.status().as_u16(),
            body: "(extended CONNECT refused)".into(),
        });
    }
    let upgraded = hyper::upgrade::on(res)
        .await
        .map_err(|e| ClientError::http(shown, e))?;
    let io = Io::Tunnel(Box::new(TokioIo::new(upgraded)));
    Ok(WsStream::from_upgraded(io, shown.clone()))
}

impl<S> WsStream<S> {
    /// A WebSocket on `io`, where the handshake is over and the next byte
    /// is the server's first frame; `url` names it in errors.
    pub fn from_upgraded(io: S, url: Arc<str>) -> WsStream<S> {
        WsStream::with_buffer(io, ReadBuffer::new(), url)
    }

    /// A WebSocket on `io` whose first bytes are those unread in `read`.
    fn with_buffer(io: S, read: ReadBuffer, url: Arc<str>) -> WsStream<S> {
        WsStream {
            io,
            read,
            read_at_ns: unix_now_ns(),
            message: Vec::new(),
            fragmented: false,
            out: Vec::new(),
            out_at: 0,
            write_failed: false,
            close_sent: false,
            close_received: false,
            url,
        }
    }

    /// The URL, for messages.
    pub fn url(&self) -> &Arc<str> {
        &self.url
    }

    fn closed(&self) -> ClientError {
        ClientError::Closed {
            url: self.url.clone(),
        }
    }

    /// Parses the frame at the front of the unread bytes; `Ok(None)` until
    /// it has all arrived. Pongs to pings and the answer to a close are
    /// queued here.
    fn parse_frame(&mut self) -> Result<Option<Parsed>, ClientError> {
        let input = self.read.unread();
        // No header is shorter: the common case after the last frame of a
        // read, answered without asking the header parser.
        if input.len() < 2 {
            self.read.set_need(0);
            return Ok(None);
        }
        let head = match parse_head(input, MAX_MESSAGE) {
            Ok(Some(head)) => head,
            Ok(None) => {
                self.read.set_need(0);
                return Ok(None);
            }
            Err(e) => return Err(ClientError::protocol(&self.url, e.to_string())),
        };
        if input.len() < head.frame_len() {
            self.read.set_need(head.frame_len());
            return Ok(None);
        }
        self.read.set_need(0);
        let frame = self.read.consume(head.frame_len());
        let payload = frame.start + head.header_len..frame.end;
        let refused = |detail: String| Err(ClientError::protocol(&self.url, detail));
        Ok(Some(match head.kind {
            FrameKind::Text | FrameKind::Binary if self.fragmented => {
                return refused("a new message began inside a fragmented one".into())
            }
            FrameKind::Binary => {
                return refused(format!(
                    "unexpected binary message of {} bytes",
                    head.payload_len
                ))
            }
            FrameKind::Text if head.fin => Parsed::Text(payload),
            FrameKind::Text => {
                self.fragmented = true;
                self.message.clear();
                self.message.extend_from_slice(self.read.consumed(payload));
                Parsed::Fragment
            }
            FrameKind::Continuation if !self.fragmented => {
                return refused("a continuation frame outside a fragmented message".into())
            }
            FrameKind::Continuation => {
                if self.message.len() + head.payload_len > MAX_MESSAGE {
                    return refused(format!(
                        "a fragmented message over the {MAX_MESSAGE}-byte limit"
                    ));
                }
                self.message.extend_from_slice(self.read.consumed(payload));
                if head.fin {
                    self.fragmented = false;
                    Parsed::Reassembled
                } else {
                    Parsed::Fragment
                }
            }
            FrameKind::Ping => {
                if !self.close_sent && !self.write_failed {
                    let mask = new_mask();
                    write_masked(
                        &mut self.out,
                        FrameKind::Pong,
                        self.read.consumed(payload),
                        mask,
                    );
                }
                Parsed::Ping
            }
            FrameKind::Pong => Parsed::Pong(payload),
            FrameKind::Close => {
                if let Err(detail) = check_close_body(self.read.consumed(payload)) {
                    return refused(detail);
                }
                self.close_received = true;
                self.queue_close();
                Parsed::Close
            }
        }))
    }

    /// Queues a close frame, unless one went already.
    fn queue_close(&mut self) {
        if !self.close_sent && !self.write_failed {
            self.close_sent = true;
            write_masked(&mut self.out, FrameKind::Close, &[], new_mask());
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The next text or ping; `Ok(None)` when the server closed the
    /// WebSocket (its close frame is answered). The text borrows the
    /// connection's buffer until the next call.
    pub async fn next(&mut self) -> Result<Option<WsIncoming<&str>>, ClientError> {
        Ok(self.next_at().await?.map(|(msg, _)| msg))
    }

    /// [`next`](Self::next), with when the message arrived: the clock read
    /// when the `read()` that brought its last byte returned (one clock
    /// read per read, however many messages it brought).
    pub async fn next_at(&mut self) -> Result<Option<(WsIncoming<&str>, u64)>, ClientError> {
        if !self.fragmented && self.message.capacity() > MESSAGE_KEEP {
            self.message = Vec::new();
        }
        loop {
            // A pong or close answer queued by the last call. A failed
            // write is not this read's error: the reads that follow see
            // the connection's end, after the messages already here.
            if !self.out.is_empty() {
                // On failure `write_lost` has marked it.
                let _ = self.flush_out().await;
            }
            if self.close_received {
                return Ok(None);
            }
            let Some(parsed) = self.parse_frame()? else {
                self.fill().await?;
                continue;
            };
            let at = self.read_at_ns;
            let text = match parsed {
                Parsed::Text(range) => self.read.consumed(range),
                Parsed::Reassembled => &self.message[..],
                Parsed::Ping => return Ok(Some((WsIncoming::Ping, at))),
                Parsed::Pong(_) | Parsed::Fragment => continue,
                Parsed::Close => {
                    let _ = self.flush_out().await;
                    return Ok(None);
                }
            };
            // The SIMD check on every message; the standard library's only
            // to say where the bytes went wrong.
            if let Ok(text) = simdutf8::basic::from_utf8(text) {
                return Ok(Some((WsIncoming::Text(text), at)));
            }
            return match std::str::from_utf8(text) {
                Ok(text) => Ok(Some((WsIncoming::Text(text), at))),
                Err(e) => Err(ClientError::protocol(
                    &self.url,
                    format!("a text message that is not UTF-8 ({e})"),
                )),
            };
        }
    }

    /// Reads more bytes (one `read()`, the buffer sized by its policy:
    /// grown for a frame that does not fit and while reads fill it, back
    /// to rest after a short read). The end of the connection is
    /// [`ClientError::Closed`]: the server went away without a close frame.
    async fn fill(&mut self) -> Result<(), ClientError> {
        let n = match self.io.read(self.read.free_space()).await {
            Ok(0) | Err(_) => return Err(self.closed()),
            Ok(n) => n,
        };
        self.read_at_ns = unix_now_ns();
        self.read.filled(n);
        Ok(())
    }

    /// Writes out the queued frames.
    async fn flush_out(&mut self) -> Result<(), ClientError> {
        if self.out.is_empty() {
            return Ok(());
        }
        while self.out_at < self.out.len() {
            match self.io.write(&self.out[self.out_at..]).await {
                Ok(0) | Err(_) => return Err(self.write_lost()),
                Ok(n) => self.out_at += n,
            }
        }
        if self.io.flush().await.is_err() {
            return Err(self.write_lost());
        }
        self.out.clear();
        self.out_at = 0;
        if self.out.capacity() > OUT_KEEP {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// A write failed: nothing queued will go out (it is dropped, not
    /// retried at every later call), and nothing more is queued.
    fn write_lost(&mut self) -> ClientError {
        self.write_failed = true;
        self.out = Vec::new();
        self.out_at = 0;
        self.closed()
    }

    /// Sends one frame of `kind` (masked) with what is queued before it.
    async fn send(&mut self, kind: FrameKind, payload: &[u8]) -> Result<(), ClientError> {
        if self.close_sent || self.write_failed {
            return Err(self.closed());
        }
        write_masked(&mut self.out, kind, payload, new_mask());
        self.flush_out().await
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.send(FrameKind::Text, text.as_bytes()).await
    }

    /// Sends a ping and reads (dropping text) until its pong comes back;
    /// the round trip.
    pub async fn ping_pong(&mut self, wait: Duration) -> Result<Duration, ClientError> {
        let sent = Instant::now();
        let url = self.url.clone();
        let answer = async {
            self.send(FrameKind::Ping, PING_PAYLOAD).await?;
            loop {
                match self.parse_frame()? {
                    Some(Parsed::Pong(payload))
                        if self.read.consumed(payload.clone()) == PING_PAYLOAD =>
                    {
                        return Ok(sent.elapsed())
                    }
                    Some(Parsed::Close) => {
                        let _ = self.flush_out().await;
                        return Err(self.closed());
                    }
                    // Pongs to the server's pings go out on the way.
                    Some(_) => self.flush_out().await?,
                    None => self.fill().await?,
                }
            }
        };
        within(wait, &url, "waiting for the pong", answer).await
    }

    /// Sends a close frame and waits briefly for the server's.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            self.queue_close();
            if self.flush_out().await.is_err() {
                return;
            }
            while !self.close_received {
                match self.parse_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        if self.fill().await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        })
        .await;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> MessageStream for WsStream<S> {
    /// Owned: the generic read loop hands messages to a hook by value.
    type Message = WsIncoming;

    async fn next_message(&mut self) -> Result<Option<WsIncoming>, ClientError> {
        Ok(self.next().await?.map(WsIncoming::into_owned))
    }

    async fn close(self) {
        WsStream::close(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::read_buffer::{READ_MAX, READ_START};
    use super::*;
    use futures_util::FutureExt as _;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// A peer in memory: each read returns the next piece (at most what
    /// fits), then the end; writes are kept.
    #[derive(Default)]
    struct Pieces {
        pieces: VecDeque<Vec<u8>>,
        written: Vec<u8>,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(mut piece) = self.pieces.pop_front() {
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.pieces.push_front(piece.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Pieces {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.written.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=65535 => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// Everything a stream over `pieces` yields (`<ping>` for a ping) and
    /// how it ended; every read is ready, so nothing waits.
    fn read_all(pieces: Vec<Vec<u8>>) -> (Vec<String>, Result<(), ClientError>, WsStream<Pieces>) {
        // An empty read is the end of the stream: no empty pieces.
        let io = Pieces {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
            written: Vec::new(),
        };
        let mut ws = WsStream::from_upgraded(io, "ws://test/".into());
        let mut got = Vec::new();
        let end = loop {
            let next = ws.next().now_or_never().expect("memory is always ready");
            match next {
                Ok(Some(WsIncoming::Text(t))) => got.push(t.to_string()),
                Ok(Some(WsIncoming::Ping)) => got.push("<ping>".into()),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        (got, end, ws)
    }

    #[test]
    fn any_split_into_two_reads_gives_the_same_messages() {
        let big = "z".repeat(3000);
        let stream = [
            frame(0x81, b"one"),
            frame(0x89, b"p"),
            frame(0x81, big.as_bytes()),
            frame(0x01, b"frag"),
            frame(0x8A, b"ignored pong"),
            frame(0x80, b"mented"),
            frame(0x88, &[0x03, 0xE8]),
        ]
        .concat();
        for cut in 0..=stream.len() {
            let (got, end, ws) = read_all(vec![stream[..cut].to_vec(), stream[cut..].to_vec()]);
            assert_eq!(got, ["one", "<ping>", &big, "fragmented"], "cut at {cut}");
            assert!(end.is_ok(), "cut at {cut}: {end:?}");
            // A pong (masked, 1 byte) then a close (masked, empty).
            assert_eq!(ws.io.written.len(), 2 + 4 + 1 + 2 + 4, "cut at {cut}");
            assert_eq!(ws.io.written[0], 0x8A);
            assert_eq!(ws.io.written[7], 0x88);
        }
    }

    #[test]
    fn the_buffer_grows_for_a_backlog_and_a_large_frame_then_rests() {
        let small: Vec<u8> = (0..200).flat_map(|_| frame(0x81, b"tick")).collect();
        let large = frame(0x81, &vec![b'L'; 100_000]);
        let (got, end, ws) = read_all(vec![small, large, frame(0x81, b"last")]);
        assert_eq!(got.len(), 202);
        assert_eq!(got[200].len(), 100_000);
        assert!(matches!(end, Err(ClientError::Closed { .. })), "{end:?}");
        assert_eq!(
            ws.read.size(),
            READ_START,
            "back to rest after a short read"
        );
    }

    #[test]
    fn a_declared_huge_frame_is_refused_from_its_header() {
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        let (got, end, ws) = read_all(vec![[frame(0x81, b"ok"), huge].concat()]);
        assert_eq!(got, ["ok"]);
        let err = end.unwrap_err();
        assert!(err.to_string().contains("over the 1048576-byte"), "{err}");
        assert!(ws.read.size() <= READ_MAX, "nothing was buffered for it");
    }

    #[test]
    fn fragments_over_the_limit_are_refused() {
        let chunk = vec![b'a'; 600_000];
        let (got, end, _) = read_all(vec![frame(0x01, &chunk), frame(0x00, &chunk)]);
        assert!(got.is_empty());
        assert!(end
            .unwrap_err()
            .to_string()
            .contains("fragmented message over"));
    }

    /// `bytes` cut into pieces of the lengths in `cuts`, taken in turn.
    fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        let mut rest = bytes;
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((*cut).min(rest.len()));
            pieces.push(a.to_vec());
            rest = b;
        }
        pieces
    }

    proptest! {
        /// Random bytes after the handshake: messages, then an end or an
        /// error; never a panic, never more than the limit buffered.
        #[test]
        fn garbage_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(1usize..50, 1..20),
        ) {
            let pieces = split(&bytes, &cuts);
            let (_, _, ws) = read_all(pieces);
            prop_assert!(ws.read.size() <= MAX_MESSAGE + 14);
        }

        /// Text messages split anywhere read back the same.
        #[test]
        fn any_split_reads_the_same_texts(
            texts in proptest::collection::vec("[a-zé€]{0,300}", 1..8),
            cuts in proptest::collection::vec(1usize..200, 1..30),
        ) {
            let stream: Vec<u8> = texts.iter().flat_map(|t| frame(0x81, t.as_bytes())).collect();
            let pieces = split(&stream, &cuts);
            let (got, end, _) = read_all(pieces);
            prop_assert_eq!(got, texts);
            let closed = matches!(end, Err(ClientError::Closed { .. }));
            prop_assert!(closed, "the end of the bytes: {:?}", end);
        }
    }
}
