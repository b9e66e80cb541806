//! Every request the clients send, built in one place: the endpoint's path
//! (origin-form with `Host` on HTTP/1.1, absolute on HTTP/2), its extra
//! headers, and the body type all connections share.

use bytes::Bytes;
use http_body_util::Full;

use super::endpoint::Endpoint;

/// The request body type of every client: empty for a GET, JSON for a POST.
pub type Body = Full<Bytes>;

/// A request to `endpoint` with its extra headers: origin-form with a
/// `Host` header for HTTP/1.1, absolute for HTTP/2 (which carries the
/// authority itself).
pub fn request(
    method: http::Method,
    endpoint: &Endpoint,
    absolute: bool,
    body: Body,
) -> http::Request<Body> {
    build(method, endpoint, absolute, body, true)
}

/// A WebSocket's opening request (an Upgrade GET, or an extended CONNECT
/// on HTTP/2): the endpoint's path and its extra headers, without the
/// `Content-Type` and `Accept` defaults of the other requests (a user's
/// own `--header` of either name stays).
pub fn websocket_request(
    method: http::Method,
    endpoint: &Endpoint,
    absolute: bool,
) -> http::Request<Body> {
    build(method, endpoint, absolute, Body::default(), false)
}

fn build(
    method: http::Method,
    endpoint: &Endpoint,
    absolute: bool,
    body: Body,
    defaults: bool,
) -> http::Request<Body> {
    let mut req = http::Request::builder().method(method);
    req = if absolute {
        req.uri(endpoint.url())
    } else {
        req.uri(endpoint.path_and_query())
            .header(http::header::HOST, endpoint.authority())
    };
    if defaults {
        req = req
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "text/event-stream, application/json");
    }
    for (name, value) in endpoint.headers() {
        req = req.header(name, value);
    }
    req.body(body)
        .expect("a request from a parsed URL and typed headers always builds")
}

/// A `GET` for an event stream, resuming after `last_id` (`Last-Event-ID`).
pub fn sse_request(
    endpoint: &Endpoint,
    absolute: bool,
    last_id: Option<u64>,
) -> http::Request<Body> {
    let mut req = request(http::Method::GET, endpoint, absolute, Body::default());
    let headers = req.headers_mut();
    headers.remove(http::header::CONTENT_TYPE);
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    if let Some(id) = last_id {
        headers.insert("last-event-id", http::HeaderValue::from(id));
    }
    req
}
