//! Accepting connections and routing their one request.
//!
//! Routes: `GET /sse`, `GET /ws` (upgrade), `GET /stats`; anything else is
//! answered with a clear error status and the connection closed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use server::hub::LastId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tungstenite::http;

use crate::request::{read_head, respond_error, respond_json};
use crate::sse::{SseFraming, RESPONSE_HEAD};
use crate::state::State;
use crate::subscriber::serve;
use crate::ws::{handshake, WsFraming};

/// After a failed `accept` (out of file descriptors, say), wait this long
/// before the next: the failure persists for a while and retrying at once
/// would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until the server stops; each connection gets its own task,
/// which holds a clone of `done` until it ends (so shutdown can wait).
pub async fn accept_loop(listener: TcpListener, state: Arc<State>, done: mpsc::Sender<()>) {
    loop {
        let accepted = tokio::select! {
            _ = state.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let socket = match accepted {
            Ok((socket, _peer)) => socket,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Each write is a whole batch: sending it at once is what we want.
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        let state = state.clone();
        let done = done.clone();
        tokio::spawn(async move {
            handle(socket, &state).await;
            drop(done);
        });
    }
}

async fn handle(mut socket: TcpStream, state: &State) {
    let head = tokio::select! {
        _ = state.stop.cancelled() => return,
        head = read_head(&socket, state.config.request_timeout) => head,
    };
    let (request, early) = match head {
        Ok(head) => head,
        Err(e) => {
            if let Some(status) = e.status() {
                state.stats.bad_request();
                let _ = respond_error(&mut socket, status, &e.to_string(), "").await;
            }
            return;
        }
    };
    if request.method() != http::Method::GET {
        state.stats.bad_request();
        let message = format!(
            "{} is not supported: the routes are GET /sse, /ws and /stats",
            request.method()
        );
        let _ = respond_error(
            &mut socket,
            http::StatusCode::METHOD_NOT_ALLOWED,
            &message,
            "Allow: GET\r\n",
        )
        .await;
        return;
    }
    let last = last_event_id(&request);
    match Route::of(&request) {
        Route::Sse => {
            // Nothing of the request is needed once streaming: free it.
            drop(request);
            let framing = SseFraming {
                retry_ms: state.config.retry_ms,
            };
            serve(
                socket,
                framing,
                Bytes::from_static(RESPONSE_HEAD),
                last,
                state,
            )
            .await;
        }
        Route::Ws => match handshake(&request) {
            Ok(head) => {
                drop(request);
                serve(socket, WsFraming::new(early), head, last, state).await;
            }
            Err(message) => {
                state.stats.bad_request();
                let _ =
                    respond_error(&mut socket, http::StatusCode::BAD_REQUEST, &message, "").await;
            }
        },
        Route::Stats => {
            let json =
                serde_json::to_string(&state.snapshot()).expect("the stats always serialize");
            let _ = respond_json(&mut socket, &json).await;
        }
        Route::Unknown => {
            state.stats.bad_request();
            let message = format!("no route {}: try /sse, /ws or /stats", request.uri().path());
            let _ = respond_error(&mut socket, http::StatusCode::NOT_FOUND, &message, "").await;
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Sse,
    Ws,
    Stats,
    Unknown,
}

impl Route {
    fn of(request: &http::Request<()>) -> Route {
        match request.uri().path() {
            "/sse" => Route::Sse,
            "/ws" => Route::Ws,
            "/stats" => Route::Stats,
            _ => Route::Unknown,
        }
    }
}

/// The resume id: the `Last-Event-ID` header (what EventSource sends), else
/// the `lastEventId` query parameter (what a WebSocket client can send).
fn last_event_id(request: &http::Request<()>) -> LastId {
    let header = request
        .headers()
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let query = || {
        url::form_urlencoded::parse(request.uri().query()?.as_bytes())
            .find(|(name, _)| name == "lastEventId")
            .map(|(_, value)| value.into_owned())
    };
    LastId::parse(header.or_else(query).as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_head;

    fn last(head: &str) -> LastId {
        let raw = format!("{head}\r\nHost: x\r\n\r\n");
        last_event_id(&parse_head(raw.as_bytes()).unwrap().unwrap().0)
    }

    #[test]
    fn resume_ids_from_header_or_query() {
        assert_eq!(last("GET /sse HTTP/1.1"), LastId::None);
        assert_eq!(last("GET /ws?lastEventId=42 HTTP/1.1"), LastId::Id(42));
        assert_eq!(
            last("GET /ws?x=1&lastEventId=%2042 HTTP/1.1"),
            LastId::Id(42)
        );
        assert_eq!(last("GET /ws?lastEventId=abc HTTP/1.1"), LastId::Malformed);
        let raw = "GET /sse?lastEventId=1 HTTP/1.1\r\nLast-Event-ID: 7\r\n\r\n";
        let req = parse_head(raw.as_bytes()).unwrap().unwrap().0;
        assert_eq!(last_event_id(&req), LastId::Id(7));
    }
}
