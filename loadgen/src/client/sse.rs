//! The one event-stream reader: a `text/event-stream` response body, read
//! chunk by chunk through the WHATWG parser, each item turned into what the
//! caller wants by an [`SseDecode`] step: feed messages ([`FeedEvents`]) or
//! plain named events ([`NamedEvents`], for chat answers and echo replies).
//! Plus the HTTP/1.1 opener (one TCP connection per stream, read by
//! [`h1_response`] straight from its socket); HTTP/2 streams come from
//! `h2`'s pool and are read here too.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use server::event::unix_now_ns;

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::event_stream::{EventStreamParser, Item};
use super::h1_response::{self, H1Body};
use super::http::error_body;
use super::message::{MessageDecoder, Msg, RawEvent};
use super::request::sse_request;
use super::stream::MessageStream;

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

/// Where a stream's bytes come from.
enum Source {
    /// An HTTP/2 stream's body, from hyper (the pool drives its connection).
    Hyper(Incoming),
    /// An HTTP/1.1 connection of its own, read straight from the socket.
    H1(H1Body),
}

/// Messages parsed and not yet returned, in order. A read brings one event
/// as a rule, and its message waits here only until `next` returns it: so
/// the first waits in the stream itself, and only a read of several events
/// puts the others in a queue on the heap (allocated when first needed).
/// The stream's own memory is already being read at that moment; the
/// queue's buffer would be one more cache line per event, cold once
/// thousands of connections take turns.
struct Pending<T> {
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> Pending<T> {
    fn push(&mut self, msg: T) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(msg);
        } else {
            self.rest.push_back(msg);
        }
    }

    /// The oldest message: `first` is older than anything in `rest`.
    fn pop(&mut self) -> Option<T> {
        self.first.take().or_else(|| self.rest.pop_front())
    }
}

/// An open event stream.
pub struct SseStream<D: SseDecode> {
    source: Source,
    /// The HTTP/1.1 body has ended: what remains is in `pending`.
    ended: bool,
    /// What broke the stream, returned once the messages read before it
    /// (in `pending`) have been: events before garbage still count.
    failed: Option<ClientError>,
    parser: EventStreamParser,
    pending: Pending<D::Output>,
    decode: D,
    url: Arc<str>,
}

impl<D: SseDecode> SseStream<D> {
    /// Checks the response (200, `text/event-stream`) and wraps its body.
    pub async fn from_response(
        res: http::Response<Incoming>,
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
        check_content_type(&url, ctype)?;
        Ok(SseStream::new(Source::Hyper(res.into_body()), url, decode))
    }

    fn new(source: Source, url: Arc<str>, decode: D) -> Self {
        SseStream {
            source,
            ended: false,
            failed: None,
            parser: EventStreamParser::new(),
            pending: Pending::default(),
            decode,
            url,
        }
    }

    /// The next message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<D::Output>, ClientError> {
        loop {
            if let Some(msg) = self.pending.pop() {
                return Ok(Some(msg));
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if self.ended {
                return Ok(None);
            }
            let SseStream {
                source,
                ended,
                failed,
                parser,
                pending,
                decode,
                url,
            } = self;
            match source {
                Source::Hyper(body) => {
                    match std::future::poll_fn(|cx| poll_body(body, url, cx)).await? {
                        // One clock read per chunk: every event in it arrived together.
                        Some(data) => {
                            if let Err(e) = parse(parser, decode, pending, &data, unix_now_ns()) {
                                *failed = Some(ClientError::protocol(url, e));
                            }
                        }
                        None => return Ok(None),
                    }
                }
                Source::H1(body) => {
                    body.fill().await?;
                    // One clock read per read().
                    let now = unix_now_ns();
                    let mut bad = None;
                    let decoded = body.decode(|data| {
                        if bad.is_none() {
                            bad = parse(parser, decode, pending, data, now).err();
                        }
                    });
                    match (decoded, bad) {
                        (_, Some(detail)) => *failed = Some(ClientError::protocol(url, detail)),
                        (Err(e), None) => *failed = Some(e),
                        (Ok(end), None) => *ended = end,
                    }
                }
            }
        }
    }
}

/// A stream's `Content-Type` must be `text/event-stream`.
fn check_content_type(url: &Arc<str>, got: String) -> Result<(), ClientError> {
    if got.starts_with("text/event-stream") {
        Ok(())
    } else {
        Err(ClientError::ContentType {
            url: url.clone(),
            got,
        })
    }
}

/// The body's next data; trailers are skipped (nothing to measure).
fn poll_body(
    body: &mut Incoming,
    url: &Arc<str>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Bytes>, ClientError>> {
    loop {
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(Ok(None)),
            Some(Err(e)) => return Poll::Ready(Err(ClientError::http(url, e))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Poll::Ready(Ok(Some(data)));
                }
            }
        }
    }
}

/// Feeds one run of body bytes, received at `now`, to the parser; what
/// the decode step makes of each item goes to `pending`. The first error
/// (of the parser or the decode step) is returned after the items before it.
fn parse<D: SseDecode>(
    parser: &mut EventStreamParser,
    decode: &mut D,
    pending: &mut Pending<D::Output>,
    chunk: &[u8],
    now: u64,
) -> Result<(), String> {
    let mut bad: Option<String> = None;
    let fed = parser.feed(chunk, |item| match decode.item(item, now) {
        Ok(Some(msg)) => pending.push(msg),
        Ok(None) => {}
        Err(e) => {
            bad.get_or_insert(e);
        }
    });
    fed.map_err(|e| e.to_string())?;
    bad.map_or(Ok(()), Err)
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
    let (head, body) = h1_response::send(io, &sse_request(endpoint, false, last_id), url).await?;
    if head.status != 200 {
        return Err(ClientError::Status {
            url: url.clone(),
            status: head.status,
            body: body.error_snippet().await,
        });
    }
    check_content_type(url, head.content_type)?;
    Ok(SseStream::new(Source::H1(body), url.clone(), decode))
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn pending_messages_come_out_in_the_order_they_went_in() {
        let mut p = Pending::default();
        assert_eq!(p.pop(), None);
        let (mut next_in, mut next_out) = (0, 0);
        // Pushes and pops interleaved: 0 to 3 pushes before each pop, so the
        // first slot empties while the queue still holds older messages.
        for pushes in [1, 0, 2, 3, 1, 0, 0, 2, 1, 3, 0, 0, 0, 0] {
            for _ in 0..pushes {
                p.push(next_in);
                next_in += 1;
            }
            if let Some(got) = p.pop() {
                assert_eq!(got, next_out);
                next_out += 1;
            }
        }
        while let Some(got) = p.pop() {
            assert_eq!(got, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(p.rest.capacity() > 0, "the pattern went through the queue");
    }
}
