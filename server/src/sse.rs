//! `/sse`: the feed as a `text/event-stream`.
//!
//! The body is a stream of pre-encoded `Bytes`: each tick is the hub's shared
//! frame, so a subscriber costs a reference-count increment per event, not a
//! format. actix polls the body only while its write buffer has room, so a
//! slow reader is never buffered here: it lags in the hub and is refilled from
//! the replay ring, or sent a gap event when it fell further behind.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;
use serde::Deserialize;

use crate::event::{self, Hello, SSE_KEEPALIVE};
use crate::hub::{Delivery, Item, LastId, Permit, Subscription};
use crate::sse_response::event_stream;
use crate::state::{edge_protocol_of, protocol_of, refused, AppState};
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
    let (sub, resume) = state.hub.subscribe(last);
    let sub = sub.until(state.hub.stream_token());
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
        tally: state
            .hub
            .stats
            .open_stream(Wire::new(Transport::Sse, protocol)),
        _permit: permit,
    };
    event_stream(&state, req.version(), body)
}

/// One stream, as its response body: the hello, then whatever the
/// subscription delivers, polled directly.
///
/// A `Stream` by hand, not `unfold` over an `async` block: the block's
/// future (the subscription's wait, a keep-alive `Interval` and a stop
/// future in a `select!`) was held beside the state in every open stream,
/// 392 bytes plus 184 in the timer's and the stop future's boxes. Stop and
/// keep-alive now come from the hub through the subscription, so the body
/// is its state alone.
struct SseBody {
    hello: Option<Bytes>,
    sub: Subscription,
    tally: ConnTally,
    _permit: Permit,
}

impl Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(hello) = this.hello.take() {
            return Poll::Ready(Some(Ok(hello)));
        }
        loop {
            let bytes = match ready!(this.sub.poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Delivery::Item(Item::Event(ev))) => ev.sse.clone(),
                Some(Delivery::Item(Item::Gap(gap))) => event::sse_gap(gap),
                Some(Delivery::Tick { idle }) => {
                    this.tally.flush();
                    if idle {
                        return Poll::Ready(Some(Ok(Bytes::from_static(SSE_KEEPALIVE))));
                    }
                    continue;
                }
            };
            this.tally.sent(bytes.len());
            return Poll::Ready(Some(Ok(bytes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a held stream costs beyond actix's own state: the body actix
    /// boxes. Guarded so a field added to the hot state is a choice.
    #[test]
    fn the_body_stays_small() {
        let size = std::mem::size_of::<SseBody>();
        assert!(size <= 256, "SseBody is {size} bytes");
    }
}
