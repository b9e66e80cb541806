//! Requests with a body (POST /chat, POST /echo) over any HTTP wire, an
//! event-stream reader for responses that are not the feed, and the admin
//! and stats calls the scenarios make.
//!
//! The feed clients (`sse_client`, `h2_pool`) send bodiless GETs only; these
//! connections carry JSON bodies, and on HTTP/2 one connection carries a
//! client's stream and its POSTs, as a browser's single connection per
//! origin does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::client::ClientError;
use crate::event_stream::{EventStreamParser, Item};
use crate::net::{connect_tcp, connect_tls};
use crate::sse_client::http_error;
use crate::target::Target;
use crate::wire::Wire;

type H1 = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// One HTTP connection that can send bodies: HTTP/1.1 (one request at a
/// time) or HTTP/2 (cheap to clone: clones share the connection).
#[derive(Clone)]
pub enum Conn {
    H1 {
        send: Arc<tokio::sync::Mutex<H1>>,
        host: String,
    },
    H2 {
        send: H2,
        origin: String,
    },
}

/// Opens a connection for `wire` (`ws-h1` and `sse-h1` give HTTP/1.1).
pub async fn connect(wire: Wire, target: &Target, url: &Arc<str>) -> Result<Conn, ClientError> {
    match wire {
        Wire::SseH1 | Wire::WsH1 | Wire::WsH2 | Wire::WsH2c => {
            let tcp = connect_tcp(target.http_addr, None, url).await?;
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| http_error(url, e))?;
            tokio::spawn(conn);
            Ok(Conn::H1 {
                send: Arc::new(tokio::sync::Mutex::new(send)),
                host: target.http_addr.to_string(),
            })
        }
        Wire::SseH2c => {
            let tcp = connect_tcp(target.http_addr, None, url).await?;
            let (send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .map_err(|e| http_error(url, e))?;
            tokio::spawn(conn);
            Ok(Conn::H2 {
                send,
                origin: format!("http://{}", target.http_addr),
            })
        }
        Wire::SseH2 => {
            let tls = target.tls.as_ref().ok_or_else(|| {
                ClientError::protocol(url, "sse-h2 needs the server's TLS listener")
            })?;
            let tcp = connect_tcp(tls.addr, None, url).await?;
            let (stream, alpn) =
                connect_tls(tcp, tls.h2.config.clone(), &tls.h2.server_name, url).await?;
            if alpn.as_deref() != Some(b"h2") {
                return Err(ClientError::protocol(
                    url,
                    "the server did not negotiate h2",
                ));
            }
            let (send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| http_error(url, e))?;
            tokio::spawn(conn);
            Ok(Conn::H2 {
                send,
                origin: format!("https://{}:{}", tls.h2.server_name, tls.addr.port()),
            })
        }
    }
}

impl Conn {
    /// Sends `method path` with an optional JSON body; the response head.
    pub async fn send(
        &self,
        method: http::Method,
        path: &str,
        json: Option<String>,
        url: &Arc<str>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let body = Full::new(json.map(Bytes::from).unwrap_or_default());
        let req = http::Request::builder()
            .method(method)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "text/event-stream, application/json");
        match self {
            Conn::H1 { send, host } => {
                let req = req
                    .uri(path)
                    .header(http::header::HOST, host.as_str())
                    .body(body)
                    .expect("a request from valid parts");
                let mut send = send.lock().await;
                send.ready().await.map_err(|e| http_error(url, e))?;
                send.send_request(req).await.map_err(|e| http_error(url, e))
            }
            Conn::H2 { send, origin } => {
                let req = req
                    .uri(format!("{origin}{path}"))
                    .body(body)
                    .expect("a request from valid parts");
                let mut send = send.clone();
                send.ready().await.map_err(|e| http_error(url, e))?;
                send.send_request(req).await.map_err(|e| http_error(url, e))
            }
        }
    }
}

/// Checks for `200` (reading a little of any other body for the message).
pub async fn expect_ok(
    res: http::Response<Incoming>,
    url: &Arc<str>,
) -> Result<Incoming, ClientError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res.into_body());
    }
    let body = tokio::time::timeout(std::time::Duration::from_secs(2), res.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    Err(ClientError::Status {
        url: url.clone(),
        status: status.as_u16(),
        body: crate::client::snippet(&body),
    })
}

/// One event of a stream that is not the feed: its type and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// Reads `text/event-stream` bodies with the WHATWG parser.
pub struct EventReader {
    body: Incoming,
    parser: EventStreamParser,
    pending: VecDeque<Event>,
    url: Arc<str>,
}

impl EventReader {
    pub fn new(body: Incoming, url: Arc<str>) -> Self {
        EventReader {
            body,
            parser: EventStreamParser::new(),
            pending: VecDeque::new(),
            url,
        }
    }

    /// The next event (comments skipped); `Ok(None)` when the body ends.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            let data = match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(http_error(&self.url, e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
            };
            let pending = &mut self.pending;
            self.parser
                .feed(&data, |item| {
                    if let Item::Event {
                        event_type, data, ..
                    } = item
                    {
                        pending.push_back(Event {
                            event: event_type.to_string(),
                            data: data.to_string(),
                        });
                    }
                })
                .map_err(|e| ClientError::protocol(&self.url, e.to_string()))?;
        }
    }
}

/// `method path` on the plain listener over a fresh HTTP/1.1 connection:
/// the status and the JSON body (`null` when it is not JSON).
pub async fn call(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
) -> Result<(u16, serde_json::Value), ClientError> {
    let url: Arc<str> = format!("http://{addr}{path}").into();
    let target = Target::embedded(addr, None, None)
        .map_err(|e| ClientError::protocol(&url, e.to_string()))?;
    let conn = connect(Wire::SseH1, &target, &url).await?;
    let res = conn.send(method, path, None, &url).await?;
    let status = res.status().as_u16();
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), res.into_body().collect())
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            what: "reading an admin answer",
            secs: 5.0,
        })?
        .map_err(|e| http_error(&url, e))?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
}
