//! SSE over HTTP/2, TLS (ALPN h2) or cleartext prior knowledge (h2c): a
//! fixed set of connections, each carrying many streams.
//!
//! One HTTP/2 connection is served by one server worker, so putting every
//! stream on one connection would measure one core: streams are spread over
//! the pool round-robin, and the result reports how many connections there were.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;

use crate::client::ClientError;
use crate::net::{connect_tcp, connect_tls};
use crate::sse_client::{http_error, sse_request, SseStream};

/// TLS settings of an `h2` pool.
#[derive(Clone)]
pub struct H2Tls {
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must carry (`localhost` for the generated one).
    pub server_name: String,
}

/// A pool of HTTP/2 connections to one origin.
pub struct H2Pool {
    slots: Vec<Mutex<Option<SendRequest<Empty<Bytes>>>>>,
    addr: SocketAddr,
    tls: Option<H2Tls>,
    /// `https://localhost:8443` or `http://127.0.0.1:8080`.
    origin: String,
    path: String,
    url: Arc<str>,
    connections_made: AtomicU64,
}

impl H2Pool {
    /// A pool of `size` connections (made lazily, remade when they die).
    pub fn new(addr: SocketAddr, tls: Option<H2Tls>, path: &str, size: usize) -> H2Pool {
        let origin = match &tls {
            Some(t) => format!("https://{}:{}", t.server_name, addr.port()),
            None => format!("http://{addr}"),
        };
        let url: Arc<str> = format!("{origin}{path}").into();
        H2Pool {
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            addr,
            tls,
            origin,
            path: path.to_string(),
            url,
            connections_made: AtomicU64::new(0),
        }
    }

    pub fn size(&self) -> usize {
        self.slots.len()
    }

    pub fn url(&self) -> &Arc<str> {
        &self.url
    }

    /// HTTP/2 connections opened so far (remade ones included).
    pub fn connections_made(&self) -> u64 {
        self.connections_made.load(Ordering::Relaxed)
    }

    /// Opens stream number `index` (it goes to connection `index % size`).
    pub async fn open(&self, index: usize, last_id: Option<u64>) -> Result<SseStream, ClientError> {
        let mut send = self.sender(index % self.slots.len()).await?;
        send.ready().await.map_err(|e| http_error(&self.url, e))?;
        let uri = format!("{}{}", self.origin, self.path);
        let res = send
            .send_request(sse_request(&uri, None, last_id))
            .await
            .map_err(|e| http_error(&self.url, e))?;
        SseStream::from_response(res, None, self.url.clone()).await
    }

    /// The slot's live connection, connecting first if it has none.
    async fn sender(&self, slot: usize) -> Result<SendRequest<Empty<Bytes>>, ClientError> {
        let mut guard = self.slots[slot].lock().await;
        if let Some(s) = guard.as_ref() {
            if !s.is_closed() {
                return Ok(s.clone());
            }
        }
        let send = self.connect().await?;
        *guard = Some(send.clone());
        Ok(send)
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, ClientError> {
        let tcp = connect_tcp(self.addr, None, &self.url).await?;
        let builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        let send = match &self.tls {
            Some(t) => {
                let (tls, alpn) =
                    connect_tls(tcp, t.config.clone(), &t.server_name, &self.url).await?;
                if alpn.as_deref() != Some(b"h2") {
                    return Err(ClientError::protocol(
                        &self.url,
                        format!(
                            "the server did not negotiate h2 over TLS (ALPN: {})",
                            alpn.map(|a| String::from_utf8_lossy(&a).into_owned())
                                .unwrap_or_else(|| "none".into())
                        ),
                    ));
                }
                let (send, conn) = builder
                    .handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| http_error(&self.url, e))?;
                tokio::spawn(drive(conn));
                send
            }
            None => {
                let (send, conn) = builder
                    .handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| http_error(&self.url, e))?;
                tokio::spawn(drive(conn));
                send
            }
        };
        self.connections_made.fetch_add(1, Ordering::Relaxed);
        Ok(send)
    }
}

/// Runs one HTTP/2 connection until it closes; its streams see the error.
async fn drive<F: std::future::Future<Output = hyper::Result<()>>>(conn: F) {
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "HTTP/2 connection ended");
    }
}
