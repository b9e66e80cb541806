//! The one event-stream reader: a `text/event-stream` response body, read
//! chunk by chunk through the WHATWG parser, each item turned into what the
//! caller wants by an [`SseDecode`] step: feed messages ([`FeedEvents`]) or
//! plain named events ([`NamedEvents`], for chat answers and echo replies).
//! Plus the HTTP/1.1 opener (one TCP connection per stream); HTTP/2 streams
//! come from `h2`'s pool and are read here too.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use server::event::unix_now_ns;

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::event_stream::{EventStreamParser, Item};
use super::http::error_body;
use super::message::{MessageDecoder, Msg, RawEvent};
use super::request::sse_request;
use super::stream::MessageStream;

/// The most an HTTP/1.1 stream's connection buffers from its socket: the
/// least hyper accepts.
const READ_BUFFER: usize = 8 * 1024;

/// What a reader makes of the parser's items.
pub trait SseDecode: Send {
    type Output: Send;

    /// `Ok(None)`: nothing for the caller (a comment it does not count...).
    fn item(&mut self, item: Item<'_>, recv_unix_ns: u64) -> Result<Option<Self::Output>, String>;
}

/// The feed: events through a [`MessageDecoder`], comments as keep-alives,
/// `retry:` as the reconnection delay.
#[derive(Debug, Clone)]
pub struct FeedEvents(pub Arc<dyn MessageDecoder>);

impl SseDecode for FeedEvents {
    type Output = Msg;

    fn item(&mut self, item: Item<'_>, recv_unix_ns: u64) -> Result<Option<Msg>, String> {
        match item {
            Item::Event {
                event_type,
                data,
                id,
            } => self.0.decode(
                RawEvent {
                    event_type,
                    id,
                    data,
                },
                recv_unix_ns,
            ),
            Item::Comment(_) => Ok(Some(Msg::KeepAlive)),
            Item::Retry(ms) => Ok(Some(Msg::Retry(ms))),
        }
    }
}

/// One event of a stream that is not the feed: its type and data.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedEvent {
    pub event: String,
    pub data: String,
}

/// Events as [`NamedEvent`]s; comments and `retry:` skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct NamedEvents;

impl SseDecode for NamedEvents {
    type Output = NamedEvent;

    fn item(&mut self, item: Item<'_>, _: u64) -> Result<Option<NamedEvent>, String> {
        Ok(match item {
            Item::Event {
                event_type, data, ..
            } => Some(NamedEvent {
                event: event_type.to_string(),
                data: data.to_string(),
            }),
            Item::Comment(_) | Item::Retry(_) => None,
        })
    }
}

/// An HTTP/1.1 connection's I/O, driven by the task reading its stream.
pub type ConnFuture = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An open event stream.
pub struct SseStream<D: SseDecode> {
    body: Incoming,
    /// HTTP/1.1 only: the connection is driven here, in the reading task,
    /// so each chunk costs one wake-up instead of two.
    conn: Option<ConnFuture>,
    parser: EventStreamParser,
    pending: VecDeque<D::Output>,
    decode: D,
    url: Arc<str>,
}

impl<D: SseDecode> SseStream<D> {
    /// Checks the response (200, `text/event-stream`) and wraps its body.
    pub async fn from_response(
        res: http::Response<Incoming>,
        conn: Option<ConnFuture>,
        url: Arc<str>,
        decode: D,
    ) -> Result<Self, ClientError> {
        let status = res.status();
        if status != http::StatusCode::OK {
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                body: error_body(res.into_body()).await,
            });
        }
        let ctype = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !ctype.starts_with("text/event-stream") {
            return Err(ClientError::ContentType { url, got: ctype });
        }
        Ok(SseStream {
            body: res.into_body(),
            conn,
            parser: EventStreamParser::new(),
            pending: VecDeque::with_capacity(8),
            decode,
            url,
        })
    }

    /// The next message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<D::Output>, ClientError> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Ok(Some(msg));
            }
            match std::future::poll_fn(|cx| self.poll_chunk(cx)).await? {
                Some(data) => self.parse(&data)?,
                None => return Ok(None),
            }
        }
    }

    /// The body's next chunk; `None` at its end. Over HTTP/1.1 the
    /// connection is polled here too, and the body once more right after
    /// it: the chunk the connection has just read is taken in this same
    /// poll, not in the extra one its wake-up schedules (hyper hands the
    /// chunk over through a channel whose wakers are this task's).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, ClientError>> {
        loop {
            if let Poll::Ready(chunk) = self.poll_body(cx) {
                return Poll::Ready(chunk);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Pending;
            };
            match conn.as_mut().poll(cx) {
                // Done: the body has what remains, then its end.
                Poll::Ready(Ok(())) => {
                    self.conn = None;
                    continue;
                }
                Poll::Ready(Err(e)) => {
                    self.conn = None;
                    return Poll::Ready(Err(ClientError::http(&self.url, e)));
                }
                Poll::Pending => return self.poll_body(cx),
            }
        }
    }

    /// The body's next data; trailers are skipped (nothing to measure).
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, ClientError>> {
        loop {
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => return Poll::Ready(Ok(None)),
                Some(Err(e)) => return Poll::Ready(Err(ClientError::http(&self.url, e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Ok(Some(data)));
                    }
                }
            }
        }
    }

    fn parse(&mut self, chunk: &[u8]) -> Result<(), ClientError> {
        // One clock read per chunk: every event in it arrived together.
        let now = unix_now_ns();
        let mut bad: Option<String> = None;
        let pending = &mut self.pending;
        let decode = &mut self.decode;
        let fed = self
            .parser
            .feed(chunk, |item| match decode.item(item, now) {
                Ok(Some(msg)) => pending.push_back(msg),
                Ok(None) => {}
                Err(e) => {
                    bad.get_or_insert(e);
                }
            });
        if let Err(e) = fed {
            return Err(ClientError::protocol(&self.url, e.to_string()));
        }
        match bad {
            Some(detail) => Err(ClientError::protocol(&self.url, detail)),
            None => Ok(()),
        }
    }
}

impl<D: SseDecode> MessageStream for SseStream<D> {
    type Message = D::Output;

    async fn next_message(&mut self) -> Result<Option<D::Output>, ClientError> {
        self.next().await
    }
}

/// Opens an event stream over HTTP/1.1 on connection `index`, its own TCP
/// (or TLS) connection, resuming after `last_id`.
pub async fn open_h1<D: SseDecode>(
    dialer: &Dialer,
    endpoint: &Endpoint,
    index: usize,
    last_id: Option<u64>,
    decode: D,
) -> Result<SseStream<D>, ClientError> {
    let url = endpoint.shown();
    let io = dialer.connect(endpoint, index).await?;
    // hyper's read buffer starts at 8 KiB and doubles, up to ~400 KiB, each
    // time a read fills it: a backlog of events (a loaded machine, a burst)
    // left thousands of connections holding buffers many times that size.
    // At its floor it stays 8 KiB (55 events of the default size per read);
    // a response head must then fit in 8 KiB.
    let (mut send, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::http(url, e))?;
    let mut conn: ConnFuture = Box::pin(conn);
    let pending = send.send_request(sse_request(endpoint, false, last_id));
    tokio::pin!(pending);
    // Both must be polled: the connection does the I/O for the request. A
    // peer that answers and closes at once finishes the connection first,
    // with the response already parsed: then take the response, and do not
    // poll the finished connection again.
    let (res, conn) = tokio::select! {
        biased;
        res = &mut pending => (res, Some(conn)),
        done = &mut conn => {
            if let Err(e) = done {
                return Err(ClientError::http(url, e));
            }
            (pending.await, None)
        }
    };
    let res = res.map_err(|e| ClientError::http(url, e))?;
    SseStream::from_response(res, conn, url.clone(), decode).await
}
