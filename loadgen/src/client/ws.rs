//! WebSocket with tokio-tungstenite: over HTTP/1.1 (the Upgrade handshake)
//! on a plain or TLS socket (`ws://`, `wss://`; over TLS the endpoint must
//! offer ALPN `http/1.1` alone), or over HTTP/2 (RFC 8441: an extended
//! CONNECT with `:protocol websocket` on a pooled h2 connection, whose
//! stream then carries the frames).
//!
//! tungstenite's default buffers are 128 KiB each way per connection, which
//! costs gigabytes at 10,000 connections: they are shrunk to what a feed needs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::dial::Dialer;
use super::endpoint::Endpoint;
use super::error::ClientError;
use super::h2::H2Pool;
use super::io::Io;
use super::request::{request, Body};
use super::stream::MessageStream;

/// How long a polite close waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Per-connection buffer limits. The read buffer is 2 KiB (a few events
/// of the feed's default size): before every read tungstenite zero-fills
/// the free part of its buffer, up to its capacity, so a larger buffer
/// costs work at every read (measured: 4 KiB → 2 KiB took the whole
/// process from 9,190 to 5,648 instructions per event under callgrind).
/// Nothing is buffered for writing (the client sends only pongs and a
/// close).
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// What the server sent that a reader sees.
#[derive(Debug, Clone, PartialEq)]
pub enum WsIncoming {
    Text(Utf8Bytes),
    /// A ping (tungstenite queues the pong itself; it goes out on the next read).
    Ping,
}

/// An open WebSocket.
pub struct WsStream {
    ws: WebSocketStream<Io>,
    url: Arc<str>,
}

/// Opens the endpoint's WebSocket on connection `index`; `url` is the
/// request URL (the endpoint's, or it with a resume query added).
pub async fn open(
    dialer: &Dialer,
    endpoint: &Endpoint,
    index: usize,
    url: &str,
) -> Result<WsStream, ClientError> {
    let shown = endpoint.shown();
    let mut request = url.into_client_request().map_err(|e| ws_error(shown, e))?;
    for (name, value) in endpoint.headers() {
        request.headers_mut().append(name, value.clone());
    }
    let io = dialer.connect(endpoint, index).await?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(ws_config()))
        .await
        .map_err(|e| ws_error(shown, e))?;
    Ok(WsStream {
        ws,
        url: shown.clone(),
    })
}

/// Why a server cannot carry a WebSocket over HTTP/2.
pub const NO_EXTENDED_CONNECT: &str = "server does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL: no WebSocket over HTTP/2 (RFC 8441) here (actix and nginx 1.22 lack it; HAProxy at the edge has it: --edge haproxy)";

/// Opens a WebSocket over HTTP/2 on pool connection `index` by extended
/// CONNECT (RFC 8441) to `url` (the endpoint's `https://` URL, or it with a
/// resume query), once the server has announced it accepts one.
pub async fn open_h2(pool: &H2Pool, index: usize, url: &str) -> Result<WsStream, ClientError> {
    let endpoint = pool.endpoint();
    let shown = endpoint.shown();
    if !pool.settings(index).await?.enable_connect_protocol {
        return Err(ClientError::Unsupported {
            url: shown.clone(),
            detail: NO_EXTENDED_CONNECT.into(),
        });
    }
    let mut req = request(http::Method::CONNECT, endpoint, true, Body::default());
    *req.uri_mut() = url
        .parse()
        .map_err(|e| ClientError::protocol(shown, format!("bad URL `{url}`: {e}")))?;
    let headers = req.headers_mut();
    headers.remove(http::header::CONTENT_TYPE);
    headers.remove(http::header::ACCEPT);
    headers.insert(
        http::header::SEC_WEBSOCKET_VERSION,
        http::HeaderValue::from_static("13"),
    );
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let res = pool.send(index, req).await?;
    if res.status() != http::StatusCode::OK {
        return Err(ClientError::Status {
            url: shown.clone(),
            status: res.status().as_u16(),
            body: "(extended CONNECT refused)".into(),
        });
    }
    let upgraded = hyper::upgrade::on(res)
        .await
        .map_err(|e| ClientError::http(shown, e))?;
    let io = Io::Tunnel(Box::new(TokioIo::new(upgraded)));
    let ws = WebSocketStream::from_raw_socket(io, Role::Client, Some(ws_config())).await;
    Ok(WsStream {
        ws,
        url: shown.clone(),
    })
}

fn ws_error(url: &Arc<str>, e: WsError) -> ClientError {
    match e {
        WsError::Http(res) => {
            let body = res
                .body()
                .as_deref()
                .map(|b| server::event::snippet(String::from_utf8_lossy(b).trim()))
                .unwrap_or_default();
            ClientError::NoUpgrade {
                url: url.clone(),
                status: res.status().as_u16(),
                body,
            }
        }
        WsError::Io(source) => ClientError::Connect {
            url: url.clone(),
            source,
        },
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            ClientError::Closed { url: url.clone() }
        }
        other => ClientError::protocol(url, other.to_string()),
    }
}

impl WsStream {
    /// The URL, for messages.
    pub fn url(&self) -> &Arc<str> {
        &self.url
    }

    /// The next text or ping; `Ok(None)` when the server closed the socket.
    pub async fn next(&mut self) -> Result<Option<WsIncoming>, ClientError> {
        loop {
            let msg = match self.ws.next().await {
                None => return Ok(None),
                Some(Err(WsError::ConnectionClosed)) => return Ok(None),
                // An open socket that breaks (reset, broken pipe, no
                // closing handshake) was closed under us, not refused.
                Some(Err(
                    WsError::Io(_) | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                )) => {
                    return Err(ClientError::Closed {
                        url: self.url.clone(),
                    })
                }
                Some(Err(e)) => return Err(ws_error(&self.url, e)),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(text) => return Ok(Some(WsIncoming::Text(text))),
                Message::Ping(_) => return Ok(Some(WsIncoming::Ping)),
                Message::Close(_) => return Ok(None),
                Message::Pong(_) | Message::Frame(_) => continue,
                Message::Binary(b) => {
                    return Err(ClientError::protocol(
                        &self.url,
                        format!("unexpected binary message of {} bytes", b.len()),
                    ))
                }
            }
        }
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| ws_error(&self.url, e))
    }

    /// Sends a ping and reads (dropping text) until its pong comes back;
    /// the round trip.
    pub async fn ping_pong(&mut self, wait: Duration) -> Result<Duration, ClientError> {
        let sent = std::time::Instant::now();
        let payload = b"workbench".to_vec();
        self.ws
            .send(Message::Ping(payload.clone().into()))
            .await
            .map_err(|e| ws_error(&self.url, e))?;
        let url = self.url.clone();
        let answer = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Pong(p))) if p.as_ref() == payload.as_slice() => {
                        return Ok(sent.elapsed())
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        return Err(ClientError::Closed { url: url.clone() })
                    }
                    Some(Err(e)) => return Err(ws_error(&url, e)),
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(wait, answer)
            .await
            .map_err(|_| ClientError::Timeout {
                url: self.url.clone(),
                what: "waiting for the pong",
                secs: wait.as_secs_f64(),
            })?
    }

    /// Sends a close frame and waits briefly for the server's.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            let _ = self.ws.send(Message::Close(None)).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

impl MessageStream for WsStream {
    type Message = WsIncoming;

    async fn next_message(&mut self) -> Result<Option<WsIncoming>, ClientError> {
        self.next().await
    }

    async fn close(self) {
        WsStream::close(self).await
    }
}
