//! One WebSocket session for every WebSocket route (`/ws`, `/ws/chat`,
//! `/ws/echo`): admission, the upgrade with the server's frame limits, and
//! the one bounded `select!` loop that serves the socket.
//!
//! A route supplies only its [`Conversation`]: what it answers to a client's
//! message and what it sends on its own. The loop does the rest the same way
//! for all three, as in actix's actorless echo example: one task per
//! connection, one `select!` over the stop token (shutdown, drop-all), the
//! client's frames, a heartbeat and the route's own frames.
//!
//! Every send is bounded ([`client_timeout`]): a client that stops reading
//! cannot pin the task, whatever frame it is waiting on (an event, a pong, an
//! echo, a chat token), so the heartbeat and drop-all can always close it,
//! and it holds no memory beyond actix-ws's small per-session channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest as _, HttpRequest, HttpResponse};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Message, Session,
};
use bytes::Bytes;
use bytestring::ByteString;
use futures_util::{FutureExt as _, SinkExt as _};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::hub::{Hub, Permit};
use crate::state::{keepalive_timer, refused, AppState};
use crate::ws_frame_limit::{is_overflow, FrameLimit};

/// The request payload as actix boxes it.
type PayloadStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>>;

/// A client silent for this long (no pong, no message) is closed, and a send
/// that waits this long for room is given up.
pub fn client_timeout(keepalive: Duration) -> Duration {
    keepalive * 2
}

/// How long the closing handshake may wait for room in the session.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A frame the server sends on a route's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Text(ByteString),
    Binary(Bytes),
}

impl Out {
    pub fn len(&self) -> usize {
        match self {
            Out::Text(t) => t.len(),
            Out::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a WebSocket route does with an open socket; the session loop does
/// everything else.
pub(crate) trait Conversation {
    /// The close reason when the server closes the socket (shutdown, drop-all).
    const AWAY: &'static str;

    /// The next frame the route sends on its own; pending while there is
    /// none. `None` ends the socket (closed as going away). Must be
    /// cancel-safe: the loop drops it whenever something else is ready.
    fn next(&mut self) -> impl Future<Output = Option<Out>>;

    /// A text or binary message from the client; the reply to send, if any.
    fn on_message(&mut self, message: AggregatedMessage) -> Option<Out>;

    /// A frame from [`Conversation::next`] went out.
    fn sent(&mut self, _frame: &Out) {}

    /// The heartbeat ticked (every keep-alive period).
    fn on_heartbeat(&mut self) {}

    /// Whether a silent client may be timed out now (chat: not while an
    /// answer it asked for streams).
    fn may_time_out(&self) -> bool {
        true
    }
}

/// An admitted, upgraded WebSocket, ready for [`serve`].
pub struct Socket {
    session: Session,
    messages: AggregatedMessageStream,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    hub: Arc<Hub>,
    keepalive: Duration,
    _permit: Permit,
}

/// What every WebSocket route does first: admit the stream (refusing with a
/// plain 503 *before* the upgrade when the stream limit is reached), bound
/// the client's frames by `--ws-max-frame` from their headers on
/// ([`FrameLimit`]), and upgrade.
pub async fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> actix_web::Result<Result<(HttpResponse, Socket), HttpResponse>> {
    let Some(permit) = state.hub.admit() else {
        return Ok(Err(refused(state)));
    };
    let max = state.config.ws_max_frame;
    let limited = FrameLimit::new(body.into_inner(), max);
    let boxed: PayloadStream = Box::pin(limited);
    let mut payload = Payload::from(boxed);
    let body = web::Payload::from_request(req, &mut payload).await?;
    let (response, session, messages) = actix_ws::handle(req, body)?;
    // actix's own limits stay as a second line behind FrameLimit.
    let messages = messages
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let socket = Socket {
        session,
        messages,
        stop: Box::pin(state.hub.stream_token().cancelled_owned()),
        hub: state.hub.clone(),
        keepalive: state.config.keepalive,
        _permit: permit,
    };
    Ok(Ok((response, socket)))
}

/// Serves `socket` with `conversation` until either side closes, then
/// closes the socket (unless the client is gone or stuck).
///
/// A plain `fn` returning an `async move` block, not an `async fn`: an
/// `async fn` taking `mut` arguments moves them into locals, so the task
/// would hold the socket and the conversation twice (424 bytes more per
/// WebSocket on the feed).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its moved arguments twice"
)]
pub(crate) fn serve<C: Conversation>(
    mut socket: Socket,
    mut conversation: C,
) -> impl Future<Output = ()> {
    async move {
        match socket.run(&mut conversation).await {
            Ending::Close(reason) => {
                // Bounded: a client that reads nothing must not hold this task.
                // A failed close means the client is already gone.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.session.close(reason)).await;
            }
            // Nothing can reach a stuck client, nor a gone one: drop the session.
            Ending::Gone | Ending::Stuck => {}
        }
    }
}

/// How the loop ended.
enum Ending {
    /// Send this close frame.
    Close(Option<CloseReason>),
    /// The client went away.
    Gone,
    /// The client accepted nothing for the client timeout.
    Stuck,
}

/// How one send ended.
enum Sent {
    Ok,
    Closed,
    Stopped,
    Stuck,
}

impl Socket {
    async fn run<C: Conversation>(&mut self, conversation: &mut C) -> Ending {
        let timeout = client_timeout(self.keepalive);
        let mut heartbeat = keepalive_timer(self.keepalive);
        let mut last_heard = Instant::now();
        loop {
            let sent = tokio::select! {
                biased;
                _ = &mut self.stop => return going_away::<C>(),
                msg = self.messages.recv() => match msg {
                    None => return Ending::Gone,
                    Some(Ok(AggregatedMessage::Ping(payload))) => {
                        last_heard = Instant::now();
                        self.send(Frame::Pong(payload), timeout).await
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {
                        last_heard = Instant::now();
                        Sent::Ok
                    }
                    // The closing handshake: answer with the peer's code.
                    Some(Ok(AggregatedMessage::Close(reason))) => return Ending::Close(reason),
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        match conversation.on_message(message) {
                            Some(reply) => self.send(Frame::Out(reply), timeout).await,
                            None => Sent::Ok,
                        }
                    }
                    Some(Err(err)) => return self.protocol_error(&err),
                },
                _ = heartbeat.tick() => {
                    conversation.on_heartbeat();
                    if last_heard.elapsed() > timeout && conversation.may_time_out() {
                        self.hub.stats.counters.ws_timeouts.inc();
                        return Ending::Close(Some(CloseReason {
                            code: CloseCode::Policy,
                            description: Some("no pong within the client timeout".into()),
                        }));
                    }
                    self.send(Frame::Ping, timeout).await
                }
                frame = conversation.next() => match frame {
                    None => return going_away::<C>(),
                    Some(frame) => {
                        let sent = self.send(Frame::Out(frame.clone()), timeout).await;
                        if matches!(sent, Sent::Ok) {
                            conversation.sent(&frame);
                        }
                        sent
                    }
                },
            };
            match sent {
                Sent::Ok => {}
                Sent::Closed => return Ending::Gone,
                Sent::Stopped => return going_away::<C>(),
                Sent::Stuck => {
                    self.hub.stats.counters.slow_disconnects.inc();
                    tracing::debug!("closing a WebSocket that accepted nothing for the timeout");
                    return Ending::Stuck;
                }
            }
        }
    }

    /// Sends one frame, bounded by the client timeout and the stop token.
    /// The common case (room in the session's channel) completes at once
    /// with no timer; only a backed-up client pays for one.
    ///
    /// Through the session's `Sink`, with one message type for every frame:
    /// a future per kind (`text`, `ping`, ...) made this one 728 bytes, held
    /// in every WebSocket's task. (A client's ping payload is at most 125
    /// bytes, as a control frame must be, so its pong needs no truncation.)
    async fn send(&mut self, frame: Frame, timeout: Duration) -> Sent {
        let message = match frame {
            Frame::Out(Out::Text(text)) => Message::Text(text),
            Frame::Out(Out::Binary(bin)) => Message::Binary(bin),
            Frame::Ping => Message::Ping(Bytes::new()),
            Frame::Pong(payload) => Message::Pong(payload),
        };
        let Socket { session, stop, .. } = self;
        bounded(session.send(message), stop, timeout).await
    }

    /// The ending for an error from the client's frames: 1009 for a frame or
    /// message over the limit, 1002/1007 for a malformed one, nothing for a
    /// client that went away (its payload ended in an I/O error).
    fn protocol_error(&self, err: &actix_ws::ProtocolError) -> Ending {
        let counters = &self.hub.stats.counters;
        if is_overflow(err) {
            counters.ws_protocol_errors.inc();
            counters.ws_oversized.inc();
            tracing::debug!("closing a WebSocket whose frame declared more than --ws-max-frame");
            return Ending::Close(Some(CloseReason {
                code: CloseCode::Size,
                description: Some("message too big".into()),
            }));
        }
        if is_peer_gone(err) {
            return Ending::Gone;
        }
        counters.ws_protocol_errors.inc();
        tracing::debug!(%err, "closing a WebSocket on a protocol error");
        Ending::Close(Some(close_for(err)))
    }
}

/// Any frame the loop sends.
enum Frame {
    Out(Out),
    Ping,
    Pong(Bytes),
}

fn going_away<C: Conversation>() -> Ending {
    Ending::Close(Some(CloseReason {
        code: CloseCode::Away,
        description: Some(C::AWAY.into()),
    }))
}

async fn bounded(
    send: impl Future<Output = Result<(), actix_ws::Closed>>,
    stop: &mut Pin<Box<WaitForCancellationFutureOwned>>,
    timeout: Duration,
) -> Sent {
    tokio::pin!(send);
    if let Some(r) = (&mut send).now_or_never() {
        return if r.is_ok() { Sent::Ok } else { Sent::Closed };
    }
    // Only a backed-up client gets here: its timer is boxed, so the common
    // case does not carry one in every task.
    let deadline = Box::pin(tokio::time::sleep(timeout));
    tokio::select! {
        r = &mut send => if r.is_ok() { Sent::Ok } else { Sent::Closed },
        _ = stop => Sent::Stopped,
        _ = deadline => Sent::Stuck,
    }
}

/// Whether the error is the request payload ending abruptly (the client
/// closed its socket or reset it): not a protocol error, just gone.
fn is_peer_gone(err: &actix_ws::ProtocolError) -> bool {
    match err {
        actix_ws::ProtocolError::Io(io) => io
            .get_ref()
            .is_some_and(|e| e.is::<actix_web::error::PayloadError>()),
        _ => false,
    }
}

/// The close code for a protocol fault, as RFC 6455 asks:
///
/// - invalid UTF-8 in a text message: **1007**. actix-http reports it as
///   `ProtocolError::Io` of kind `InvalidData` (actix-ws `stream.rs`, the
///   `Frame::Text` arm of `MessageStream::poll_next`, wraps the `Utf8Error`;
///   `aggregated.rs`, the `ContinuationKind::Text` arm, wraps its text);
/// - a reserved RSV bit: **1002**. actix-http 3.20 reports it with the same
///   `Io`/`InvalidData` (`ws/frame.rs`, `parse_metadata`: "Received a frame
///   with non-zero reserved bits", a `TODO(semver-major)` to give it its own
///   variant), so the two are told apart by the message: only a UTF-8 error
///   mentions "utf-8";
/// - a message or frame over `--ws-max-frame`: **1009** (`Overflow`, or
///   aggregated.rs's "Exceeded maximum continuation size"; [`FrameLimit`]
///   normally catches these first, from the header);
/// - anything else (reserved opcode, unmasked frame, bad continuation, bad
///   close payload, fragmented or oversized control frame): **1002**.
pub fn close_for(err: &actix_ws::ProtocolError) -> CloseReason {
    let (code, description) = match err {
        actix_ws::ProtocolError::Overflow => (CloseCode::Size, "message too big".to_string()),
        actix_ws::ProtocolError::Io(io) => {
            let text = io.to_string();
            if text.contains("maximum continuation size") {
                (CloseCode::Size, "message too big".to_string())
            } else if io.kind() == std::io::ErrorKind::InvalidData
                && text.to_ascii_lowercase().contains("utf-8")
            {
                (
                    CloseCode::Invalid,
                    "text message is not valid UTF-8".to_string(),
                )
            } else {
                (CloseCode::Protocol, text)
            }
        }
        other => (CloseCode::Protocol, other.to_string()),
    };
    CloseReason {
        code,
        description: Some(description),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_rfc_6455() {
        use std::io;
        let bytes = vec![b'a', 0xff];
        let utf8 = std::str::from_utf8(&bytes).unwrap_err();
        let e = actix_ws::ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, utf8));
        assert_eq!(close_for(&e).code, CloseCode::Invalid);
        let rsv = actix_ws::ProtocolError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "Received a frame with non-zero reserved bits",
        ));
        assert_eq!(close_for(&rsv).code, CloseCode::Protocol);
        let big =
            actix_ws::ProtocolError::Io(io::Error::other("Exceeded maximum continuation size"));
        assert_eq!(close_for(&big).code, CloseCode::Size);
        assert_eq!(
            close_for(&actix_ws::ProtocolError::InvalidOpcode(3)).code,
            CloseCode::Protocol
        );
    }

    #[test]
    fn a_dropped_payload_is_a_gone_client_not_a_protocol_error() {
        use actix_web::error::PayloadError;
        let gone =
            actix_ws::ProtocolError::Io(std::io::Error::other(PayloadError::Incomplete(None)));
        assert!(is_peer_gone(&gone));
        assert!(!is_overflow(&gone));
        let utf8 = actix_ws::ProtocolError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid utf-8",
        ));
        assert!(!is_peer_gone(&utf8));
    }
}
