//! One shared helper for the server's integration tests: start the real
//! server on port 0, and talk to it with real clients over each wire
//! (hyper for HTTP/1.1, h2c and h2 over rustls; tokio-tungstenite for WS).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use server::{RunningServer, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

mod by_addr;
use by_addr::get_h1;
#[allow(unused_imports)]
pub use by_addr::{redis_or_skip, ws_connect_at};

pub const STEP: Duration = Duration::from_secs(10);

/// Starts a server on ephemeral ports, at a brisk rate unless changed.
pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut c = ServerConfig::ephemeral();
    c.rate = 20.0;
    c.workers = Some(2);
    c.shutdown_timeout = Duration::from_secs(3);
    tweak(&mut c);
    server::run(c).expect("server starts")
}

/// The wires a client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    SseH1,
    SseH2c,
    SseH2,
    WsH1,
}

impl Wire {
    pub const ALL: [Wire; 4] = [Wire::SseH1, Wire::SseH2c, Wire::SseH2, Wire::WsH1];
    pub fn protocol(self) -> &'static str {
        match self {
            Wire::SseH1 | Wire::WsH1 => "http/1.1",
            Wire::SseH2c => "h2c",
            Wire::SseH2 => "h2",
        }
    }
}

/// One message from either wire, normalised.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Hello(Value),
    Tick {
        id: u64,
        sent_unix_ns: u64,
        json: Value,
    },
    Gap {
        from: u64,
        to: u64,
    },
    KeepAlive,
    Retry(u64),
}

/// A response whose body we read chunk by chunk.
pub struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    body: Incoming,
    /// Keeps the HTTP/2 connection task alive as long as the response.
    _conn: tokio::task::JoinHandle<()>,
    pub alpn: Option<Vec<u8>>,
}

impl Response {
    pub async fn chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .expect("a body chunk within the step")?
                .ok()?;
            if let Ok(data) = frame.into_data() {
                return Some(data);
            }
        }
    }

    pub async fn text(mut self) -> String {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await {
            all.extend_from_slice(&c);
        }
        String::from_utf8(all).unwrap()
    }
}

fn client_tls(server: &RunningServer, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    server::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(server.cert_path().unwrap()).unwrap();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `GET path` over the wire's HTTP protocol, with extra headers.
pub async fn get(
    server: &RunningServer,
    wire: Wire,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut req = http::Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match wire {
        Wire::SseH1 | Wire::WsH1 => get_h1(server.http_addr, req).await,
        Wire::SseH2c => {
            let tcp = TcpStream::connect(server.http_addr).await.unwrap();
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .unwrap();
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let uri = format!("http://{}{}", server.http_addr, path);
            let req = req.uri(uri).body(Empty::<Bytes>::new()).unwrap();
            let res = send.send_request(req).await.unwrap();
            wrap(res, conn, None)
        }
        Wire::SseH2 => {
            let addr = server.https_addr.unwrap();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = client_tls(server, &[b"h2", b"http/1.1"])
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .unwrap();
            let alpn = tls.get_ref().1.alpn_protocol().map(|p| p.to_vec());
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let uri = format!("https://localhost:{}{}", addr.port(), path);
            let req = req.uri(uri).body(Empty::<Bytes>::new()).unwrap();
            let res = send.send_request(req).await.unwrap();
            wrap(res, conn, alpn)
        }
    }
}

fn wrap(
    res: http::Response<Incoming>,
    conn: tokio::task::JoinHandle<()>,
    alpn: Option<Vec<u8>>,
) -> Response {
    let (parts, body) = res.into_parts();
    Response {
        status: parts.status,
        headers: parts.headers,
        body,
        _conn: conn,
        alpn,
    }
}

/// A feed subscription over any wire, read as [`Msg`]s.
pub enum Feed {
    Sse { res: Response, buf: BytesMut },
    Ws(tokio_tungstenite::WebSocketStream<TcpStream>),
}

pub type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

pub async fn ws_connect(server: &RunningServer, query: &str) -> Ws {
    ws_connect_at(server.http_addr, query).await
}

impl Feed {
    /// Opens `/sse` or `/ws` with an optional resume id (header for SSE).
    pub async fn open(server: &RunningServer, wire: Wire, last_id: Option<&str>) -> Feed {
        if matches!(wire, Wire::SseH1 | Wire::WsH1) {
            return Feed::open_at(server.http_addr, wire, last_id).await;
        }
        let headers: Vec<(&str, &str)> = last_id
            .map(|id| ("Last-Event-ID", id))
            .into_iter()
            .collect();
        let res = get(server, wire, "/sse", &headers).await;
        assert_eq!(res.status, 200);
        if wire == Wire::SseH2 {
            assert_eq!(res.alpn.as_deref(), Some(&b"h2"[..]), "ALPN must pick h2");
        }
        Feed::Sse {
            res,
            buf: BytesMut::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Msg> {
        match self {
            Feed::Ws(ws) => loop {
                let msg = tokio::time::timeout(STEP, ws.next())
                    .await
                    .expect("a WS message within the step")?
                    .ok()?;
                match msg {
                    Message::Text(t) => return Some(parse_json(serde_json::from_str(&t).unwrap())),
                    Message::Close(_) => return None,
                    _ => continue,
                }
            },
            Feed::Sse { res, buf } => loop {
                if let Some(end) = find_blank_line(buf) {
                    let block = buf.split_to(end + 2);
                    return Some(parse_sse_block(std::str::from_utf8(&block).unwrap()));
                }
                let chunk = res.chunk().await?;
                buf.extend_from_slice(chunk.chunk());
            },
        }
    }

    /// The next tick or gap, skipping hello, retry and keep-alives.
    pub async fn next_data(&mut self) -> Option<Msg> {
        loop {
            match self.next().await? {
                m @ (Msg::Tick { .. } | Msg::Gap { .. }) => return Some(m),
                _ => continue,
            }
        }
    }

    /// The hello that opens every stream.
    pub async fn hello(&mut self) -> Value {
        match self.next().await {
            Some(Msg::Hello(v)) => v,
            other => panic!("expected hello first, got {other:?}"),
        }
    }

    /// Closes the client side abruptly (no close handshake).
    pub fn abort(self) {
        drop(self);
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n")
}

/// Our server writes LF only and one `data:` line per event, so a test can
/// read it simply; the load generator has the full WHATWG parser.
fn parse_sse_block(block: &str) -> Msg {
    let mut event = None;
    let mut data = None;
    let mut retry = None;
    let mut id = None;
    for line in block.lines() {
        if line.starts_with(':') {
            return Msg::KeepAlive;
        }
        if let Some(v) = line.strip_prefix("event: ") {
            event = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("retry: ") {
            retry = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse::<u64>().unwrap());
        } else if !line.is_empty() {
            panic!("unexpected SSE line {line:?}");
        }
    }
    match (event.as_deref(), data) {
        (Some("hello"), Some(d)) => Msg::Hello(serde_json::from_str(&d).unwrap()),
        (Some(_), Some(d)) => {
            let m = parse_json(serde_json::from_str(&d).unwrap());
            match &m {
                Msg::Tick { id: tid, .. } => assert_eq!(Some(*tid), id, "id line matches data"),
                Msg::Gap { to, .. } => assert_eq!(Some(*to), id, "a gap carries id = to"),
                _ => {}
            }
            m
        }
        (None, None) if retry.is_some() => Msg::Retry(retry.unwrap()),
        other => panic!("unexpected SSE block {block:?} {other:?}"),
    }
}

fn parse_json(v: Value) -> Msg {
    match v["type"].as_str() {
        Some("hello") => Msg::Hello(v),
        Some("tick") => Msg::Tick {
            id: v["id"].as_u64().unwrap(),
            sent_unix_ns: v["sent_unix_ns"].as_u64().unwrap(),
            json: v,
        },
        Some("gap") => Msg::Gap {
            from: v["from"].as_u64().unwrap(),
            to: v["to"].as_u64().unwrap(),
        },
        _ => panic!("unexpected message {v}"),
    }
}

/// `/stats` as JSON.
pub async fn stats(server: &RunningServer) -> Value {
    let body = get(server, Wire::SseH1, "/stats", &[]).await.text().await;
    serde_json::from_str(&body).unwrap()
}

/// Polls `/stats` until `check` holds, or fails after the step.
pub async fn wait_stats(
    server: &RunningServer,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let s = stats(server).await;
        if check(&s) {
            return s;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("stats never showed {what}: {s}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a WS message and returns the connection for more.
pub async fn ws_send(ws: &mut Ws, msg: Message) {
    ws.send(msg).await.unwrap();
}

/// `POST path` over HTTP/1.1: the status and the JSON body (null if not JSON).
pub async fn post(server: &RunningServer, path: &str) -> (u16, Value) {
    let tcp = TcpStream::connect(server.http_addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(path)
        .header("host", server.http_addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A raw WebSocket client: the HTTP/1.1 upgrade written by hand, then raw
/// frames, so a test can send what no well-behaved client library would
/// (huge declared lengths, a close and nothing after) and see exactly what
/// the server does with the socket.
pub struct RawWs {
    pub tcp: TcpStream,
    /// Bytes read after the handshake, not yet parsed into frames.
    pub buf: BytesMut,
}

/// A server frame, as [`RawWs::frame`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// One masked client frame.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

impl RawWs {
    /// Connects to `path` (e.g. `/ws/echo`) and completes the upgrade.
    /// `recv_buffer` shrinks the socket's receive buffer (a slow reader).
    pub async fn connect(
        addr: std::net::SocketAddr,
        path: &str,
        recv_buffer: Option<u32>,
    ) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let mut tcp = socket.connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = tokio::time::timeout(STEP, tcp.read_buf(&mut buf))
                .await
                .expect("the upgrade answer within the step")
                .unwrap();
            assert!(n > 0, "closed during the upgrade");
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        let _ = buf.split_to(end);
        RawWs { tcp, buf }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// The next frame from the server; `None` at EOF (or a reset).
    pub async fn frame(&mut self) -> Option<RawFrame> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                let _ = self.buf.split_to(used);
                return Some(frame);
            }
            match self.tcp.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads frames until the server's close frame; its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some(frame) = self.frame().await {
            if frame.opcode == 0x8 {
                return frame.close_code();
            }
        }
        None
    }

    /// Reads (and drops) everything until the server closes the socket.
    pub async fn until_eof(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut sink = vec![0u8; 64 * 1024];
        while matches!(self.tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

/// One unmasked server frame from the start of `buf`, and its length.
pub fn parse_server_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        at += 4;
    }
    let payload = buf.get(at..at + len)?.to_vec();
    Some((RawFrame { opcode, payload }, at + len))
}

/// `/stats` `process`: RSS and descriptors now.
pub async fn process_figures(server: &RunningServer) -> (u64, u64) {
    let s = stats(server).await;
    (
        s["process"]["rss_bytes"].as_u64().unwrap(),
        s["process"]["open_fds"].as_u64().unwrap(),
    )
}

/// The real `server` binary in a child process: for what an in-process
/// server cannot show (its own descriptors, its log output, a lowered
/// open-file limit). Killed when dropped, so a failing test leaves nothing
/// running.
pub struct ChildServer {
    child: std::process::Child,
    pub http_addr: std::net::SocketAddr,
    /// Where its stderr (the logs) goes.
    pub log: tempfile::NamedTempFile,
    /// Its temporary directory (`TMPDIR`): a killed server cannot remove
    /// its generated certificate, so that goes with this.
    _tmp: tempfile::TempDir,
}

impl ChildServer {
    /// Starts the binary on an ephemeral port without TLS, with `args`
    /// added; under `prlimit --nofile=N:N` when `open_files` is given.
    pub fn spawn(args: &[&str], open_files: Option<u64>) -> ChildServer {
        let mut all = vec!["--http", "127.0.0.1:0", "--no-tls", "--workers", "2"];
        all.extend_from_slice(args);
        Self::spawn_exactly(&all, open_files)
    }

    /// Starts the binary with exactly `args` (their own `--http`, TLS on
    /// or off).
    pub fn spawn_exactly(args: &[&str], open_files: Option<u64>) -> ChildServer {
        use std::io::BufRead as _;
        let bin = env!("CARGO_BIN_EXE_server");
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
                c
            }
            None => std::process::Command::new(bin),
        };
        let log = tempfile::NamedTempFile::new().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        cmd.args(args)
            .env("TMPDIR", tmp.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log.reopen().unwrap());
        let mut child = cmd
            .spawn()
            .expect("starting the server binary (and prlimit)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let http_addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    let logs = std::fs::read_to_string(log.path()).unwrap_or_default();
                    panic!("the server exited before its banner; its log:\n{logs}")
                })
                .unwrap();
            if let Some(url) = line.strip_prefix("open in a browser:") {
                let url = url
                    .trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                break url.parse().unwrap();
            }
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildServer {
            child,
            http_addr,
            log,
            _tmp: tmp,
        }
    }

    /// `GET path` on a fresh connection, bounded in time: the status and
    /// body, or `None` when no answer came.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let fetch = async {
            let tcp = TcpStream::connect(self.http_addr).await.ok()?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .ok()?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let req = http::Request::get(path)
                .header("host", self.http_addr.to_string())
                .body(Empty::<Bytes>::new())
                .ok()?;
            let res = send.send_request(req).await.ok()?;
            let status = res.status().as_u16();
            let body = res.into_body().collect().await.ok()?.to_bytes();
            Some((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(STEP, fetch).await.ok().flatten()
    }

    /// `/stats` as JSON.
    pub async fn stats(&self) -> Value {
        let (status, body) = self.get("/stats").await.expect("/stats answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
