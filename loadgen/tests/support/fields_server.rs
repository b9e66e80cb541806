//! A tiny SSE + WebSocket server that is not the feed server: its events
//! are `{"seq":n,"meta":{"at_ms":"<ms with a fraction>"}}` written on one
//! port, with no `id:` lines, no hello, and every tenth id never sent (so
//! a loss check has holes to find). Paths: `/events` (SSE), `/live`
//! (WebSocket), `/html` (a page, not a stream), anything else 404.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How the server writes its events.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub rate_hz: f64,
    /// Stamps this far in the future (a server whose clock is ahead).
    pub clock_ahead_ms: f64,
    /// Close every stream after this many events (clients then reconnect).
    pub close_after: Option<u64>,
    /// An SSE `retry:` field at the start of each stream, in ms.
    pub retry_ms: Option<u64>,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            rate_hz: 50.0,
            clock_ahead_ms: 0.0,
            close_after: None,
            retry_ms: None,
        }
    }
}

pub struct FieldsServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    /// Every request head received, lower-cased, in arrival order.
    heads: Arc<Mutex<Vec<String>>>,
}

impl FieldsServer {
    pub async fn start(style: Style) -> FieldsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let (tx, _) = broadcast::channel::<Arc<String>>(1024);
        tokio::spawn(tick(tx.clone(), style, stop.clone()));
        let accept_stop = stop.clone();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            loop {
                let sock = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    a = listener.accept() => match a {
                        Ok((s, _)) => s,
                        Err(_) => return,
                    },
                };
                let conn = Conn {
                    style,
                    heads: seen.clone(),
                    stop: accept_stop.clone(),
                };
                tokio::spawn(serve(sock, tx.subscribe(), conn));
            }
        });
        FieldsServer { addr, stop, heads }
    }

    /// The request heads received so far, lower-cased.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for FieldsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `ns` as milliseconds with six decimals, written from integers (an f64
/// would round the last digits).
fn millis_text(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000, ns % 1_000_000)
}

async fn tick(tx: broadcast::Sender<Arc<String>>, style: Style, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / style.rate_hz));
    let ahead_ns = (style.clock_ahead_ms * 1e6) as u64;
    for seq in 1u64.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if seq % 10 == 5 {
            continue;
        }
        let now = server::event::unix_now_ns() + ahead_ns;
        let json = format!(
            r#"{{"seq":{seq},"meta":{{"at_ms":"{}"}},"text":"tick"}}"#,
            millis_text(now)
        );
        let _ = tx.send(Arc::new(json));
    }
}

/// The next event to send, or `None` when the server stops.
async fn next_event(
    rx: &mut broadcast::Receiver<Arc<String>>,
    stop: &CancellationToken,
) -> Option<Arc<String>> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            m = rx.recv() => match m {
                Ok(j) => return Some(j),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            },
        }
    }
}

/// What one connection's task shares with the server.
struct Conn {
    style: Style,
    heads: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

impl Conn {
    /// The next event to send, or `None` once the stream is to end (the
    /// server stops, or `close_after` events were sent).
    async fn next(
        &self,
        rx: &mut broadcast::Receiver<Arc<String>>,
        sent: &mut u64,
    ) -> Option<Arc<String>> {
        if self.style.close_after.is_some_and(|n| *sent >= n) {
            return None;
        }
        *sent += 1;
        next_event(rx, &self.stop).await
    }
}

async fn serve(sock: TcpStream, mut rx: broadcast::Receiver<Arc<String>>, conn: Conn) {
    let mut head = [0u8; 4096];
    let n = sock.peek(&mut head).await.unwrap_or(0);
    let first = String::from_utf8_lossy(&head[..n]).to_string();
    conn.heads.lock().unwrap().push(first.to_lowercase());
    let mut sent = 0;
    if first.starts_with("GET /live") {
        let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
            return;
        };
        while let Some(json) = conn.next(&mut rx, &mut sent).await {
            if ws.send(Message::text(json.as_str())).await.is_err() {
                return;
            }
        }
        let _ = ws.close(None).await;
        return;
    }
    let mut sock = sock;
    let mut buf = vec![0u8; 4096];
    let _ = sock.read(&mut buf).await;
    if first.starts_with("GET /html") {
        let body = "<html>not a stream</html>";
        let _ = sock
            .write_all(
                format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                    .as_bytes(),
            )
            .await;
        return;
    }
    if !first.starts_with("GET /events") {
        let _ = sock
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if let Some(ms) = conn.style.retry_ms {
        if sock
            .write_all(format!("retry: {ms}\n\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    while let Some(json) = conn.next(&mut rx, &mut sent).await {
        if sock
            .write_all(format!("data: {json}\n\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}
