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

use std::convert::Infallible;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::Stream;

use crate::state::{with_cors, AppState};

/// A `200 text/event-stream` response streaming `body`: `no-cache`, CORS,
/// and `X-Accel-Buffering: no` so nginx forwards each event at once.
pub fn event_stream<S>(state: &AppState, body: S) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, Infallible>> + 'static,
{
    with_cors(state, StatusCode::OK)
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}
