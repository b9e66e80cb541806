//! One origin as a browser reaches it: HTTP/1.1 (a new connection per pool
//! slot) or HTTP/2 (one TLS connection, made once, carrying every stream and
//! request of the origin), plus the SETTINGS probe that reads the server's
//! announced SETTINGS_MAX_CONCURRENT_STREAMS.
//!
//! Host names are pool keys, not addresses: every name resolves to the
//! server's listener, as several DNS names of one server would (`localhost`
//! and `127.0.0.1` are two pools in Chromium; the server listens on
//! 127.0.0.1 only, so `127.0.0.2` would not connect here).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::ClientError;
use crate::h2_pool::H2Tls;
use crate::net::{connect_tcp, connect_tls};
use crate::sse_client::{http_error, open_h1, sse_request, SseStream};

/// How an origin is reached.
enum Reach {
    H1,
    H2 {
        tls: H2Tls,
        conn: tokio::sync::Mutex<Option<SendRequest<Empty<Bytes>>>>,
    },
}

/// One (scheme, host, port) of one browser profile.
pub struct OriginClient {
    reach: Reach,
    addr: SocketAddr,
    /// `http://localhost:8080`
    origin: String,
    sse_url: Arc<str>,
    connections: AtomicUsize,
}

impl OriginClient {
    /// Plain HTTP/1.1 to `host` (a name for the pool; connects to `addr`).
    pub fn h1(addr: SocketAddr, host: &str) -> OriginClient {
        OriginClient::new(Reach::H1, addr, format!("http://{host}:{}", addr.port()))
    }

    /// HTTP/2 over TLS to `host`, which the certificate must name.
    pub fn h2(addr: SocketAddr, host: &str, tls: &H2Tls) -> OriginClient {
        let tls = H2Tls {
            config: tls.config.clone(),
            server_name: host.to_string(),
        };
        let origin = format!("https://{host}:{}", addr.port());
        let reach = Reach::H2 {
            tls,
            conn: tokio::sync::Mutex::new(None),
        };
        OriginClient::new(reach, addr, origin)
    }

    fn new(reach: Reach, addr: SocketAddr, origin: String) -> OriginClient {
        OriginClient {
            sse_url: format!("{origin}/sse").into(),
            reach,
            addr,
            origin,
            connections: AtomicUsize::new(0),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// TCP connections made so far (HTTP/2: the origin's one, remade if it died).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Opens `/sse` (the caller holds the pool slot).
    pub async fn open_stream(&self) -> Result<SseStream, ClientError> {
        match &self.reach {
            Reach::H1 => {
                self.connections.fetch_add(1, Ordering::Relaxed);
                open_h1(self.addr, None, "/sse", None, &self.sse_url).await
            }
            Reach::H2 { .. } => {
                let mut send = self.h2_sender().await?;
                let url = &self.sse_url;
                send.ready().await.map_err(|e| http_error(url, e))?;
                let res = send
                    .send_request(sse_request(url, None, None))
                    .await
                    .map_err(|e| http_error(url, e))?;
                SseStream::from_response(res, None, url.clone()).await
            }
        }
    }

    /// A plain `GET path`, body read to the end (the caller holds the slot).
    pub async fn get(&self, path: &str) -> Result<u16, ClientError> {
        let url: Arc<str> = format!("{}{path}", self.origin).into();
        let res = match &self.reach {
            Reach::H1 => {
                self.connections.fetch_add(1, Ordering::Relaxed);
                let tcp = connect_tcp(self.addr, None, &url).await?;
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| http_error(&url, e))?;
                tokio::spawn(conn);
                let req = http::Request::get(path)
                    .header(http::header::HOST, self.addr.to_string())
                    .body(Empty::<Bytes>::new())
                    .expect("a request from valid parts always builds");
                send.send_request(req).await
            }
            Reach::H2 { .. } => {
                let mut send = self.h2_sender().await?;
                send.ready().await.map_err(|e| http_error(&url, e))?;
                let req = http::Request::get(&*url)
                    .body(Empty::<Bytes>::new())
                    .expect("a request from valid parts always builds");
                send.send_request(req).await
            }
        }
        .map_err(|e| http_error(&url, e))?;
        let status = res.status().as_u16();
        res.into_body()
            .collect()
            .await
            .map_err(|e| http_error(&url, e))?;
        Ok(status)
    }

    /// The origin's one HTTP/2 connection, made on first use.
    async fn h2_sender(&self) -> Result<SendRequest<Empty<Bytes>>, ClientError> {
        let Reach::H2 { tls, conn } = &self.reach else {
            unreachable!("only called for HTTP/2 origins")
        };
        let mut guard = conn.lock().await;
        if let Some(send) = guard.as_ref().filter(|s| !s.is_closed()) {
            return Ok(send.clone());
        }
        let url = &self.sse_url;
        let tcp = connect_tcp(self.addr, None, url).await?;
        let (stream, alpn) = connect_tls(tcp, tls.config.clone(), &tls.server_name, url).await?;
        if alpn.as_deref() != Some(b"h2") {
            return Err(ClientError::protocol(
                url,
                "the server did not negotiate h2 over TLS",
            ));
        }
        let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http_error(url, e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP/2 connection ended");
            }
        });
        self.connections.fetch_add(1, Ordering::Relaxed);
        *guard = Some(send.clone());
        Ok(send)
    }
}

/// The server's SETTINGS_MAX_CONCURRENT_STREAMS over TLS h2, `None` when it
/// announces none (actix never does).
///
/// hyper keeps the peer's settings to itself, so this reads the server's
/// first SETTINGS frame off a connection of its own: send the client
/// preface and an empty SETTINGS, read frames until the server's SETTINGS.
pub async fn announced_max_streams(
    addr: SocketAddr,
    tls: &H2Tls,
) -> Result<Option<u32>, ClientError> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: u8 = 0x4;
    const ACK: u8 = 0x1;
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    let url: Arc<str> = format!("https://{}:{}", tls.server_name, addr.port()).into();
    let read = async {
        let tcp = connect_tcp(addr, None, &url).await?;
        let (mut stream, alpn) =
            connect_tls(tcp, tls.config.clone(), &tls.server_name, &url).await?;
        if alpn.as_deref() != Some(b"h2") {
            return Err(ClientError::protocol(&url, "no h2 over TLS (ALPN)"));
        }
        let io = |e: std::io::Error| ClientError::protocol(&url, format!("reading SETTINGS: {e}"));
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        stream.write_all(&hello).await.map_err(io)?;
        loop {
            let mut head = [0u8; 9];
            stream.read_exact(&mut head).await.map_err(io)?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            if len > 1 << 16 {
                return Err(ClientError::protocol(&url, "oversized HTTP/2 frame"));
            }
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).await.map_err(io)?;
            if head[3] != SETTINGS || head[4] & ACK != 0 {
                continue;
            }
            return Ok(payload.chunks_exact(6).find_map(|s| {
                (u16::from_be_bytes([s[0], s[1]]) == MAX_CONCURRENT_STREAMS)
                    .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
            }));
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| ClientError::Timeout {
            url: url.clone(),
            what: "waiting for the server's HTTP/2 SETTINGS",
            secs: 5.0,
        })?
}
