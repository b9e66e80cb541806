//! [`FeedStream`]: one open feed stream over whichever wire, yielding
//! decoded messages.

use std::sync::Arc;

use super::error::ClientError;
use super::message::{MessageDecoder, Msg, RawEvent};
use super::sse::{FeedEvents, SseStream};
use super::stream::MessageStream;
use super::ws::{WsIncoming, WsStream};

/// One open feed stream.
// Not boxed: a connection holds its stream for its whole life and reads it
// at every event, and a box would be one more pointer, and cache line, to
// follow per event. The WebSocket variant pays the SSE one's size (432
// bytes against 184): a quarter of a KiB more per WebSocket connection,
// where the load generator holds 5–6 KiB per connection in all (RSS in
// one-wire runs of 2,000 connections).
#[allow(clippy::large_enum_variant)]
pub enum FeedStream {
    Sse(SseStream<FeedEvents>),
    Ws {
        ws: WsStream,
        decoder: Arc<dyn MessageDecoder>,
    },
}

impl FeedStream {
    /// The next message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Msg>, ClientError> {
        match self {
            FeedStream::Sse(s) => s.next().await,
            FeedStream::Ws { ws, decoder } => loop {
                // The text borrows the connection's buffer: decoded in place.
                let (text, received) = match ws.next_at().await? {
                    None => return Ok(None),
                    Some((WsIncoming::Ping, _)) => return Ok(Some(Msg::KeepAlive)),
                    Some((WsIncoming::Text(text), at)) => (text, at),
                };
                match decoder.decode(RawEvent::text(text), received) {
                    Ok(Some(msg)) => return Ok(Some(msg)),
                    Ok(None) => continue,
                    Err(detail) => return Err(ClientError::protocol(ws.url(), detail)),
                }
            },
        }
    }

    /// Closes politely where the wire has a way (WS close frame).
    pub async fn close(self) {
        if let FeedStream::Ws { ws, .. } = self {
            ws.close().await;
        }
    }
}

impl MessageStream for FeedStream {
    type Message = Msg;

    async fn next_message(&mut self) -> Result<Option<Msg>, ClientError> {
        self.next().await
    }

    async fn close(self) {
        FeedStream::close(self).await
    }
}
