//! WebSocket over HTTP/1.1 with tokio-tungstenite.
//!
//! tungstenite's default buffers are 128 KiB each way per connection, which
//! costs gigabytes at 10,000 connections: they are shrunk to what a feed needs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::client::{decode, ClientError, Msg};
use crate::net::connect_tcp;
use crate::recorder::unix_now_ns;

/// Per-connection buffer limits for the feed client.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// An open WebSocket feed.
pub struct WsStream {
    ws: WebSocketStream<TcpStream>,
    url: Arc<str>,
}

/// Opens `/ws` (with `?lastEventId=` when resuming).
pub async fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path: &str,
    last_id: Option<u64>,
    url: &Arc<str>,
) -> Result<WsStream, ClientError> {
    let tcp = connect_tcp(addr, source, url).await?;
    let mut request_url = format!("ws://{addr}{path}");
    if let Some(id) = last_id {
        request_url.push_str(if path.contains('?') { "&" } else { "?" });
        request_url.push_str(&format!("lastEventId={id}"));
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request_url, tcp, Some(ws_config()))
        .await
        .map_err(|e| ws_error(url, e))?;
    Ok(WsStream {
        ws,
        url: url.clone(),
    })
}

fn ws_error(url: &Arc<str>, e: WsError) -> ClientError {
    match e {
        WsError::Http(res) => {
            let body = res
                .body()
                .as_deref()
                .map(|b| crate::client::snippet(String::from_utf8_lossy(b).trim()))
                .unwrap_or_default();
            ClientError::Status {
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
    /// The next message; `Ok(None)` when the server closed the socket.
    pub async fn next(&mut self) -> Result<Option<Msg>, ClientError> {
        loop {
            let msg = match self.ws.next().await {
                None => return Ok(None),
                Some(Err(WsError::ConnectionClosed)) => return Ok(None),
                Some(Err(e)) => return Err(ws_error(&self.url, e)),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(text) => {
                    return decode(text.as_str(), unix_now_ns())
                        .map(Some)
                        .map_err(|d| ClientError::protocol(&self.url, d));
                }
                // tungstenite queues the pong itself; it goes out on the next read.
                Message::Ping(_) => return Ok(Some(Msg::KeepAlive)),
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

    /// Sends a close frame and waits briefly for the server's.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = self.ws.send(Message::Close(None)).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
