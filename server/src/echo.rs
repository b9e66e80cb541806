//! Round trips, client to server to client, on both transports.
//!
//! - WebSocket: `GET /ws/echo`; every text or binary message comes back on the
//!   same socket, unchanged. The socket follows RFC 6455 where the Autobahn
//!   suite probes it: see [`close_for`] for the close code of each fault.
//! - SSE: `GET /sse/echo?client=<id>` opens a stream for one client (the
//!   `hello` names the id; the server picks one when none is given), and
//!   `POST /echo` with `{"client":id,"corr":n,"sent_unix_ns":t}` puts an
//!   `echo` event on that client's stream only. Over HTTP/2 the POST can share
//!   the stream's connection; over HTTP/1.1 it needs another one.
//!
//! Each SSE client's replies wait in a bounded queue (`--echo-queue`): a POST
//! that finds it full gets `503`, so a client that stops reading costs the
//! server a bounded amount of memory.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::event::{unix_now_ns, SSE_KEEPALIVE};
use crate::hub::Permit;
use crate::routes::{protocol_of, refused, AppState};
use crate::ws::{client_timeout, upgrade, Upgraded};

/// Lock shards of the client registry.
const SHARDS: usize = 16;
/// Ids the server hands out start here, far from small client-chosen ones.
const SERVER_IDS: u64 = 1 << 40;

/// The open SSE echo streams, by client id.
#[derive(Debug)]
pub struct EchoClients {
    shards: Vec<Mutex<HashMap<u64, Slot>>>,
    next_id: AtomicU64,
    next_generation: AtomicU64,
    queue: usize,
}

#[derive(Debug)]
struct Slot {
    tx: mpsc::Sender<Bytes>,
    generation: u64,
}

/// Why a reply could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    UnknownClient,
    QueueFull,
}

impl EchoClients {
    /// A registry whose clients each queue at most `queue` replies.
    pub fn new(queue: usize) -> Self {
        EchoClients {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            next_id: AtomicU64::new(SERVER_IDS),
            next_generation: AtomicU64::new(1),
            queue: queue.max(1),
        }
    }

    fn shard(&self, client: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.shards[(client % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a stream for `client` (a new id when none), replacing an
    /// older stream of the same id (whose queue then ends).
    pub fn register(self: &Arc<Self>, client: Option<u64>) -> Registration {
        let id = client.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        self.shard(id).insert(id, Slot { tx, generation });
        Registration {
            clients: self.clone(),
            id,
            generation,
            rx,
        }
    }

    /// Queues `frame` for `client` without waiting.
    pub fn send(&self, client: u64, frame: Bytes) -> Result<(), Rejected> {
        let shard = self.shard(client);
        let slot = shard.get(&client).ok_or(Rejected::UnknownClient)?;
        slot.tx.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Rejected::QueueFull,
            mpsc::error::TrySendError::Closed(_) => Rejected::UnknownClient,
        })
    }
}

/// One client's stream registration; dropping it unregisters (if not replaced).
#[derive(Debug)]
pub struct Registration {
    clients: Arc<EchoClients>,
    pub id: u64,
    generation: u64,
    rx: mpsc::Receiver<Bytes>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut shard = self.clients.shard(self.id);
        if shard
            .get(&self.id)
            .is_some_and(|s| s.generation == self.generation)
        {
            shard.remove(&self.id);
        }
    }
}

/// `POST /echo` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EchoRequest {
    pub client: u64,
    pub corr: u64,
    pub sent_unix_ns: u64,
}

/// The `echo` event's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EchoReply {
    #[serde(rename = "type")]
    pub kind: String,
    pub corr: u64,
    pub sent_unix_ns: u64,
    pub server_unix_ns: u64,
}

/// The SSE frame of one reply.
pub fn sse_reply(req: &EchoRequest) -> Bytes {
    Bytes::from(format!(
        "event: echo\ndata: {{\"type\":\"echo\",\"corr\":{},\"sent_unix_ns\":{},\"server_unix_ns\":{}}}\n\n",
        req.corr,
        req.sent_unix_ns,
        unix_now_ns()
    ))
}

#[derive(Debug, Deserialize)]
pub struct ClientQuery {
    client: Option<u64>,
}

/// `GET /sse/echo?client=<id>`
pub async fn sse_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
    clients: web::Data<EchoClients>,
    query: web::Query<ClientQuery>,
) -> HttpResponse {
    let Some(permit) = state.hub.admit() else {
        return refused(&state);
    };
    let registration = clients.into_inner().register(query.client);
    let hello = format!(
        "retry: {}\nevent: hello\ndata: {{\"type\":\"hello\",\"transport\":\"sse\",\"protocol\":\"{}\",\"client\":{}}}\n\n",
        state.config.retry_ms,
        protocol_of(&req).as_str(),
        registration.id
    );
    let body = EchoBody {
        hello: Some(Bytes::from(hello)),
        registration,
        keepalive: keepalive(state.config.keepalive),
        stop: Box::pin(state.hub.stream_token().cancelled_owned()),
        _permit: permit,
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .streaming(futures_util::stream::unfold(body, EchoBody::next_chunk))
}

pub(crate) fn keepalive(period: Duration) -> Interval {
    let period = period.max(Duration::from_millis(1));
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

struct EchoBody {
    hello: Option<Bytes>,
    registration: Registration,
    keepalive: Interval,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: Permit,
}

impl EchoBody {
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, EchoBody)> {
        if let Some(hello) = self.hello.take() {
            return Some((Ok(hello), self));
        }
        tokio::select! {
            biased;
            _ = &mut self.stop => None,
            reply = self.registration.rx.recv() => reply.map(|b| (Ok(b), self)),
            _ = self.keepalive.tick() => Some((Ok(Bytes::from_static(SSE_KEEPALIVE)), self)),
        }
    }
}

/// `POST /echo`: `202` when queued, `404` for an unknown client, `503` when
/// its queue is full, `400` for a body that is not an [`EchoRequest`].
pub async fn post_handler(
    state: web::Data<AppState>,
    clients: web::Data<EchoClients>,
    body: web::Bytes,
) -> HttpResponse {
    let req: EchoRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse::BadRequest().body(format!(
                "expected {{\"client\":id,\"corr\":n,\"sent_unix_ns\":t}}: {e}\n"
            ))
        }
    };
    match clients.send(req.client, sse_reply(&req)) {
        Ok(()) => {
            state.hub.stats.echo_replies.inc();
            HttpResponse::Accepted().finish()
        }
        Err(rejected) => {
            state.hub.stats.echo_rejected.inc();
            match rejected {
                Rejected::UnknownClient => HttpResponse::NotFound().body(format!(
                    "no open /sse/echo stream for client {}\n",
                    req.client
                )),
                Rejected::QueueFull => HttpResponse::ServiceUnavailable()
                    .insert_header((header::RETRY_AFTER, "1"))
                    .body("this client's reply queue is full: read the stream\n"),
            }
        }
    }
}

/// `GET /ws/echo`
pub async fn ws_handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let Upgraded {
        response,
        session,
        messages,
        permit,
    } = match upgrade(&req, body, &state)? {
        Ok(u) => u,
        Err(refusal) => return Ok(refusal),
    };
    let conn = EchoSocket {
        session,
        messages,
        stop: Box::pin(state.hub.stream_token().cancelled_owned()),
        keepalive: state.config.keepalive,
        state: state.into_inner(),
        _permit: permit,
    };
    actix_web::rt::spawn(conn.run());
    Ok(response)
}

struct EchoSocket {
    session: Session,
    messages: AggregatedMessageStream,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    keepalive: Duration,
    state: Arc<AppState>,
    _permit: Permit,
}

/// How long the closing handshake may wait for room in the session.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

impl EchoSocket {
    async fn run(mut self) {
        let ending = self.serve().await;
        if let Some(reason) = ending {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.session.close(reason)).await;
        }
    }

    /// Echoes until the socket ends; returns the close frame to send, if one
    /// is still due (`None`: the peer is gone).
    async fn serve(&mut self) -> Option<Option<CloseReason>> {
        let timeout = client_timeout(self.keepalive);
        let mut heartbeat = keepalive(self.keepalive);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = &mut self.stop => return Some(Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("server closed the socket".into()),
                })),
                msg = self.messages.recv() => {
                    last_heard = Instant::now();
                    let sent = match msg {
                        None => return None,
                        Some(Ok(AggregatedMessage::Text(text))) => self.session.text(text).await,
                        Some(Ok(AggregatedMessage::Binary(bin))) => self.session.binary(bin).await,
                        Some(Ok(AggregatedMessage::Ping(p))) => self.session.pong(&p).await,
                        Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                        // The closing handshake: answer with the peer's code.
                        Some(Ok(AggregatedMessage::Close(reason))) => return Some(reason),
                        Some(Err(err)) => {
                            self.state.hub.stats.ws_protocol_errors.inc();
                            tracing::debug!(%err, "closing an echo socket on a protocol error");
                            return Some(Some(close_for(&err)));
                        }
                    };
                    if sent.is_err() {
                        return None;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > timeout {
                        self.state.hub.stats.ws_timeouts.inc();
                        return Some(Some(CloseReason {
                            code: CloseCode::Policy,
                            description: Some("no pong within the client timeout".into()),
                        }));
                    }
                    if self.session.ping(b"").await.is_err() {
                        return None;
                    }
                }
            }
        }
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
///   aggregated.rs's "Exceeded maximum continuation size");
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
    fn replies_go_to_their_client_only_and_queues_are_bounded() {
        let clients = Arc::new(EchoClients::new(2));
        let mut a = clients.register(Some(7));
        let b = clients.register(None);
        assert!(b.id >= SERVER_IDS);
        let req = EchoRequest {
            client: 7,
            corr: 1,
            sent_unix_ns: 5,
        };
        clients.send(7, sse_reply(&req)).unwrap();
        clients.send(7, sse_reply(&req)).unwrap();
        assert_eq!(clients.send(7, sse_reply(&req)), Err(Rejected::QueueFull));
        assert_eq!(
            clients.send(8, sse_reply(&req)),
            Err(Rejected::UnknownClient)
        );
        let got = a.rx.try_recv().unwrap();
        assert!(std::str::from_utf8(&got)
            .unwrap()
            .starts_with("event: echo\ndata: {\"type\":\"echo\",\"corr\":1,"));
        drop(a);
        assert_eq!(
            clients.send(7, sse_reply(&req)),
            Err(Rejected::UnknownClient)
        );
    }

    #[test]
    fn a_replaced_registration_does_not_unregister_the_new_one() {
        let clients = Arc::new(EchoClients::new(4));
        let old = clients.register(Some(3));
        let _new = clients.register(Some(3));
        drop(old);
        let req = EchoRequest {
            client: 3,
            corr: 1,
            sent_unix_ns: 1,
        };
        assert!(clients.send(3, sse_reply(&req)).is_ok());
    }

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
}
