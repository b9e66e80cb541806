//! `/ws`: the feed as WebSocket text messages, one per event (actix-ws).
//!
//! One task per connection runs one `select!` over the shutdown token, the
//! client's frames, a heartbeat and the feed, as in actix's actorless echo
//! example. Sends that would wait (the client reads slowly) are bounded by
//! [`client_timeout`]: past it the socket is closed and counted, so a stuck
//! client holds no memory beyond actix-ws's small per-session channel.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use futures_util::FutureExt as _;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::event::{self, Hello};
use crate::hub::{Hub, Item, LastId, Permit, Subscription};
use crate::routes::{protocol_of, refused, AppState};
use crate::sse::ResumeQuery;
use crate::stats::{ConnTally, Transport, Wire};

/// A client silent for this long (no pong, no message) is closed.
pub fn client_timeout(keepalive: Duration) -> Duration {
    keepalive * 2
}

/// An admitted, upgraded WebSocket with the server's frame limits applied.
pub struct Upgraded {
    pub response: HttpResponse,
    pub session: Session,
    pub messages: AggregatedMessageStream,
    pub permit: Permit,
}

/// What every WebSocket route does first: admit the stream (refusing with
/// a plain 503 *before* the upgrade when `--max-connections` are open),
/// upgrade, and bound frames and messages by `--ws-max-frame`.
pub fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> actix_web::Result<Result<Upgraded, HttpResponse>> {
    let Some(permit) = state.hub.admit() else {
        return Ok(Err(refused(state)));
    };
    let (response, session, messages) = actix_ws::handle(req, body)?;
    let max = state.config.ws_max_frame;
    let messages = messages
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    Ok(Ok(Upgraded {
        response,
        session,
        messages,
        permit,
    }))
}

/// `GET /ws`
pub async fn handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<ResumeQuery>,
) -> actix_web::Result<HttpResponse> {
    let protocol = protocol_of(&req);
    let Upgraded {
        response,
        session,
        messages,
        permit,
    } = match upgrade(&req, body, &state)? {
        Ok(u) => u,
        Err(refusal) => return Ok(refusal),
    };
    let last = LastId::parse(query.last_event_id.as_deref());
    let stop = Box::pin(state.hub.stream_token().cancelled_owned());
    let (sub, resume) = state.hub.subscribe(last);
    let hello = Hello {
        kind: "hello".into(),
        transport: "ws".into(),
        protocol: protocol.as_str().into(),
        resume,
        last_id: state.hub.latest_id(),
        rate_hz: state.config.rate,
    };
    let conn = WsConn {
        session,
        messages,
        sub,
        stop,
        keepalive: state.config.keepalive,
        tally: state
            .hub
            .stats
            .open_stream(Wire::new(Transport::Ws, protocol)),
        hub: state.hub.clone(),
        stuck: false,
        _permit: permit,
    };
    actix_web::rt::spawn(conn.run(event::hello_json(&hello)));
    Ok(response)
}

struct WsConn {
    session: Session,
    messages: AggregatedMessageStream,
    sub: Subscription,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    keepalive: Duration,
    tally: ConnTally,
    hub: Arc<Hub>,
    /// Set when the client accepted nothing for the timeout: no close frame
    /// then (it could not be sent either); the session is simply dropped.
    stuck: bool,
    _permit: Permit,
}

/// A frame the server sends.
enum Out {
    Text(ByteString),
    Ping,
    Pong(bytes::Bytes),
}

/// Awaits one send. The common case (room in the session's channel)
/// completes at once with no timer; only a backed-up client pays for one.
async fn bounded(
    send: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
    stop: &mut Pin<Box<WaitForCancellationFutureOwned>>,
    timeout: Duration,
) -> Sent {
    tokio::pin!(send);
    if let Some(r) = (&mut send).now_or_never() {
        return if r.is_ok() { Sent::Ok } else { Sent::Closed };
    }
    tokio::select! {
        r = &mut send => if r.is_ok() { Sent::Ok } else { Sent::Closed },
        _ = stop => Sent::Stopped,
        _ = tokio::time::sleep(timeout) => Sent::Stuck,
    }
}

/// How a send ended.
enum Sent {
    Ok,
    /// The client went away.
    Closed,
    /// Shutdown or drop-all while waiting.
    Stopped,
    /// The client accepted nothing for the client timeout.
    Stuck,
}

/// Why the loop ended: the close frame to send, if any.
type Ending = Option<CloseReason>;

/// How long the closing handshake may wait for room in the session.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

impl WsConn {
    async fn run(mut self, hello: String) {
        let ending = self.serve(hello).await;
        if !self.stuck {
            // Bounded: a client that reads nothing must not hold this task.
            // A failed close means the client is already gone: nothing to do.
            let close = self.session.close(ending);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        }
    }

    async fn serve(&mut self, hello: String) -> Ending {
        let timeout = client_timeout(self.keepalive);
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + self.keepalive,
            self.keepalive.max(Duration::from_millis(1)),
        );
        let mut last_heard = Instant::now();
        match self.send(Out::Text(hello.into()), timeout).await {
            Sent::Ok => {}
            other => return self.ending_for(other),
        }
        loop {
            tokio::select! {
                biased;
                _ = &mut self.stop => return going_away(),
                msg = self.messages.recv() => match msg {
                    None => return None,
                    Some(Ok(AggregatedMessage::Ping(payload))) => {
                        last_heard = Instant::now();
                        match self.send(Out::Pong(payload), timeout).await {
                            Sent::Ok => {}
                            other => return self.ending_for(other),
                        }
                    }
                    Some(Ok(AggregatedMessage::Close(reason))) => return reason,
                    // Pongs, and text or binary from the client (ignored on the feed).
                    Some(Ok(_)) => last_heard = Instant::now(),
                    Some(Err(err)) => {
                        self.hub.stats.ws_protocol_errors.inc();
                        tracing::debug!(%err, "closing a WebSocket on a protocol error");
                        return Some(close_for_protocol_error(&err));
                    }
                },
                _ = heartbeat.tick() => {
                    self.tally.flush();
                    if last_heard.elapsed() > timeout {
                        self.hub.stats.ws_timeouts.inc();
                        return Some(CloseReason {
                            code: CloseCode::Policy,
                            description: Some("no pong within the client timeout".into()),
                        });
                    }
                    match self.send(Out::Ping, timeout).await {
                        Sent::Ok => {}
                        other => return self.ending_for(other),
                    }
                }
                item = self.sub.next() => {
                    let text: ByteString = match item {
                        None => return going_away(),
                        Some(Item::Event(ev)) => ev.ws.clone(),
                        Some(Item::Gap(gap)) => event::ws_gap(gap).into(),
                    };
                    let len = text.len();
                    match self.send(Out::Text(text), timeout).await {
                        Sent::Ok => self.tally.sent(len),
                        other => return self.ending_for(other),
                    }
                }
            }
        }
    }

    /// Sends one frame (events, pings and pongs alike), bounded by the
    /// client timeout and the stop token: a client that reads nothing can
    /// never hold this task, whatever frame it is waiting on.
    async fn send(&mut self, out: Out, timeout: Duration) -> Sent {
        let WsConn { session, stop, .. } = self;
        match out {
            Out::Text(text) => bounded(session.text(text), stop, timeout).await,
            Out::Ping => bounded(session.ping(b""), stop, timeout).await,
            Out::Pong(payload) => bounded(session.pong(&payload), stop, timeout).await,
        }
    }

    fn ending_for(&mut self, sent: Sent) -> Ending {
        match sent {
            Sent::Ok | Sent::Closed => None,
            Sent::Stopped => going_away(),
            Sent::Stuck => {
                self.stuck = true;
                self.hub.stats.slow_disconnects.inc();
                Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some(
                        "client too slow: nothing accepted within the timeout".into(),
                    ),
                })
            }
        }
    }
}

fn going_away() -> Ending {
    Some(CloseReason {
        code: CloseCode::Away,
        description: Some("server closed the stream; reconnect with lastEventId".into()),
    })
}

/// 1009 for a frame or message over the size limit, 1002 for anything else
/// malformed (unmasked frame, bad opcode, bad control frame...).
fn close_for_protocol_error(err: &actix_ws::ProtocolError) -> CloseReason {
    match err {
        actix_ws::ProtocolError::Overflow => CloseReason {
            code: CloseCode::Size,
            description: Some("message too big".into()),
        },
        other => CloseReason {
            code: CloseCode::Protocol,
            description: Some(other.to_string()),
        },
    }
}
