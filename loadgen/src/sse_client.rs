//! SSE over HTTP/1.1 (one TCP connection per stream), and the stream reader
//! shared with HTTP/2 (see `h2_pool`).

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::client::{decode, ClientError, Msg};
use crate::event_stream::{EventStreamParser, Item};
use crate::net::connect_tcp;
use crate::recorder::unix_now_ns;

/// The request for `/sse`, resuming after `last_id` when given. HTTP/1.1
/// needs a `Host` header; HTTP/2 takes the authority from an absolute URI.
pub fn sse_request(
    uri: &str,
    host: Option<&str>,
    last_id: Option<u64>,
) -> http::Request<Empty<Bytes>> {
    let mut req = http::Request::get(uri);
    if let Some(host) = host {
        req = req.header(http::header::HOST, host);
    }
    let mut req = req
        .header(http::header::ACCEPT, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-cache");
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    req.body(Empty::new())
        .expect("a request from valid parts always builds")
}

type ConnFuture = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An open event stream.
pub struct SseStream {
    body: Incoming,
    /// HTTP/1.1 only: the connection is driven here, in the reading task,
    /// so each chunk costs one wake-up instead of two.
    conn: Option<ConnFuture>,
    parser: EventStreamParser,
    pending: VecDeque<Msg>,
    url: Arc<str>,
}

impl SseStream {
    /// Checks the response and wraps its body.
    pub async fn from_response(
        res: http::Response<Incoming>,
        conn: Option<ConnFuture>,
        url: Arc<str>,
    ) -> Result<SseStream, ClientError> {
        let status = res.status();
        if status != http::StatusCode::OK {
            let body = read_some(res.into_body()).await;
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                body,
            });
        }
        let ctype = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !ctype.starts_with("text/event-stream") {
            return Err(ClientError::ContentType { url, got: ctype });
        }
        Ok(SseStream {
            body: res.into_body(),
            conn,
            parser: EventStreamParser::new(),
            pending: VecDeque::with_capacity(8),
            url,
        })
    }

    /// The next message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Msg>, ClientError> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Ok(Some(msg));
            }
            let frame = match &mut self.conn {
                Some(conn) => tokio::select! {
                    biased;
                    frame = self.body.frame() => frame,
                    done = conn => {
                        self.conn = None;
                        if let Err(e) = done {
                            return Err(http_error(&self.url, e));
                        }
                        continue;
                    }
                },
                None => self.body.frame().await,
            };
            let data = match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(http_error(&self.url, e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue, // trailers: nothing to measure
                },
            };
            self.parse(&data)?;
        }
    }

    fn parse(&mut self, chunk: &[u8]) -> Result<(), ClientError> {
        let now = unix_now_ns();
        let mut bad: Option<String> = None;
        let pending = &mut self.pending;
        let fed = self.parser.feed(chunk, |item| match item {
            Item::Event { data, .. } => match decode(data, now) {
                Ok(msg) => pending.push_back(msg),
                Err(e) => {
                    bad.get_or_insert(e);
                }
            },
            Item::Comment(_) => pending.push_back(Msg::KeepAlive),
            Item::Retry(ms) => pending.push_back(Msg::Retry(ms)),
        });
        if let Err(e) = fed {
            return Err(ClientError::protocol(&self.url, e.to_string()));
        }
        match bad {
            Some(detail) => Err(ClientError::protocol(&self.url, detail)),
            None => Ok(()),
        }
    }
}

pub fn http_error(url: &Arc<str>, e: hyper::Error) -> ClientError {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        ClientError::Closed { url: url.clone() }
    } else {
        ClientError::Http {
            url: url.clone(),
            detail: e.to_string(),
        }
    }
}

/// Up to 512 bytes of an error response's body, for the message.
async fn read_some(mut body: Incoming) -> String {
    let mut out = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                out.extend_from_slice(&d);
                if out.len() > 512 {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read).await;
    crate::client::snippet(String::from_utf8_lossy(&out).trim())
}

/// Opens `/sse` over HTTP/1.1 on its own TCP connection.
pub async fn open_h1(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
    last_id: Option<u64>,
    url: &Arc<str>,
) -> Result<SseStream, ClientError> {
    let tcp = connect_tcp(addr, source, url).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| http_error(url, e))?;
    let mut conn: ConnFuture = Box::pin(conn);
    let req = sse_request(path, Some(&addr.to_string()), last_id);
    let pending = send.send_request(req);
    tokio::pin!(pending);
    // Both must be polled: the connection does the I/O for the request. A
    // peer that answers and closes at once finishes the connection first,
    // with the response already parsed: then take the response, and do not
    // poll the finished connection again.
    let (res, conn) = tokio::select! {
        biased;
        res = &mut pending => (res, Some(conn)),
        done = &mut conn => {
            if let Err(e) = done {
                return Err(http_error(url, e));
            }
            (pending.await, None)
        }
    };
    let res = res.map_err(|e| http_error(url, e))?;
    SseStream::from_response(res, conn, url.clone()).await
}
