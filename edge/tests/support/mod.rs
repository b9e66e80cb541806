//! One helper for the edge's integration tests: the real feed server on
//! port 0 with the edge's certificate, a real nginx or HAProxy in front of
//! it, and real clients through the edge: SSE over HTTP/2, WebSocket over
//! HTTP/1.1 (wss, ALPN http/1.1 alone) and WebSocket over HTTP/2 (RFC 8441
//! extended CONNECT, hyper's `:protocol` extension) on one h2 connection.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use edge::{Edge, EdgeCert, EdgeKind, EdgeProfile, EdgeSpec, Preface, SettingsSniffer};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use server::{RunningServer, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The longest any one step may take.
pub const STEP: Duration = Duration::from_secs(10);

pub use edge::installed_or_skip as available;

/// A certificate for the loopback names in a temp directory.
pub struct Certs {
    pub cert: EdgeCert,
    _dir: tempfile::TempDir,
}

pub fn certs() -> Certs {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = EdgeCert::generate(dir.path()).expect("certificate");
    Certs { cert, _dir: dir }
}

/// The feed server on port 0, serving the edge's certificate on its own TLS
/// listener too (so a direct h2 client trusts it the same way).
pub fn feed_server(certs: &Certs, tweak: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut c = ServerConfig::ephemeral();
    c.rate = 20.0;
    c.workers = Some(2);
    c.shutdown_timeout = Duration::from_secs(3);
    c.tls_cert = Some(certs.cert.cert_path.clone());
    c.tls_key = Some(certs.cert.key_path.clone());
    tweak(&mut c);
    server::run(c).expect("server starts")
}

/// An edge of `kind` with `profile` in front of `upstream`.
pub fn edge(kind: EdgeKind, profile: EdgeProfile, upstream: SocketAddr, certs: &Certs) -> Edge {
    let spec = EdgeSpec::new(kind, profile, upstream.to_string()).with_cert(certs.cert.clone());
    Edge::start(spec).unwrap_or_else(|e| panic!("starting {kind}: {e}"))
}

/// An edge of `kind` in front of `server`, or (`None`) the server's own TLS
/// listener: the edge (kept alive by the caller) and the address to use.
pub fn edge_or_direct(
    kind: Option<EdgeKind>,
    profile: EdgeProfile,
    server: &RunningServer,
    certs: &Certs,
) -> (Option<Edge>, SocketAddr) {
    match kind {
        Some(k) => {
            let e = edge(k, profile, server.http_addr, certs);
            let addr = e.addr();
            (Some(e), addr)
        }
        None => (None, server.https_addr.expect("TLS listener")),
    }
}

/// A config file: the shipped `tuned` template of `kind` with `from`
/// replaced by `to` (e.g. a 2 s read timeout).
pub fn tuned_with(kind: EdgeKind, dir: &Path, from: &str, to: &str) -> PathBuf {
    let name = match kind {
        EdgeKind::Nginx => "nginx-tuned.conf",
        EdgeKind::Haproxy => "haproxy-tuned.cfg",
    };
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name);
    let text = std::fs::read_to_string(shipped).expect("shipped template");
    assert!(text.contains(from), "{name} has no `{from}`");
    let path = dir.join(name);
    std::fs::write(&path, text.replace(from, to)).expect("write config");
    path
}

/// TLS to `addr` as `localhost`, trusting `ca`, offering `alpn`.
pub async fn tls(addr: SocketAddr, ca: &Path, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read ca") {
        roots.add(cert.expect("pem")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// One HTTP/2 connection (TLS, ALPN h2) carrying SSE streams and, where
/// the server allows, WebSockets.
pub struct H2Conn {
    send: SendRequest<Empty<Bytes>>,
    preface: tokio::sync::watch::Receiver<Preface>,
    authority: String,
    _task: tokio::task::JoinHandle<()>,
}

impl H2Conn {
    pub async fn connect(addr: SocketAddr, ca: &Path) -> H2Conn {
        let tls = tls(addr, ca, &[b"h2"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN h2");
        let (io, preface) = SettingsSniffer::new(tls);
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(io))
            .await
            .expect("h2 handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        H2Conn {
            send,
            preface,
            authority: format!("localhost:{}", addr.port()),
            _task: task,
        }
    }

    /// What the server announced in its SETTINGS.
    pub async fn preface(&mut self) -> Preface {
        tokio::time::timeout(STEP, edge::announced(&mut self.preface))
            .await
            .expect("server preface in time")
    }

    /// `GET path` as an event stream.
    pub async fn sse(&mut self, path: &str) -> SseReader {
        let req = http::Request::get(format!("https://{}{path}", self.authority))
            .header("accept", "text/event-stream")
            .body(Empty::new())
            .expect("request");
        self.send.ready().await.expect("connection ready");
        let res = tokio::time::timeout(STEP, self.send.send_request(req))
            .await
            .expect("response in time")
            .expect("response");
        assert_eq!(res.status(), 200, "{path}");
        SseReader::new(res.into_body())
    }

    /// A WebSocket on this connection by extended CONNECT (RFC 8441), or
    /// why not.
    pub async fn ws(
        &mut self,
        path: &str,
    ) -> Result<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, String> {
        match self.preface().await {
            Preface::Settings(s) if s.enable_connect_protocol => {}
            Preface::Settings(_) => {
                return Err(format!(
                    "{}: server does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): no WebSocket over HTTP/2 here",
                    self.authority
                ))
            }
            p => return Err(format!("{}: no HTTP/2 server preface ({p:?})", self.authority)),
        }
        let mut req = http::Request::connect(format!("https://{}{path}", self.authority))
            .header("sec-websocket-version", "13")
            .body(Empty::new())
            .expect("request");
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        self.send.ready().await.map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(STEP, self.send.send_request(req))
            .await
            .map_err(|_| "no answer to CONNECT".to_string())?
            .map_err(|e| format!("extended CONNECT: {e}"))?;
        if res.status() != 200 {
            return Err(format!("extended CONNECT answered {}", res.status()));
        }
        let upgraded = hyper::upgrade::on(res).await.map_err(|e| e.to_string())?;
        Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
    }
}

/// WebSocket over HTTP/1.1 through TLS offering `http/1.1` alone.
pub async fn ws_h1(
    addr: SocketAddr,
    ca: &Path,
    path: &str,
) -> Result<WebSocketStream<TlsStream<TcpStream>>, String> {
    let tls = tls(addr, ca, &[b"http/1.1"]).await;
    let url = format!("wss://localhost:{}{path}", addr.port());
    tokio::time::timeout(STEP, tokio_tungstenite::client_async(url, tls))
        .await
        .map_err(|_| "no answer to the upgrade".to_string())?
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// One message of the feed, from either wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// The hello, with the protocol the server negotiated and, behind a
    /// tuned edge, what the client negotiated with the edge.
    Hello {
        protocol: String,
        edge_protocol: Option<String>,
    },
    Tick {
        id: u64,
        sent_unix_ns: u64,
    },
    Other(String),
}

fn parse_json(text: &str) -> Feed {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Feed::Other(text.into()),
    };
    match v["type"].as_str() {
        Some("hello") => Feed::Hello {
            protocol: v["protocol"].as_str().unwrap_or_default().into(),
            edge_protocol: v["edge_protocol"].as_str().map(String::from),
        },
        Some("tick") => Feed::Tick {
            id: v["id"].as_u64().expect("tick id"),
            sent_unix_ns: v["sent_unix_ns"].as_u64().expect("tick stamp"),
        },
        _ => Feed::Other(text.into()),
    }
}

/// The next feed message of a WebSocket (pings and pongs skipped).
pub async fn ws_next<S>(ws: &mut WebSocketStream<S>) -> Feed
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("message in time")
            .expect("stream open")
            .expect("message");
        match msg {
            Message::Text(t) => return parse_json(t.as_str()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Feed::Other(format!("{other:?}")),
        }
    }
}

/// One SSE event and when (and in which body chunk) it arrived.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub feed: Feed,
    pub arrived: Instant,
    /// The body chunk (HTTP/2 DATA frame) that completed it.
    pub chunk: usize,
}

/// What [`SseReader::poll_next`] found.
#[derive(Debug)]
pub enum Next {
    Event(SseEvent),
    Ended,
    Quiet,
}

/// Reads an SSE body event by event.
pub struct SseReader {
    body: Incoming,
    buf: BytesMut,
    chunks: usize,
}

impl SseReader {
    fn new(body: Incoming) -> SseReader {
        SseReader {
            body,
            buf: BytesMut::new(),
            chunks: 0,
        }
    }

    /// The next event with data (comments and `retry:` skipped); `None` at
    /// the end of the stream or if it fails (reset, closed); panics if
    /// nothing comes within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        match self.poll_next(wait).await {
            Next::Event(e) => Some(e),
            Next::Ended => None,
            Next::Quiet => panic!("no SSE event within {wait:?}"),
        }
    }

    /// The next event with data, the end of the stream, or silence for `wait`.
    pub async fn poll_next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = find_blank_line(&self.buf) {
                let block = self.buf.split_to(end);
                self.buf.advance(2);
                if let Some(feed) = parse_block(&block) {
                    return Next::Event(SseEvent {
                        feed,
                        arrived: Instant::now(),
                        chunk: self.chunks,
                    });
                }
            }
            let Ok(frame) = tokio::time::timeout_at(deadline, self.body.frame()).await else {
                return Next::Quiet;
            };
            let Some(Ok(frame)) = frame else {
                return Next::Ended;
            };
            if let Ok(data) = frame.into_data() {
                self.chunks += 1;
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// The next tick's id, skipping the hello.
    pub async fn next_tick(&mut self) -> (u64, u64) {
        loop {
            match self.next(STEP).await.expect("stream open").feed {
                Feed::Tick { id, sent_unix_ns } => return (id, sent_unix_ns),
                _ => continue,
            }
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n")
}

fn parse_block(block: &[u8]) -> Option<Feed> {
    let text = std::str::from_utf8(block).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    if data.is_empty() {
        return None;
    }
    Some(parse_json(&data.join("\n")))
}

/// Asserts that the next `n` ticks have consecutive ids.
pub async fn consecutive_sse(reader: &mut SseReader, n: usize) {
    let (mut last, _) = reader.next_tick().await;
    for _ in 1..n {
        let (id, _) = reader.next_tick().await;
        assert_eq!(id, last + 1, "ids must be consecutive");
        last = id;
    }
}

/// Asserts a hello naming `protocol` (and `edge_protocol`, what the client
/// negotiated with the edge), then `n` consecutive ticks.
pub async fn ws_hello_then_ticks<S>(
    ws: &mut WebSocketStream<S>,
    protocol: &str,
    edge_protocol: Option<&str>,
    n: usize,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    assert_eq!(
        ws_next(ws).await,
        Feed::Hello {
            protocol: protocol.into(),
            edge_protocol: edge_protocol.map(String::from),
        }
    );
    let mut last = None;
    for _ in 0..n {
        match ws_next(ws).await {
            Feed::Tick { id, .. } => {
                if let Some(prev) = last {
                    assert_eq!(id, prev + 1, "ids must be consecutive");
                }
                last = Some(id);
            }
            other => panic!("expected a tick, got {other:?}"),
        }
    }
}

/// Polls `f` until it returns `want` or `STEP` passes; the last value.
pub async fn settle<T: PartialEq + Copy>(want: T, mut f: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        let got = f();
        if got == want || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
