//! Chat: a prompt, then a streamed answer, the way chat assistants reply.
//!
//! U users each ask Q questions in turn. SSE wires `POST /chat` once per
//! question and read the answer's event stream (on HTTP/1.1 each user keeps
//! one keep-alive connection, on HTTP/2 users share one connection per 100);
//! `ws-h1` opens one `/ws/chat` socket per user and sends prompt messages.
//!
//! Measured per wire: request set-up (SSE: request sent to response head; WS:
//! the socket's handshake, once per user), time to first token (request sent
//! to first token), inter-token gaps, and total answer time (sent to `done`).
//!
//! Browser-model hook: `h1_pool_limit` caps the SSE-over-HTTP/1.1 requests in
//! flight at once (a browser allows 6 per origin): queued questions wait
//! silently, and the wait shows in set-up and first-token times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::client::{
    open_ws, within, ClientError, Dialer, Endpoint, H2Pool, HttpConn, NamedEvent, NamedEvents,
    SseStream, Target, WsIncoming,
};
use crate::measure::Timing;
use crate::result::{ChatResult, ChatSpec, ChatWire, Scenario, ScenarioResult, Section};
use crate::run::connection::{read, Ended, Flow};
use crate::run::{RunOptions, ServerSettings, StartedServer, BROWSER_H2_STREAMS};
use crate::wire::Wire;

/// The longest one answer may take beyond its schedule.
const ANSWER_SLACK: Duration = Duration::from_secs(10);

/// Runs every wire's users against one server (embedded, or the external one).
pub async fn run(spec: &ChatSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    spec.validate().map_err(anyhow::Error::msg)?;
    let server = StartedServer::start(opts, &ServerSettings::new(1.0, opts.workers)).await?;
    let mut wires = Vec::new();
    for &wire in &spec.wires {
        wires.push(run_wire(spec, &server.target, wire).await);
    }
    let setup = server.setup.clone();
    server.stop().await;
    let answer_s = f64::from(spec.tokens) / spec.token_rate;
    Ok(ScenarioResult {
        scenario: Scenario::extra(
            "chat",
            spec.wires.clone(),
            spec.users,
            1.0,
            answer_s * spec.questions as f64,
        ),
        server: setup,
        wires: Vec::new(),
        link: None,
        stack: None,
        section: Section::Chat(ChatResult {
            spec: spec.clone(),
            wires,
        }),
    })
}

#[derive(Default)]
struct UserStats {
    setup: Timing,
    ttft: Timing,
    inter: Timing,
    total: Timing,
    answers: u64,
    tokens: u64,
    errors: BTreeMap<String, u64>,
}

impl UserStats {
    fn error(&mut self, e: &ClientError) {
        *self.errors.entry(e.kind().to_string()).or_default() += 1;
    }

    fn merge(&mut self, o: &UserStats) {
        self.setup.merge(&o.setup);
        self.ttft.merge(&o.ttft);
        self.inter.merge(&o.inter);
        self.total.merge(&o.total);
        self.answers += o.answers;
        self.tokens += o.tokens;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// Times one answer's tokens as they arrive.
struct AnswerClock {
    sent: Instant,
    last: Option<Instant>,
    tokens: u32,
}

impl AnswerClock {
    fn new(sent: Instant) -> Self {
        AnswerClock {
            sent,
            last: None,
            tokens: 0,
        }
    }

    fn token(&mut self, s: &mut UserStats) {
        let now = Instant::now();
        match self.last {
            None => s.ttft.record(now - self.sent),
            Some(prev) => s.inter.record(now - prev),
        }
        self.last = Some(now);
        self.tokens += 1;
        s.tokens += 1;
    }

    fn done(&self, s: &mut UserStats, want: u32) {
        s.total.record(self.sent.elapsed());
        if self.tokens == want {
            s.answers += 1;
        }
    }
}

/// How a wire's users reach the server.
#[derive(Clone)]
enum Route {
    /// `POST /chat` on a connection of the user's own.
    Sse(Endpoint),
    /// `POST /chat` on a shared HTTP/2 connection (slot = user).
    SseShared(Arc<H2Pool>),
    /// One `/ws/chat` socket per user.
    Ws(Endpoint),
}

/// The endpoint of `path` for a wire's SSE requests.
fn sse_endpoint(target: &Target, wire: Wire, path: &str) -> Result<Endpoint, String> {
    match wire {
        Wire::SseH2 => target
            .https_h2(path)
            .ok_or_else(|| "sse-h2 needs the server's TLS listener".to_string()),
        _ => Ok(target.plain(path)),
    }
}

async fn run_wire(spec: &ChatSpec, target: &Target, wire: Wire) -> ChatWire {
    let mut problems = Vec::new();
    let route = match wire {
        Wire::WsH1 => Ok(Route::Ws(target.ws("/ws/chat"))),
        _ => sse_endpoint(target, wire, "/chat").map(|e| {
            if wire.is_h2() {
                // One connection per 100 users, as a browser would.
                let size = spec.users.div_ceil(BROWSER_H2_STREAMS);
                Route::SseShared(Arc::new(H2Pool::new(e, Dialer::default(), size)))
            } else {
                Route::Sse(e)
            }
        }),
    };
    let route = match route {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            return chat_wire(spec, wire, None, UserStats::default(), problems);
        }
    };
    if let Route::SseShared(pool) = &route {
        problems.extend(pool.connect_all().await.iter().map(ToString::to_string));
    }
    let limit = (wire == Wire::SseH1)
        .then_some(spec.h1_pool_limit)
        .flatten()
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let bound = spec
        .answer_time()
        .saturating_add(ANSWER_SLACK)
        .saturating_mul(u32::try_from(spec.questions).unwrap_or(u32::MAX))
        .saturating_add(Duration::from_secs(10));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.users {
        let (route, spec, limit) = (route.clone(), spec.clone(), limit.clone());
        tasks.spawn(async move {
            let mut s = UserStats::default();
            let user = async {
                match route {
                    Route::Ws(endpoint) => ws_user(&endpoint, &spec, &mut s).await,
                    Route::Sse(endpoint) => {
                        let conn = HttpConn::h1(&Dialer::default(), &endpoint).await?;
                        sse_user(conn, endpoint.shown(), limit, &spec, &mut s).await
                    }
                    Route::SseShared(pool) => {
                        let url = pool.endpoint().shown().clone();
                        let conn = HttpConn::H2 { pool, slot: i };
                        sse_user(conn, &url, limit, &spec, &mut s).await
                    }
                }
            };
            if let Err(e) = user.await {
                s.error(&e);
            }
            s
        });
    }
    let mut all = UserStats::default();
    let joined = tokio::time::timeout(bound, async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(s) = r {
                all.merge(&s);
            }
        }
    })
    .await;
    if joined.is_err() {
        problems.push(format!(
            "{wire}: some users had not finished within {bound:?}"
        ));
        tasks.abort_all();
    }
    let asked = (spec.users as u64).saturating_mul(spec.questions as u64);
    if all.answers < asked {
        problems.push(format!(
            "{wire}: {} of {asked} answers complete",
            all.answers
        ));
    }
    chat_wire(spec, wire, limit, all, problems)
}

fn chat_wire(
    spec: &ChatSpec,
    wire: Wire,
    limit: Option<Arc<Semaphore>>,
    all: UserStats,
    problems: Vec<String>,
) -> ChatWire {
    ChatWire {
        wire,
        users: spec.users,
        questions: spec.questions,
        answers: all.answers,
        tokens_received: all.tokens,
        pool_limit: limit.as_ref().and(spec.h1_pool_limit),
        setup_us: all.setup.summary(),
        ttft_us: all.ttft.summary(),
        inter_token_us: all.inter.summary(),
        total_us: all.total.summary(),
        errors: all.errors,
        problems,
    }
}

fn prompt_json(spec: &ChatSpec, id: usize) -> String {
    format!(
        r#"{{"type":"prompt","id":{id},"prompt":"question {id}","tokens":{},"rate":{}}}"#,
        spec.tokens, spec.token_rate
    )
}

/// What reading an answer came to: done, or why not.
fn answered(ended: Ended, url: &Arc<str>) -> Result<(), ClientError> {
    match ended {
        Ended::Done => Ok(()),
        Ended::Failed(e) => Err(e),
        Ended::Closed | Ended::Stopped => Err(ClientError::Closed { url: url.clone() }),
    }
}

async fn sse_user(
    conn: HttpConn,
    url: &Arc<str>,
    limit: Option<Arc<Semaphore>>,
    spec: &ChatSpec,
    s: &mut UserStats,
) -> Result<(), ClientError> {
    let timeout = spec.answer_time().saturating_add(ANSWER_SLACK);
    for q in 1..=spec.questions {
        let sent = Instant::now();
        let _slot = match &limit {
            Some(sem) => Some(sem.acquire().await.expect("the semaphore is never closed")),
            None => None,
        };
        let answer = async {
            let res = conn
                .send(http::Method::POST, "/chat", Some(prompt_json(spec, q)))
                .await?;
            s.setup.record(sent.elapsed());
            let mut events = SseStream::from_response(res, url.clone(), NamedEvents).await?;
            let mut clock = AnswerClock::new(sent);
            let mut on_event = |e: NamedEvent| match e.event.as_str() {
                "token" => {
                    clock.token(s);
                    Flow::Continue
                }
                "done" => {
                    clock.done(s, spec.tokens);
                    Flow::Stop
                }
                _ => Flow::Continue,
            };
            answered(read(&mut events, &mut on_event, None, None).await, url)?;
            // Read to the end so the connection can carry the next question.
            match read(&mut events, &mut |_: NamedEvent| Flow::Continue, None, None).await {
                Ended::Failed(e) => Err(e),
                _ => Ok(()),
            }
        };
        within(timeout, url, "waiting for an answer", answer).await?;
    }
    Ok(())
}

async fn ws_user(
    endpoint: &Endpoint,
    spec: &ChatSpec,
    s: &mut UserStats,
) -> Result<(), ClientError> {
    let url = endpoint.shown();
    let t0 = Instant::now();
    let mut ws = open_ws(&Dialer::default(), endpoint, 0, endpoint.url()).await?;
    s.setup.record(t0.elapsed());
    let timeout = spec.answer_time().saturating_add(ANSWER_SLACK);
    for q in 1..=spec.questions {
        let sent = Instant::now();
        ws.send_text(prompt_json(spec, q))
            .await
            .map_err(|_| ClientError::Closed { url: url.clone() })?;
        let mut clock = AnswerClock::new(sent);
        let mut on_message = |m: WsIncoming| match m {
            WsIncoming::Ping => Flow::Continue,
            WsIncoming::Text(t) if t.contains(r#""type":"token""#) => {
                clock.token(s);
                Flow::Continue
            }
            WsIncoming::Text(t) if t.contains(r#""type":"done""#) => {
                clock.done(s, spec.tokens);
                Flow::Stop
            }
            WsIncoming::Text(t) => {
                Flow::Fail(ClientError::protocol(url, server::event::snippet(&t)))
            }
        };
        let answer = async { answered(read(&mut ws, &mut on_message, None, None).await, url) };
        within(timeout, url, "waiting for an answer", answer).await?;
    }
    ws.close().await;
    Ok(())
}
