//! The one way an event stream is answered: `/sse`, `POST /chat` and
//! `/sse/echo` all go through [`event_stream`], so they share their headers.
//!
//! Event streams are never compressed (a compressor buffers them, and the
//! client then sees events late and in bursts). That is kept by construction,
//! not by a header: this server's actix-web is built without its compression
//! features and no `Compress` middleware wraps the app, so no
//! `Content-Encoding` is sent at all. (`Content-Encoding: identity` is the
//! other way to keep a `Compress` middleware off a response, but the HTTP
//! content-coding registry reserves `identity` for `Accept-Encoding`.)
//! Should compression ever be added, event streams must be exempted.
//!
//! The headers are made once per server ([`StreamHeaders`](crate::state::StreamHeaders)) and cloned per
//! stream, because on HTTP/2 actix-http keeps a stream's response head (and
//! so its header map) until the stream ends: a head built the usual way
//! carries a map sized for 12 headers (16 slots of 200 bytes: 3.3 KB per
//! stream, half of what an h2 stream cost) and a fresh allocation per custom
//! header name and value. The clone holds 8 slots (the five headers) and
//! shares every name and value.

use std::convert::Infallible;

use actix_web::http::Version;
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::Stream;

use crate::state::AppState;

/// A `200 text/event-stream` response streaming `body`, with the server's
/// [`StreamHeaders`](crate::state::StreamHeaders), for a request of `version`.
///
/// HTTP/2 keeps the head for the stream's life, so it gets the small shared
/// copy. HTTP/1.1 hands the head back to actix-http's pool of heads (up to
/// 128 per worker) as soon as it is written, so there the headers go into
/// the map the pooled head already has: swapping in a copy would leave the
/// pool holding maps allocated in the middle of a load, each pinning a page
/// the allocator could otherwise give back once the load is gone (measured:
/// 5,000 sse-h1 connections left 11.7 MiB after the last close with the
/// copy, 9.6 MiB without it, against 8.8 MiB idle).
pub fn event_stream<S>(state: &AppState, version: Version, body: S) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, Infallible>> + 'static,
{
    let mut res = HttpResponse::Ok().streaming(body);
    if version == Version::HTTP_2 {
        *res.headers_mut() = state.stream_headers.to_map();
    } else {
        state.stream_headers.fill(res.headers_mut());
    }
    res
}
