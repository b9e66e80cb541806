//! Plain requests: with a body (`POST /chat`, `POST /echo`) on a connection
//! of their own or on an HTTP/2 pool connection shared with a stream, and
//! one-shot calls on a fresh HTTP/1.1 connection (`/stats`, `/admin/drop`,
//! the browser model's GET).
//!
//! On HTTP/2 a client's stream and its POSTs share one connection, as a
//! browser's single connection per origin does; on HTTP/1.1 each request
//! needs a connection of its own while a stream holds another.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::{body_snippet, within, ClientError, ERROR_BODY_MAX, ERROR_BODY_WAIT};
use super::h2::H2Pool;
use super::request::{request, Body};

type H1 = hyper::client::conn::http1::SendRequest<Body>;

/// One HTTP connection that carries requests with bodies.
#[derive(Clone)]
pub enum HttpConn {
    /// A connection of its own: one request at a time.
    H1 {
        send: Arc<tokio::sync::Mutex<H1>>,
        endpoint: Endpoint,
    },
    /// Slot `slot` of an HTTP/2 pool, shared with other requests and streams.
    H2 { pool: Arc<H2Pool>, slot: usize },
}

impl HttpConn {
    /// A new HTTP/1.1 connection to the endpoint's origin.
    pub async fn h1(dialer: &Dialer, endpoint: &Endpoint) -> Result<HttpConn, ClientError> {
        let send = h1_handshake(dialer, endpoint, 0).await?;
        Ok(HttpConn::H1 {
            send: Arc::new(tokio::sync::Mutex::new(send)),
            endpoint: endpoint.clone(),
        })
    }

    /// Sends `method path` (with a JSON body when given); the response head.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        json: Option<String>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let body = Full::new(json.map(Bytes::from).unwrap_or_default());
        match self {
            HttpConn::H1 { send, endpoint } => {
                let at = endpoint.at(path);
                let req = request(method, &at, false, body);
                let url = at.shown();
                let mut send = send.lock().await;
                send.ready().await.map_err(|e| ClientError::http(url, e))?;
                send.send_request(req)
                    .await
                    .map_err(|e| ClientError::http(url, e))
            }
            HttpConn::H2 { pool, slot } => {
                let at = pool.endpoint().at(path);
                pool.send(*slot, request(method, &at, true, body)).await
            }
        }
    }
}

/// An HTTP/1.1 handshake on connection `index` to the endpoint; the
/// connection is driven by a task of its own.
pub async fn h1_handshake(
    dialer: &Dialer,
    endpoint: &Endpoint,
    index: usize,
) -> Result<H1, ClientError> {
    let io = dialer.connect(endpoint, index).await?;
    let url = endpoint.shown();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::http(url, e))?;
    tokio::spawn(conn);
    Ok(send)
}

/// The body of a 2xx response, or the status as an error naming the URL
/// (with a little of the body, for the message).
pub async fn expect_ok(
    res: http::Response<Incoming>,
    url: &Arc<str>,
) -> Result<Incoming, ClientError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res.into_body());
    }
    Err(ClientError::Status {
        url: url.clone(),
        status: status.as_u16(),
        body: error_body(res.into_body()).await,
    })
}

/// Up to 512 bytes of an error response's body, trimmed, for a message.
pub async fn error_body(mut body: Incoming) -> String {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                out.extend_from_slice(&d);
                if out.len() > ERROR_BODY_MAX {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(ERROR_BODY_WAIT, read).await;
    body_snippet(&out)
}

/// `method` on `endpoint` over a fresh HTTP/1.1 connection, the whole body
/// read within `limit` (past it, a timeout saying `what` was awaited): the
/// status and the body.
pub async fn call_once(
    dialer: &Dialer,
    endpoint: &Endpoint,
    method: http::Method,
    limit: Duration,
    what: &'static str,
) -> Result<(u16, Bytes), ClientError> {
    let url = endpoint.shown();
    let exchange = async {
        let mut send = h1_handshake(dialer, endpoint, 0).await?;
        let res = send
            .send_request(request(method, endpoint, false, Body::default()))
            .await
            .map_err(|e| ClientError::http(url, e))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::http(url, e))?
            .to_bytes();
        Ok((status, body))
    };
    within(limit, url, what, exchange).await
}
