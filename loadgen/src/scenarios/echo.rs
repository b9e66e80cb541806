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

use server::event::unix_now_ns;

use crate::client::{
    expect_ok, open_ws, ClientError, Dialer, Endpoint, H2Pool, HttpConn, NamedEvent, NamedEvents,
    SseStream, Target, WsIncoming,
};
use crate::measure::Timing;
use crate::result::{EchoLevel, EchoResult, EchoSpec, Scenario, ScenarioResult, Section};
use crate::run::connection::{read, Ended, Flow};
use crate::run::{RunOptions, ServerSettings, StartedServer, BROWSER_H2_STREAMS};
use crate::wire::Wire;

/// How long one round trip may take before the client counts it lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every wire at every client count against one server.
pub async fn run(spec: &EchoSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    spec.validate().map_err(anyhow::Error::msg)?;
    let server = StartedServer::start(opts, &ServerSettings::new(1.0, opts.workers)).await?;
    let mut levels = Vec::new();
    for &wire in &spec.wires {
        for &clients in &spec.clients {
            levels.push(run_level(&server.target, wire, clients, spec.duration_s).await);
        }
    }
    let setup = server.setup.clone();
    server.stop().await;
    let most = spec.clients.iter().copied().max().unwrap_or(1);
    Ok(ScenarioResult {
        scenario: Scenario::extra("echo", spec.wires.clone(), most, 1.0, spec.duration_s),
        server: setup,
        wires: Vec::new(),
        link: None,
        stack: None,
        section: Section::Echo(EchoResult {
            spec: spec.clone(),
            levels,
        }),
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

/// How a level's clients reach the server.
#[derive(Clone)]
enum Route {
    /// The stream and the POSTs each on a connection of their own.
    Sse(Endpoint),
    /// Stream and POSTs on a shared HTTP/2 connection (slot = client).
    SseShared(Arc<H2Pool>),
    /// `/ws/echo`, one socket per client.
    Ws(Endpoint),
}

async fn run_level(target: &Target, wire: Wire, clients: usize, duration_s: f64) -> EchoLevel {
    let mut problems = Vec::new();
    let route = match wire {
        Wire::WsH1 => Some(Route::Ws(target.ws("/ws/echo"))),
        Wire::SseH2 => target.https_h2("/sse/echo").map(|e| shared(e, clients)),
        Wire::SseH2c => Some(shared(target.plain("/sse/echo"), clients)),
        _ => Some(Route::Sse(target.plain("/sse/echo"))),
    };
    if route.is_none() {
        problems.push("sse-h2 needs the server's TLS listener".into());
    }
    // HTTP/2: one connection per 100 clients, shared by streams and POSTs.
    let mut h2_connections = 0;
    if let Some(Route::SseShared(pool)) = &route {
        problems.extend(pool.connect_all().await.iter().map(ToString::to_string));
        h2_connections = pool.connections_made() as usize;
    }
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(duration_s);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let Some(route) = route.clone() else { break };
        tasks.spawn(async move {
            let client = i as u64 + 1;
            match route {
                Route::Ws(endpoint) => ws_client(&endpoint, start, end).await,
                Route::Sse(endpoint) => {
                    let dialer = Dialer::default();
                    let conns = match (
                        HttpConn::h1(&dialer, &endpoint).await,
                        HttpConn::h1(&dialer, &endpoint).await,
                    ) {
                        (Ok(a), Ok(b)) => Ok((a, b)),
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    };
                    sse_client(conns, endpoint.shown(), client, start, end).await
                }
                Route::SseShared(pool) => {
                    let url = pool.endpoint().shown().clone();
                    let conn = HttpConn::H2 { pool, slot: i };
                    sse_client(Ok((conn.clone(), conn)), &url, client, start, end).await
                }
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
            _ => h2_connections,
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

/// One connection per 100 clients, shared by their streams and POSTs.
fn shared(endpoint: Endpoint, clients: usize) -> Route {
    let size = clients.div_ceil(BROWSER_H2_STREAMS);
    Route::SseShared(Arc::new(H2Pool::new(endpoint, Dialer::default(), size)))
}

async fn ws_client(endpoint: &Endpoint, start: Instant, end: Instant) -> ClientStats {
    let mut s = ClientStats::default();
    let url = endpoint.shown();
    let mut ws = match open_ws(&Dialer::default(), endpoint, 0, endpoint.url()).await {
        Ok(ws) => ws,
        Err(e) => {
            s.error(&e);
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
        if ws.send_text(msg.clone()).await.is_err() {
            s.error(&ClientError::Closed { url: url.clone() });
            return s;
        }
        let mut reply = None;
        let mut on_message = |m: WsIncoming| match m {
            WsIncoming::Text(t) => {
                reply = Some(t);
                Flow::Stop
            }
            WsIncoming::Ping => Flow::Continue,
        };
        let ended =
            tokio::time::timeout(REPLY_TIMEOUT, read(&mut ws, &mut on_message, None, None)).await;
        match (ended, reply) {
            (Ok(Ended::Done), Some(t)) if t.as_str() == msg => s.rtt.record(t0.elapsed()),
            (Ok(Ended::Done), _) => s.error(&ClientError::protocol(
                url,
                "the echo differs from the message",
            )),
            (Ok(_), _) => {
                s.error(&ClientError::Closed { url: url.clone() });
                return s;
            }
            (Err(_), _) => {
                s.unanswered += 1;
                return s;
            }
        }
    }
    ws.close().await;
    s
}

async fn sse_client(
    conns: Result<(HttpConn, HttpConn), ClientError>,
    url: &Arc<str>,
    client: u64,
    start: Instant,
    end: Instant,
) -> ClientStats {
    let mut s = ClientStats::default();
    let (stream_conn, post_conn) = match conns {
        Ok(c) => c,
        Err(e) => {
            s.error(&e);
            return s;
        }
    };
    let path = format!("/sse/echo?client={client}");
    let opened = async {
        let res = stream_conn.send(http::Method::GET, &path, None).await?;
        let mut events = SseStream::from_response(res, url.clone(), NamedEvents).await?;
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
                .send(http::Method::POST, "/echo", Some(body))
                .await?;
            drop(expect_ok(res, url).await?);
            let want = needle(corr);
            let mut is_reply = |e: NamedEvent| match e.event == "echo" && e.data.contains(&want) {
                true => Flow::Stop,
                false => Flow::Continue,
            };
            match read(&mut events, &mut is_reply, None, None).await {
                Ended::Done => Ok(()),
                Ended::Failed(e) => Err(e),
                Ended::Closed | Ended::Stopped => Err(ClientError::Closed { url: url.clone() }),
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
