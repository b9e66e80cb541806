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

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use super::http::{connect, expect_ok, Conn, EventReader};
use super::{ScenarioServer, Timing};
use crate::client::ClientError;
use crate::net::connect_tcp;
use crate::recorder::HistogramSummary;
use crate::result::ScenarioResult;
use crate::runner::RunOptions;
use crate::scenario::Scenario;
use crate::target::Target;
use crate::wire::Wire;

/// The longest one answer may take beyond its schedule.
const ANSWER_SLACK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSpec {
    pub wires: Vec<Wire>,
    pub users: usize,
    pub questions: usize,
    /// Tokens per answer.
    pub tokens: u32,
    /// Tokens per second.
    pub token_rate: f64,
    /// SSE over HTTP/1.1 requests in flight at once (a browser's 6); none: no limit.
    pub h1_pool_limit: Option<usize>,
}

impl Default for ChatSpec {
    fn default() -> Self {
        ChatSpec {
            wires: Wire::ALL.to_vec(),
            users: 20,
            questions: 3,
            tokens: 20,
            token_rate: 100.0,
            h1_pool_limit: None,
        }
    }
}

/// The `chat` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatResult {
    pub spec: ChatSpec,
    pub wires: Vec<ChatWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatWire {
    pub wire: Wire,
    pub users: usize,
    pub questions: usize,
    /// Answers that reached `done` with every token.
    pub answers: u64,
    pub tokens_received: u64,
    /// The SSE-over-HTTP/1.1 cap in force (browser model), if any.
    pub pool_limit: Option<usize>,
    /// SSE: request sent to response head, per question; WS: handshake, per user. µs.
    pub setup_us: HistogramSummary,
    /// Prompt sent to first token, µs.
    pub ttft_us: HistogramSummary,
    /// Between consecutive tokens of an answer, µs.
    pub inter_token_us: HistogramSummary,
    /// Prompt sent to `done`, µs.
    pub total_us: HistogramSummary,
    pub errors: BTreeMap<String, u64>,
    pub problems: Vec<String>,
}

pub async fn run(spec: &ChatSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    if spec.wires.is_empty() || spec.users == 0 || spec.questions == 0 {
        anyhow::bail!("chat: at least one wire, one user and one question");
    }
    if !(spec.token_rate > 0.0 && spec.token_rate <= server::chat::MAX_RATE) {
        anyhow::bail!(
            "chat: token_rate must be above 0 and at most {}",
            server::chat::MAX_RATE
        );
    }
    if spec.tokens == 0 || spec.tokens > server::chat::MAX_TOKENS {
        anyhow::bail!("chat: tokens must be 1 to {}", server::chat::MAX_TOKENS);
    }
    let server = ScenarioServer::start(opts, 1.0, &[]).await?;
    let target = Arc::new(server.target.clone());
    let mut wires = Vec::new();
    for &wire in &spec.wires {
        wires.push(run_wire(spec, &target, wire).await);
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
        chat: Some(ChatResult {
            spec: spec.clone(),
            wires,
        }),
        echo: None,
        faults: None,
        limit: None,
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

async fn run_wire(spec: &ChatSpec, target: &Arc<Target>, wire: Wire) -> ChatWire {
    let mut problems = Vec::new();
    let url: Arc<str> = match wire {
        Wire::WsH1 => format!("ws://{}/ws/chat", target.http_addr).into(),
        _ => format!("{}/chat", target.http_url).into(),
    };
    let mut shared = Vec::new();
    if wire.is_h2() {
        for _ in 0..spec.users.div_ceil(crate::driver::BROWSER_H2_STREAMS) {
            match connect(wire, target, &url).await {
                Ok(c) => shared.push(c),
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    let limit = (wire == Wire::SseH1)
        .then_some(spec.h1_pool_limit)
        .flatten()
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let answer = Duration::from_secs_f64(f64::from(spec.tokens) / spec.token_rate);
    let bound = (answer + ANSWER_SLACK) * spec.questions as u32 + Duration::from_secs(10);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.users {
        let (target, url, spec) = (target.clone(), url.clone(), spec.clone());
        let conn = (!shared.is_empty()).then(|| shared[i % shared.len()].clone());
        let limit = limit.clone();
        tasks.spawn(async move {
            let mut s = UserStats::default();
            let user = async {
                match wire {
                    Wire::WsH1 => ws_user(&target, &url, &spec, &mut s).await,
                    _ => sse_user(wire, &target, conn, limit, &url, &spec, &mut s).await,
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
    let asked = (spec.users * spec.questions) as u64;
    if all.answers < asked {
        problems.push(format!(
            "{wire}: {} of {asked} answers complete",
            all.answers
        ));
    }
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

async fn sse_user(
    wire: Wire,
    target: &Target,
    shared: Option<Conn>,
    limit: Option<Arc<Semaphore>>,
    url: &Arc<str>,
    spec: &ChatSpec,
    s: &mut UserStats,
) -> Result<(), ClientError> {
    let conn = match shared {
        Some(c) => c,
        None => connect(wire, target, url).await?,
    };
    let timeout = Duration::from_secs_f64(f64::from(spec.tokens) / spec.token_rate) + ANSWER_SLACK;
    for q in 1..=spec.questions {
        let sent = Instant::now();
        let _slot = match &limit {
            Some(sem) => Some(sem.acquire().await.expect("the semaphore is never closed")),
            None => None,
        };
        let answer = async {
            let res = conn
                .send(http::Method::POST, "/chat", Some(prompt_json(spec, q)), url)
                .await?;
            s.setup.record(sent.elapsed());
            let mut events = EventReader::new(expect_ok(res, url).await?, url.clone());
            let mut clock = AnswerClock::new(sent);
            while let Some(e) = events.next().await? {
                match e.event.as_str() {
                    "token" => clock.token(s),
                    "done" => {
                        clock.done(s, spec.tokens);
                        // Read to the end so the connection can carry the next question.
                        while events.next().await?.is_some() {}
                        return Ok(());
                    }
                    _ => {}
                }
            }
            Err(ClientError::Closed { url: url.clone() })
        };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                what: "waiting for an answer",
                secs: timeout.as_secs_f64(),
            })??;
    }
    Ok(())
}

async fn ws_user(
    target: &Target,
    url: &Arc<str>,
    spec: &ChatSpec,
    s: &mut UserStats,
) -> Result<(), ClientError> {
    let t0 = Instant::now();
    let tcp = connect_tcp(target.http_addr, None, url).await?;
    let request = format!("ws://{}/ws/chat", target.http_addr);
    let config = crate::ws_client::ws_config();
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|e| ClientError::protocol(url, e.to_string()))?;
    s.setup.record(t0.elapsed());
    let timeout = Duration::from_secs_f64(f64::from(spec.tokens) / spec.token_rate) + ANSWER_SLACK;
    for q in 1..=spec.questions {
        let sent = Instant::now();
        ws.send(Message::text(prompt_json(spec, q)))
            .await
            .map_err(|_| ClientError::Closed { url: url.clone() })?;
        let mut clock = AnswerClock::new(sent);
        let answer = async {
            while let Some(m) = ws.next().await {
                let Ok(Message::Text(t)) = m else {
                    if m.is_err() {
                        break;
                    }
                    continue;
                };
                if t.contains(r#""type":"token""#) {
                    clock.token(s);
                } else if t.contains(r#""type":"done""#) {
                    clock.done(s, spec.tokens);
                    return Ok(());
                } else {
                    return Err(ClientError::protocol(url, crate::client::snippet(&t)));
                }
            }
            Err(ClientError::Closed { url: url.clone() })
        };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                what: "waiting for an answer",
                secs: timeout.as_secs_f64(),
            })??;
    }
    let _ = ws.close(None).await;
    Ok(())
}
