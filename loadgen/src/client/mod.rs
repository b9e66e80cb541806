//! The connection core: everything that makes and reads one connection,
//! and nothing about runs, scenarios or results.
//!
//! - [`Endpoint`]: a full URL, the address to reach, extra headers, TLS
//!   settings ([`TlsSettings`]); [`Target`] gives the feed server's.
//! - [`Dialer`]: the one place sockets are made (through a per-connection
//!   [`SocketHook`]), TLS is set up and ALPN is checked ([`Io`]: plain or TLS).
//! - Readers: [`SseStream`] (the one event-stream reader, with a decode step),
//!   [`WsStream`], [`FeedStream`] (either, as feed [`Msg`]s); [`MessageStream`]
//!   is what they share.
//! - [`Opener`]: the one way a feed stream is opened (SSE over HTTP/1.1 or an
//!   [`H2Pool`], WebSocket); [`MessageDecoder`] turns events into messages.
//! - [`HttpConn`] and [`call_once`] for requests; [`ServerProbe`], the typed
//!   `/stats`.
//! - Any other server: [`AnyTarget`] (its URLs, headers and TLS, resolved)
//!   and [`FieldDecoder`] (its stamp and id by JSON pointer, `json_fields`).
//!
//! Inside, files depend one way: `error`, `tls`, `io`, `event_stream`,
//! `message` at the bottom; then `json_fields`, `field_decoder`, `endpoint`,
//! `stream`, `request`, `chunked`, `ws_frame`, `read_buffer`; `dial`; `h1_response`, `h2`,
//! `http`; `ws_handshake`; `ws`; `sse`, `stats`;
//! `target`; `feed`; `opener`; `any_target` on top.

mod any_target;
mod chunked;
mod dial;
mod endpoint;
mod error;
pub mod event_stream;
mod feed;
mod field_decoder;
mod h1_response;
mod h2;
mod http;
mod io;
mod json_fields;
mod message;
mod opener;
mod read_buffer;
mod request;
mod sse;
mod stats;
mod stream;
mod target;
mod tls;
mod ws;
mod ws_frame;
mod ws_handshake;

pub use any_target::AnyTarget;
pub use chunked::{ChunkedDecoder, FramingError};
pub use dial::{check_alpn, Dialer, SocketHook, SourceAddresses};
pub use endpoint::{Endpoint, EndpointError};
pub use error::{within, ClientError, ErrorKind};
pub use feed::FeedStream;
pub use field_decoder::FieldDecoder;
pub use h2::H2Pool;
pub use http::{call_once, error_body, expect_ok, h1_handshake, HttpConn};
pub use io::Io;
pub use json_fields::{decimal_to_ns, Pointer};
pub use message::{decode, FeedJson, MessageDecoder, Msg, RawEvent, Stamp, StampError};
pub use opener::{Opener, WS_RESUME_QUERY};
pub use request::{request, sse_request, Body};
pub use sse::{open_h1, FeedEvents, NamedEvent, NamedEvents, SseDecode, SseStream};
pub use stats::{ServerProbe, ServerSnapshot};
pub use stream::MessageStream;
pub use target::{locate, sources_toward, Target, TargetError, TlsTarget, CONNECTIONS_PER_SOURCE};
pub use tls::{client_config, TlsConfigError, TlsSettings, Trust, ALPN_H2, ALPN_HTTP1};
pub use ws::{open as open_ws, open_h2 as open_ws_h2, WsIncoming, WsStream, NO_EXTENDED_CONNECT};
