//! `/sse`: the feed as a `text/event-stream`.
//!
//! The body is a stream of pre-encoded `Bytes`: each tick is the hub's shared
//! frame, so a subscriber costs a reference-count increment per event, not a
//! format. actix polls the body only while its write buffer has room, so a
//! slow reader is never buffered here: it lags in the hub and is refilled from
//! the replay ring, or sent a gap event when it fell further behind.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Interval;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::event::{self, Hello, SSE_KEEPALIVE};
use crate::hub::{Item, LastId, Permit, Subscription};
use crate::sse_response::event_stream;
use crate::state::{edge_protocol_of, keepalive_timer, protocol_of, refused, AppState};
use crate::stats::ConnTally;
use crate::wire::{Transport, Wire};

/// `?lastEventId=`: lets a first connection resume (EventSource sends the
/// `Last-Event-ID` header only on its own reconnects).
#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    #[serde(rename = "lastEventId")]
    pub last_event_id: Option<String>,
}

/// `GET /sse`
pub async fn handler(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ResumeQuery>,
) -> HttpResponse {
    let Some(permit) = state.hub.admit() else {
        return refused(&state);
    };
    let protocol = protocol_of(&req);
    // The header wins: it is what EventSource sends on reconnect, and it is
    // newer than any id the page put in the URL at first connect.
    let header = req
        .headers()
        .get("Last-Event-ID")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let last = LastId::parse(header.as_deref().or(query.last_event_id.as_deref()));
    let stop = Box::pin(state.hub.stream_token().cancelled_owned());
    let (sub, resume) = state.hub.subscribe(last);
    let hello = Hello::new(
        Transport::Sse,
        protocol,
        resume,
        state.hub.latest_id(),
        state.config.rate,
    )
    .behind_edge(edge_protocol_of(&req));
    let body = SseBody {
        hello: Some(event::sse_hello(state.config.retry_ms, &hello)),
        sub,
        keepalive: keepalive_timer(state.config.keepalive),
        active: false,
        stop,
        tally: state
            .hub
            .stats
            .open_stream(Wire::new(Transport::Sse, protocol)),
        _permit: permit,
    };
    event_stream(
        &state,
        req.version(),
        futures_util::stream::unfold(body, SseBody::next_chunk),
    )
}

/// One stream's state, owned by its body.
struct SseBody {
    hello: Option<Bytes>,
    sub: Subscription,
    keepalive: Interval,
    /// Whether an event went out since the last keep-alive tick.
    active: bool,
    /// Made once per stream: polling it is a load, not a registration.
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    tally: ConnTally,
    _permit: Permit,
}

impl SseBody {
    /// The next chunk and the state for the one after.
    ///
    /// A plain `fn` returning an `async move` block, not an `async fn`: an
    /// `async fn` taking `mut self` moves its argument into a local, so its
    /// future holds the whole body twice (584 bytes against 376, on every
    /// stream for as long as it is open).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would hold its moved arguments twice"
    )]
    fn next_chunk(mut self) -> impl Future<Output = Option<(Result<Bytes, Infallible>, Self)>> {
        async move {
            if let Some(hello) = self.hello.take() {
                return Some((Ok(hello), self));
            }
            loop {
                tokio::select! {
                    biased;
                    _ = &mut self.stop => return None,
                    item = self.sub.next() => {
                        let bytes = match item? {
                            Item::Event(ev) => ev.sse.clone(),
                            Item::Gap(gap) => event::sse_gap(gap),
                        };
                        self.active = true;
                        self.tally.sent(bytes.len());
                        return Some((Ok(bytes), self));
                    }
                    _ = self.keepalive.tick() => {
                        self.tally.flush();
                        if !std::mem::take(&mut self.active) {
                            return Some((Ok(Bytes::from_static(SSE_KEEPALIVE)), self));
                        }
                    }
                }
            }
        }
    }
}
