//! Round trips, client to server to client, on both transports.
//!
//! - WebSocket: `GET /ws/echo`; every text or binary message comes back on the
//!   same socket, unchanged. The socket follows RFC 6455 where the Autobahn
//!   suite probes it: see [`crate::ws_session::close_for`] for the close code of each fault.
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

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::AggregatedMessage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Interval;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::event::{unix_now_ns, SSE_KEEPALIVE};
use crate::hub::Permit;
use crate::sse_response::event_stream;
use crate::state::{bad_request, keepalive_timer, protocol_of, refused, AppState};
use crate::ws_session::{self, Conversation, Out};

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
        keepalive: keepalive_timer(state.config.keepalive),
        stop: Box::pin(state.hub.stream_token().cancelled_owned()),
        _permit: permit,
    };
    event_stream(
        &state,
        req.version(),
        futures_util::stream::unfold(body, EchoBody::next_chunk),
    )
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
            return bad_request(
                &state,
                format!("expected {{\"client\":id,\"corr\":n,\"sent_unix_ns\":t}}: {e}"),
            )
        }
    };
    match clients.send(req.client, sse_reply(&req)) {
        Ok(()) => {
            state.hub.stats.counters.echo_replies.inc();
            HttpResponse::Accepted().finish()
        }
        Err(rejected) => {
            state.hub.stats.counters.echo_rejected.inc();
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
    let (response, socket) = match ws_session::upgrade(&req, body, &state).await? {
        Ok(upgraded) => upgraded,
        Err(refusal) => return Ok(refusal),
    };
    actix_web::rt::spawn(ws_session::serve(socket, EchoSocket));
    Ok(response)
}

/// Every text or binary message back, unchanged; nothing of its own.
struct EchoSocket;

impl Conversation for EchoSocket {
    const AWAY: &'static str = "server closed the socket";

    async fn next(&mut self) -> Option<Out> {
        std::future::pending().await
    }

    fn on_message(&mut self, message: AggregatedMessage) -> Option<Out> {
        match message {
            AggregatedMessage::Text(text) => Some(Out::Text(text)),
            AggregatedMessage::Binary(bin) => Some(Out::Binary(bin)),
            _ => None,
        }
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
}
