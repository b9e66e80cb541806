//! One helper for the baselines' integration tests: start a server (the
//! bare one in process on port 0, or any baseline as a child process that
//! prints a ready line), and read its feed over real sockets with real
//! clients: hyper for SSE over HTTP/1.1, tokio-tungstenite for WebSocket.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bare::{BareConfig, RunningBare};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// Starts the bare baseline in this process on a free port.
pub async fn start_bare(tweak: impl FnOnce(&mut BareConfig)) -> RunningBare {
    let mut config = BareConfig::ephemeral();
    config.rate = 50.0;
    config.shutdown_timeout = Duration::from_secs(3);
    tweak(&mut config);
    bare::start(config).await.expect("the bare baseline starts")
}

/// The two transports every baseline serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Sse,
    Ws,
}

/// A connected socket, optionally with a small receive buffer (so a test
/// that stops reading fills the server's side quickly).
pub async fn connect(addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .expect("connect within the step")
        .expect("the server accepts")
}

/// One SSE event (comments skipped), as the WHATWG parser would see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// `message` when the server names none.
    pub event: String,
    pub data: String,
    /// The block as received, blank line included.
    pub raw: Bytes,
}

/// An SSE stream over HTTP/1.1 (hyper: chunked or close-delimited bodies).
pub struct SseClient {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    body: Incoming,
    buf: BytesMut,
    /// Where to resume searching for a blank line.
    scanned: usize,
    pub retry_ms: Option<u64>,
    pub keepalives: u64,
    _conn: tokio::task::JoinHandle<()>,
}

impl SseClient {
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
        Self::open_on(connect(addr, None).await, addr, path, headers).await
    }

    pub async fn open_on(
        tcp: TcpStream,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> SseClient {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = hyper::Request::get(path).header("host", addr.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = tokio::time::timeout(
            STEP,
            send.send_request(req.body(Empty::<Bytes>::new()).unwrap()),
        )
        .await
        .expect("a response head within the step")
        .expect("a response");
        let (parts, body) = res.into_parts();
        SseClient {
            status: parts.status,
            headers: parts.headers,
            body,
            buf: BytesMut::new(),
            scanned: 0,
            retry_ms: None,
            keepalives: 0,
            _conn: conn,
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(at) = find(&self.buf[self.scanned..], b"\n\n").map(|i| i + self.scanned)
            {
                let raw = self.buf.split_to(at + 2).freeze();
                self.scanned = 0;
                if let Some(event) = self.parse_block(raw) {
                    return Some(event);
                }
            }
            self.scanned = self.buf.len().saturating_sub(1);
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .expect("SSE bytes within the step")?
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    fn parse_block(&mut self, raw: Bytes) -> Option<SseEvent> {
        let text = std::str::from_utf8(&raw).expect("SSE is UTF-8");
        let (mut id, mut event, mut data) = (None, None, None::<String>);
        for line in text.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "" => self.keepalives += 1,
                "id" => id = Some(value.to_string()),
                "event" => event = Some(value.to_string()),
                "retry" => self.retry_ms = value.parse().ok(),
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        Some(SseEvent {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data: data?,
            raw,
        })
    }

    /// The next event's data as JSON.
    pub async fn next_json(&mut self) -> Option<Value> {
        let event = self.next().await?;
        let json: Value = serde_json::from_str(&event.data).expect("SSE data is JSON");
        if let Some(id) = &event.id {
            if json["type"] == "tick" {
                assert_eq!(id, &json["id"].to_string(), "the SSE id is the tick's id");
            }
        }
        Some(json)
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A WebSocket feed client (tokio-tungstenite).
pub struct WsClient {
    pub ws: WebSocketStream<TcpStream>,
    pub pings: u64,
}

impl WsClient {
    pub async fn open(addr: SocketAddr, query: &str) -> WsClient {
        Self::open_on(connect(addr, None).await, addr, query).await
    }

    pub async fn open_on(tcp: TcpStream, addr: SocketAddr, query: &str) -> WsClient {
        let url = format!("ws://{addr}/ws{query}");
        let (ws, response) = tokio::time::timeout(STEP, tokio_tungstenite::client_async(url, tcp))
            .await
            .expect("a handshake within the step")
            .expect("the WebSocket handshake succeeds");
        assert_eq!(response.status(), 101);
        WsClient { ws, pings: 0 }
    }

    /// The next text message as JSON; `None` when the socket closes.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("a WebSocket message within the step")?
                .ok()?;
            match message {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
                Message::Ping(_) => self.pings += 1,
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The close frame the server sends next, skipping other messages.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let message = tokio::time::timeout(STEP, self.ws.next())
                .await
                .expect("a close within the step")?
                .ok()?;
            if let Message::Close(frame) = message {
                return frame.map(|f| f.code.into());
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A client of either transport, read as JSON messages in order.
pub enum FeedClient {
    Sse(Box<SseClient>),
    Ws(Box<WsClient>),
}

impl FeedClient {
    /// Opens `/sse` or `/ws`, resuming after `last` when given.
    pub async fn open(wire: Wire, addr: SocketAddr, last: Option<u64>) -> FeedClient {
        match wire {
            Wire::Sse => {
                let last = last.map(|l| l.to_string());
                let headers: Vec<(&str, &str)> =
                    last.iter().map(|l| ("last-event-id", l.as_str())).collect();
                let sse = SseClient::open(addr, "/sse", &headers).await;
                assert_eq!(sse.status, 200);
                let content_type = sse.headers["content-type"].to_str().unwrap();
                assert!(
                    content_type.starts_with("text/event-stream"),
                    "{content_type}"
                );
                FeedClient::Sse(Box::new(sse))
            }
            Wire::Ws => {
                let query = last
                    .map(|l| format!("?lastEventId={l}"))
                    .unwrap_or_default();
                FeedClient::Ws(Box::new(WsClient::open(addr, &query).await))
            }
        }
    }

    pub async fn next_json(&mut self) -> Option<Value> {
        match self {
            FeedClient::Sse(sse) => sse.next_json().await,
            FeedClient::Ws(ws) => ws.next_json().await,
        }
    }

    /// The next `n` ticks, skipping other messages (hello).
    pub async fn ticks(&mut self, n: usize) -> Vec<Tick> {
        let mut ticks = Vec::with_capacity(n);
        while ticks.len() < n {
            let json = self.next_json().await.expect("the stream stays open");
            if let Some(tick) = Tick::from_json(&json) {
                ticks.push(tick);
            }
        }
        ticks
    }
}

/// A tick as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub id: u64,
    pub sent_unix_ns: u64,
    pub server_time: String,
}

impl Tick {
    pub fn from_json(json: &Value) -> Option<Tick> {
        if json["type"] != "tick" {
            return None;
        }
        Some(Tick {
            id: json["id"].as_u64().expect("a tick's id is an integer"),
            // as_u64 fails on a float: the stamp must be an exact integer.
            sent_unix_ns: json["sent_unix_ns"]
                .as_u64()
                .expect("sent_unix_ns is an integer"),
            server_time: json["server_time"]
                .as_str()
                .expect("server_time")
                .to_string(),
        })
    }
}

/// Consecutive ids whose stamps sit exactly on the feed's grid (start +
/// id × period), whose `server_time` says the same instant, and which are
/// recent (not milliseconds or microseconds taken for nanoseconds).
pub fn assert_on_grid(ticks: &[Tick], period_ns: u64) {
    let first = &ticks[0];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(tick.id, first.id + i as u64, "consecutive ids: {ticks:?}");
        assert_eq!(
            tick.sent_unix_ns - first.sent_unix_ns,
            (tick.id - first.id) * period_ns,
            "stamps on the scheduled grid: {tick:?} after {first:?}"
        );
        let at = humantime::parse_rfc3339(&tick.server_time).expect("server_time is RFC 3339");
        assert_eq!(
            at.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64,
            tick.sent_unix_ns,
            "server_time and sent_unix_ns name one instant: {tick:?}"
        );
        assert!(
            now.abs_diff(tick.sent_unix_ns) < 60_000_000_000,
            "a recent stamp: {tick:?}"
        );
    }
}

/// `/stats` of a server, over a plain connection.
pub async fn stats(addr: SocketAddr) -> Value {
    let mut tcp = connect(addr, None).await;
    tcp.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut all))
        .await
        .expect("stats within the step")
        .unwrap();
    let text = String::from_utf8(all).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).expect("stats are JSON")
}

/// Polls `/stats` until `done` holds; panics with the last answer after the step.
pub async fn wait_stats(addr: SocketAddr, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let s = stats(addr).await;
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {STEP:?}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends raw bytes and reads the answer until the server closes.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = connect(addr, None).await;
    tcp.write_all(bytes).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut all))
        .await
        .expect("an answer within the step")
        .unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

/// A baseline server in a child process: started with piped stdin, stdout
/// read up to its ready line `{"port":N,"pid":P}`. Killed when dropped, so
/// a failing test leaves no process behind.
pub struct ChildServer {
    child: Child,
    pub port: u16,
    pub pid: u32,
}

impl ChildServer {
    pub async fn spawn(mut command: Command) -> ChildServer {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the server process starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        tokio::time::timeout(STEP, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("a ready line within the step")
            .expect("reading the ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the ready line is JSON ({e}): {line:?}"));
        let port = ready["port"].as_u64().expect("the ready line has a port") as u16;
        let pid = ready["pid"].as_u64().expect("the ready line has a pid") as u32;
        assert_eq!(Some(pid), child.id(), "the ready line names the process");
        ChildServer { child, port, pid }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Closes the child's stdin and waits for it to exit.
    pub async fn close_stdin_and_wait(mut self) -> ExitStatus {
        drop(self.child.stdin.take());
        self.wait().await
    }

    /// Sends SIGTERM and waits for the child to exit.
    pub async fn terminate_and_wait(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .expect("running kill");
        assert!(status.success(), "kill -TERM {}", self.pid);
        self.wait().await
    }

    async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("the server exits within the step")
            .expect("waiting for the server")
    }
}

/// Whether an optional external tool is usable; when it is not, prints a
/// loud `SKIPPED` line and returns false, or fails when the environment
/// variable `require_var` is `1` (CI sets it, so there nothing is skipped).
pub fn available_or_skip(
    what: &str,
    missing: Option<String>,
    require_var: &str,
    install: &str,
) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if std::env::var(require_var).as_deref() == Ok("1") {
        panic!("{what}: {why}, and {require_var}=1 requires it (install: {install})");
    }
    // Straight to the process's stderr: `eprintln!` would be captured by the
    // test harness and never shown for a test that passes.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\nSKIPPED: {what}: {why} (install: {install})\n********\n"
    );
    false
}

/// The directory of the Node baseline.
pub fn node_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../node"))
}
