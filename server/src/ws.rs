//! `/ws`: the feed as WebSocket text messages, one per event, through the
//! shared session loop (`ws_session`).

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::AggregatedMessage;
use bytestring::ByteString;

use crate::event::{self, Hello};
use crate::hub::{Item, LastId, Subscription};
use crate::sse::ResumeQuery;
use crate::state::{edge_protocol_of, protocol_of, AppState};
use crate::stats::ConnTally;
use crate::wire::{Transport, Wire};
use crate::ws_session::{self, Conversation, Out};

/// `GET /ws`
pub async fn handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<ResumeQuery>,
) -> actix_web::Result<HttpResponse> {
    let protocol = protocol_of(&req);
    let (response, socket) = match ws_session::upgrade(&req, body, &state).await? {
        Ok(upgraded) => upgraded,
        Err(refusal) => return Ok(refusal),
    };
    let last = LastId::parse(query.last_event_id.as_deref());
    let (sub, resume) = state.hub.subscribe(last);
    let hello = Hello::new(
        Transport::Ws,
        protocol,
        resume,
        state.hub.latest_id(),
        state.config.rate,
    )
    .behind_edge(edge_protocol_of(&req));
    let feed = FeedSocket {
        hello: Some(event::hello_json(&hello).into()),
        hello_sent: false,
        sub,
        tally: state
            .hub
            .stats
            .open_stream(Wire::new(Transport::Ws, protocol)),
    };
    actix_web::rt::spawn(ws_session::serve(socket, feed));
    Ok(response)
}

/// The hello, then every event of the subscription (replay, gap, live).
struct FeedSocket {
    hello: Option<ByteString>,
    hello_sent: bool,
    sub: Subscription,
    tally: ConnTally,
}

impl Conversation for FeedSocket {
    const AWAY: &'static str = "server closed the stream; reconnect with lastEventId";

    async fn next(&mut self) -> Option<Out> {
        if let Some(hello) = self.hello.take() {
            return Some(Out::Text(hello));
        }
        Some(Out::Text(match self.sub.next().await? {
            Item::Event(ev) => ev.ws.clone(),
            Item::Gap(gap) => event::ws_gap(gap).into(),
        }))
    }

    /// Text and binary from the client are ignored on the feed.
    fn on_message(&mut self, _message: AggregatedMessage) -> Option<Out> {
        None
    }

    fn sent(&mut self, frame: &Out) {
        // Events are counted, the hello is not.
        if std::mem::replace(&mut self.hello_sent, true) {
            self.tally.sent(frame.len());
        }
    }

    fn on_heartbeat(&mut self) {
        self.tally.flush();
    }
}
