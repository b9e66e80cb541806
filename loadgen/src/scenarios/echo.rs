//! Echo: client to server to client round trips, closed loop (each client
//! sends its next message when the previous one came back).
//!
//! - `ws-h1`: a message on `/ws/echo` comes back on the same socket.
//! - `sse-*`: the client holds `GET /sse/echo` open and sends `POST /echo`
//!   with a correlation id; the reply arrives on its stream. Over HTTP/2 the
//!   POST shares the stream's connection (100 clients per connection, as a
//!   browser puts one origin's requests on one connection); over HTTP/1.1 it
//!   needs a second connection per client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::http::{connect, expect_ok, Conn, EventReader};
use super::{ScenarioServer, Timing};
use crate::client::ClientError;
use crate::net::connect_tcp;
use crate::recorder::{unix_now_ns, HistogramSummary};
use crate::result::ScenarioResult;
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::target::Target;
use crate::wire::Wire;

/// How long one round trip may take before the client counts it lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoSpec {
    pub wires: Vec<Wire>,
    /// Client counts to run, one after another.
    pub clients: Vec<usize>,
    /// How long each (wire, client count) runs.
    pub duration_s: f64,
}

impl Default for EchoSpec {
    fn default() -> Self {
        EchoSpec {
            wires: Wire::ALL.to_vec(),
            clients: vec![1, 100, 1000],
            duration_s: 3.0,
        }
    }
}

/// The `echo` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EchoResult {
    pub spec: EchoSpec,
    pub levels: Vec<EchoLevel>,
}

/// One wire at one client count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EchoLevel {
    pub wire: Wire,
    pub clients: usize,
    /// Clients that got their stream or socket open.
    pub connected: usize,
    /// TCP connections the clients used (SSE over HTTP/1.1: two per client).
    pub tcp_connections: usize,
    pub duration_s: f64,
    pub round_trips: u64,
    pub round_trips_per_s: f64,
    /// Send to reply received, µs.
    pub rtt_us: HistogramSummary,
    /// Round trips whose reply never came within 5 s.
    pub unanswered: u64,
    pub errors: BTreeMap<String, u64>,
    pub problems: Vec<String>,
}

pub async fn run(spec: &EchoSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    if spec.wires.is_empty() || spec.clients.is_empty() || spec.clients.contains(&0) {
        anyhow::bail!("echo: at least one wire and client counts of 1 or more");
    }
    if !(spec.duration_s > 0.0 && spec.duration_s <= 3600.0) {
        anyhow::bail!("echo: duration_s must be above 0 and at most 3600");
    }
    let server = ScenarioServer::start(opts, 1.0, &[]).await?;
    let target = Arc::new(server.target.clone());
    let mut levels = Vec::new();
    for &wire in &spec.wires {
        for &clients in &spec.clients {
            levels.push(run_level(&target, wire, clients, spec.duration_s).await);
        }
    }
    let setup = server.setup.clone();
    server.stop().await;
    let most = spec.clients.iter().copied().max().unwrap_or(1);
    Ok(ScenarioResult {
        scenario: Scenario::extra("echo", spec.wires.clone(), most, 1.0, spec.duration_s),
        server: setup,
        wires: Vec::new(),
        chat: None,
        echo: Some(EchoResult {
            spec: spec.clone(),
            levels,
        }),
        faults: None,
        limit: None,
    })
}

#[derive(Default)]
struct ClientStats {
    rtt: Timing,
    connected: bool,
    unanswered: u64,
    errors: BTreeMap<String, u64>,
}

impl ClientStats {
    fn error(&mut self, e: &ClientError) {
        *self.errors.entry(e.kind().to_string()).or_default() += 1;
    }
}

async fn run_level(target: &Arc<Target>, wire: Wire, clients: usize, duration_s: f64) -> EchoLevel {
    let mut problems = Vec::new();
    let url: Arc<str> = match wire {
        Wire::WsH1 => format!("ws://{}/ws/echo", target.http_addr).into(),
        _ => format!("{}/sse/echo", target.http_url).into(),
    };
    // HTTP/2: one connection per 100 clients, shared by streams and POSTs.
    let mut shared = Vec::new();
    if wire.is_h2() {
        for _ in 0..clients.div_ceil(crate::driver::BROWSER_H2_STREAMS) {
            match connect(wire, target, &url).await {
                Ok(c) => shared.push(c),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(duration_s);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let target = target.clone();
        let url = url.clone();
        let conn = (!shared.is_empty()).then(|| shared[i % shared.len()].clone());
        tasks.spawn(async move {
            match wire {
                Wire::WsH1 => ws_client(&target, &url, start, end).await,
                _ => sse_client(wire, &target, conn, &url, i as u64 + 1, start, end).await,
            }
        });
    }
    let mut rtt = Timing::default();
    let mut level = EchoLevel {
        wire,
        clients,
        connected: 0,
        tcp_connections: match wire {
            Wire::WsH1 => clients,
            Wire::SseH1 => 2 * clients,
            _ => shared.len(),
        },
        duration_s,
        round_trips: 0,
        round_trips_per_s: 0.0,
        rtt_us: rtt.summary(),
        unanswered: 0,
        errors: BTreeMap::new(),
        problems: Vec::new(),
    };
    let limit = Duration::from_secs_f64(duration_s) + REPLY_TIMEOUT + Duration::from_secs(10);
    let joined = tokio::time::timeout(limit, async {
        while let Some(r) = tasks.join_next().await {
            let Ok(s) = r else { continue };
            rtt.merge(&s.rtt);
            level.connected += usize::from(s.connected);
            level.unanswered += s.unanswered;
            for (k, v) in s.errors {
                *level.errors.entry(k).or_default() += v;
            }
        }
    })
    .await;
    if joined.is_err() {
        problems.push(format!(
            "{wire} x{clients}: some clients did not stop in time"
        ));
        tasks.abort_all();
    }
    if level.connected < clients {
        problems.push(format!(
            "{wire} x{clients}: only {} clients connected",
            level.connected
        ));
    }
    level.round_trips = rtt.count();
    level.round_trips_per_s = level.round_trips as f64 / duration_s;
    level.rtt_us = rtt.summary();
    level.problems = problems;
    level
}

async fn ws_client(target: &Target, url: &Arc<str>, start: Instant, end: Instant) -> ClientStats {
    let mut s = ClientStats::default();
    let tcp = match connect_tcp(target.http_addr, None, url).await {
        Ok(t) => t,
        Err(e) => {
            s.error(&e);
            return s;
        }
    };
    let request = format!("ws://{}/ws/echo", target.http_addr);
    let config = crate::ws_client::ws_config();
    let mut ws = match tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await
    {
        Ok((ws, _)) => ws,
        Err(e) => {
            s.error(&ClientError::protocol(url, e.to_string()));
            return s;
        }
    };
    s.connected = true;
    tokio::time::sleep_until(start.into()).await;
    let mut corr = 0u64;
    while Instant::now() < end {
        corr += 1;
        let t0 = Instant::now();
        let msg = format!(r#"{{"corr":{corr},"sent_unix_ns":{}}}"#, unix_now_ns());
        if ws.send(Message::text(msg.clone())).await.is_err() {
            s.error(&ClientError::Closed { url: url.clone() });
            return s;
        }
        let reply = tokio::time::timeout(REPLY_TIMEOUT, async {
            while let Some(m) = ws.next().await {
                match m {
                    Ok(Message::Text(t)) => return Some(t),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
            None
        })
        .await;
        match reply {
            Ok(Some(t)) if t.as_str() == msg => s.rtt.record(t0.elapsed()),
            Ok(Some(_)) => s.error(&ClientError::protocol(
                url,
                "the echo differs from the message",
            )),
            Ok(None) => {
                s.error(&ClientError::Closed { url: url.clone() });
                return s;
            }
            Err(_) => {
                s.unanswered += 1;
                return s;
            }
        }
    }
    let _ = ws.close(None).await;
    s
}

async fn sse_client(
    wire: Wire,
    target: &Target,
    shared: Option<Conn>,
    url: &Arc<str>,
    client: u64,
    start: Instant,
    end: Instant,
) -> ClientStats {
    let mut s = ClientStats::default();
    let conns = match shared {
        Some(c) => Ok((c.clone(), c)),
        None => match (
            connect(wire, target, url).await,
            connect(wire, target, url).await,
        ) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
    };
    let (stream_conn, post_conn) = match conns {
        Ok(c) => c,
        Err(e) => {
            s.error(&e);
            return s;
        }
    };
    let path = format!("/sse/echo?client={client}");
    let opened = async {
        let res = stream_conn
            .send(http::Method::GET, &path, None, url)
            .await?;
        let mut events = EventReader::new(expect_ok(res, url).await?, url.clone());
        match events.next().await? {
            Some(e) if e.event == "hello" => Ok(events),
            other => Err(ClientError::protocol(
                url,
                format!("expected a hello, got {other:?}"),
            )),
        }
    };
    let mut events = match opened.await {
        Ok(e) => e,
        Err(e) => {
            s.error(&e);
            return s;
        }
    };
    s.connected = true;
    tokio::time::sleep_until(start.into()).await;
    let mut corr = 0u64;
    let needle = |corr: u64| format!(r#""corr":{corr},"#);
    while Instant::now() < end {
        corr += 1;
        let t0 = Instant::now();
        let body = format!(
            r#"{{"client":{client},"corr":{corr},"sent_unix_ns":{}}}"#,
            unix_now_ns()
        );
        let round_trip = async {
            let res = post_conn
                .send(http::Method::POST, "/echo", Some(body), url)
                .await?;
            drop(expect_ok(res, url).await?);
            let want = needle(corr);
            loop {
                match events.next().await? {
                    Some(e) if e.event == "echo" && e.data.contains(&want) => return Ok(()),
                    Some(_) => continue,
                    None => return Err(ClientError::Closed { url: url.clone() }),
                }
            }
        };
        match tokio::time::timeout(REPLY_TIMEOUT, round_trip).await {
            Ok(Ok(())) => s.rtt.record(t0.elapsed()),
            Ok(Err(e)) => {
                s.error(&e);
                return s;
            }
            Err(_) => {
                s.unanswered += 1;
                return s;
            }
        }
    }
    s
}
