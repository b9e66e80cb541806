//! SSE over HTTP/1.1: the server's own frames, on a close-delimited body.
//!
//! The body is neither chunked nor sized: it ends when the connection
//! closes (RFC 9112 §6.3), which every SSE client accepts, and a batch of
//! frames goes out as is, with no chunk header to add per write.

use bytes::Bytes;
use server::event::{sse_gap, sse_hello, EncodedEvent, Gap, Hello, SSE_KEEPALIVE};

use crate::fanout::FeedEvent;
use crate::outbox::Outbox;
use crate::stats::Transport;
use crate::subscriber::{Framing, Incoming};

/// The response head of `/sse`.
pub const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
Access-Control-Allow-Origin: *\r\n\
Connection: close\r\n\r\n";

#[derive(Debug)]
pub struct SseFraming {
    /// The `retry:` announced in the opening.
    pub retry_ms: u64,
}

impl Framing for SseFraming {
    const TRANSPORT: Transport = Transport::Sse;

    fn event(&self, event: &FeedEvent) -> Bytes {
        event.event.sse.clone()
    }

    fn replayed(&self, event: &EncodedEvent) -> Bytes {
        event.sse.clone()
    }

    fn gap(&self, gap: Gap) -> Bytes {
        sse_gap(gap)
    }

    fn hello(&self, hello: &Hello) -> Bytes {
        sse_hello(self.retry_ms, hello)
    }

    fn keepalive(&self) -> Bytes {
        Bytes::from_static(SSE_KEEPALIVE)
    }

    /// A client of an event stream has nothing to say: bytes it sends (a
    /// pipelined request, say) are read and ignored.
    fn incoming(&mut self, _bytes: &[u8], _outbox: &mut Outbox) -> Incoming {
        Incoming::Continue
    }

    fn farewell(&self) -> Option<Bytes> {
        None
    }
}
