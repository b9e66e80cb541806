//! Chat-style streaming: a prompt, then an answer streamed token by token,
//! the way chat assistants reply.
//!
//! - SSE style: `POST /chat` with `{"prompt":"...","tokens":M,"rate":T}`
//!   answers with a `text/event-stream` of M `token` events at T tokens/s,
//!   then one `done` event, and the response ends. Every question is a new
//!   request, as chat front ends do it (on HTTP/1.1 each one holds a
//!   connection of the browser's six for as long as it streams).
//! - WS style: one long-lived `GET /ws/chat` socket; a message
//!   `{"type":"prompt","id":q,"prompt":"...","tokens":M,"rate":T}` is answered
//!   by `token` messages and a `done`, each carrying the prompt's `id`. One
//!   answer at a time per socket: a prompt sent meanwhile gets an `error`.
//!
//! Token k (from 0) is due at `start + k / T`; its `sent_unix_ns` is that
//! scheduled time, so a server that falls behind shows as latency. `tokens`
//! and `rate` default to `--chat-tokens` and `--chat-token-rate`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::AggregatedMessage;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::event::unix_now_ns;
use crate::hub::Permit;
use crate::sse_response::event_stream;
use crate::state::{bad_request, refused, AppState};
use crate::ws_session::{self, Conversation, Out};

/// What one prompt may ask (defined with the flags, which share them).
pub use crate::config::{
    CHAT_MAX_RATE as MAX_RATE, CHAT_MAX_TOKENS as MAX_TOKENS, CHAT_MIN_RATE as MIN_RATE,
};

/// The words answers are made of.
const WORDS: [&str; 8] = [
    "stream", "the ", "answer ", "token ", "by ", "token, ", "as ", "asked. ",
];

/// A prompt, over either transport.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Prompt {
    /// On `/ws/chat`: names the answer's messages.
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub prompt: String,
    pub tokens: Option<u32>,
    pub rate: Option<f64>,
}

/// One token of an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "type")]
    pub kind: String,
    /// The prompt's id (0 on SSE, where the response is the answer).
    pub id: u64,
    /// Index within the answer, from 0.
    pub i: u32,
    pub text: String,
    /// The token's scheduled time.
    pub sent_unix_ns: u64,
}

/// An answer being streamed: which token is next and when it is due.
#[derive(Debug)]
pub struct Answer {
    id: u64,
    tokens: u32,
    period: Duration,
    start: tokio::time::Instant,
    start_unix_ns: u64,
    next: u32,
}

impl Answer {
    /// Checks the prompt's bounds and starts the clock.
    pub fn start(prompt: &Prompt, default_tokens: u32, default_rate: f64) -> Result<Self, String> {
        let tokens = prompt.tokens.unwrap_or(default_tokens);
        let rate = prompt.rate.unwrap_or(default_rate);
        if tokens > MAX_TOKENS {
            return Err(format!("tokens must be at most {MAX_TOKENS}, got {tokens}"));
        }
        // Rejected, never clamped: `!(..)` also catches NaN.
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "rate must be between {MIN_RATE} and {MAX_RATE} tokens/s, got {rate}"
            ));
        }
        Ok(Answer {
            id: prompt.id,
            tokens,
            period: Duration::from_secs_f64(1.0 / rate),
            start: tokio::time::Instant::now(),
            start_unix_ns: unix_now_ns(),
            next: 0,
        })
    }

    fn due(&self, i: u32) -> tokio::time::Instant {
        self.start + self.period * i
    }

    /// Waits for the next token and returns its JSON, or the `done` JSON
    /// once every token went out; `None` after that.
    pub async fn next(&mut self) -> Option<(&'static str, String)> {
        if self.next > self.tokens {
            return None;
        }
        if self.next == self.tokens {
            self.next += 1;
            let done = format!(
                r#"{{"type":"done","id":{},"tokens":{}}}"#,
                self.id, self.tokens
            );
            return Some(("done", done));
        }
        let i = self.next;
        tokio::time::sleep_until(self.due(i)).await;
        self.next += 1;
        let token = Token {
            kind: "token".into(),
            id: self.id,
            i,
            text: WORDS[i as usize % WORDS.len()].into(),
            sent_unix_ns: self.start_unix_ns + (self.period * i).as_nanos() as u64,
        };
        let json = serde_json::to_string(&token).expect("a Token always serializes");
        Some(("token", json))
    }
}

/// `POST /chat`
pub async fn sse_handler(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let prompt: Prompt = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return bad_request(
                &state,
                format!("expected {{\"prompt\":\"...\",\"tokens\":M,\"rate\":T}}: {e}"),
            )
        }
    };
    let answer = match Answer::start(
        &prompt,
        state.config.chat_tokens,
        state.config.chat_token_rate,
    ) {
        Ok(a) => a,
        Err(e) => return bad_request(&state, e),
    };
    let Some(permit) = state.hub.admit() else {
        return refused(&state);
    };
    let body = SseAnswer {
        answer,
        stop: Box::pin(state.hub.stream_token().cancelled_owned()),
        state: state.clone().into_inner(),
        _permit: permit,
    };
    event_stream(
        &state,
        req.version(),
        futures_util::stream::unfold(body, SseAnswer::next_chunk),
    )
}

struct SseAnswer {
    answer: Answer,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    state: Arc<AppState>,
    _permit: Permit,
}

impl SseAnswer {
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::convert::Infallible>, SseAnswer)> {
        let (event, json) = tokio::select! {
            biased;
            _ = &mut self.stop => return None,
            next = self.answer.next() => next?,
        };
        if event == "done" {
            self.state.hub.stats.counters.chat_answers.inc();
        }
        let frame = Bytes::from(format!("event: {event}\ndata: {json}\n\n"));
        Some((Ok(frame), self))
    }
}

/// `GET /ws/chat`
pub async fn ws_handler(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let (response, socket) = match ws_session::upgrade(&req, body, &state).await? {
        Ok(upgraded) => upgraded,
        Err(refusal) => return Ok(refusal),
    };
    let chat = ChatSocket {
        answer: None,
        state: state.into_inner(),
    };
    actix_web::rt::spawn(ws_session::serve(socket, chat));
    Ok(response)
}

/// One answer at a time on one socket.
struct ChatSocket {
    answer: Option<Answer>,
    state: Arc<AppState>,
}

impl Conversation for ChatSocket {
    const AWAY: &'static str = "server closed the socket";

    /// The next token of the answer in progress; pending while none.
    async fn next(&mut self) -> Option<Out> {
        loop {
            let Some(answer) = &mut self.answer else {
                return std::future::pending().await;
            };
            match answer.next().await {
                Some((event, json)) => {
                    if event == "done" {
                        self.state.hub.stats.counters.chat_answers.inc();
                    }
                    return Some(Out::Text(json.into()));
                }
                None => self.answer = None,
            }
        }
    }

    /// A prompt starts an answer; a bad one, or one while an answer
    /// streams, gets an `error` message.
    fn on_message(&mut self, message: AggregatedMessage) -> Option<Out> {
        let AggregatedMessage::Text(text) = message else {
            return None;
        };
        match self.prompt(&text) {
            Ok(answer) => {
                self.answer = Some(answer);
                None
            }
            Err(reply) => Some(Out::Text(reply.into())),
        }
    }

    /// A client waiting for its answer may be silent meanwhile.
    fn may_time_out(&self) -> bool {
        self.answer.is_none()
    }
}

impl ChatSocket {
    /// Starts an answer, or says why not (as an `error` message).
    fn prompt(&self, text: &str) -> Result<Answer, String> {
        let error = |id: u64, reason: &str| {
            serde_json::json!({ "type": "error", "id": id, "reason": reason }).to_string()
        };
        let prompt: Prompt = serde_json::from_str(text).map_err(|e| {
            error(
                0,
                &format!("expected {{\"type\":\"prompt\",\"id\":q,\"prompt\":\"...\"}}: {e}"),
            )
        })?;
        if self.answer.is_some() {
            return Err(error(
                prompt.id,
                "an answer is still streaming on this socket",
            ));
        }
        let config = &self.state.config;
        Answer::start(&prompt, config.chat_tokens, config.chat_token_rate)
            .map_err(|e| error(prompt.id, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_m_tokens_on_schedule_then_done() {
        let prompt = Prompt {
            id: 9,
            tokens: Some(3),
            rate: Some(10.0),
            ..Default::default()
        };
        let mut a = Answer::start(&prompt, 1, 1.0).unwrap();
        let t0 = tokio::time::Instant::now();
        let mut got = Vec::new();
        while let Some((event, json)) = a.next().await {
            got.push((event, t0.elapsed().as_millis(), json));
        }
        assert_eq!(got.len(), 4);
        assert_eq!(
            got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
            [("token", 0), ("token", 100), ("token", 200), ("done", 200)]
        );
        let t: Token = serde_json::from_str(&got[1].2).unwrap();
        assert_eq!((t.id, t.i), (9, 1));
        assert_eq!(got[3].2, r#"{"type":"done","id":9,"tokens":3}"#);
    }

    #[test]
    fn prompts_are_bounded() {
        let p = |tokens, rate| Prompt {
            tokens: Some(tokens),
            rate: Some(rate),
            ..Default::default()
        };
        assert!(Answer::start(&p(MAX_TOKENS + 1, 1.0), 1, 1.0).is_err());
        assert!(Answer::start(&p(1, 0.0), 1, 1.0).is_err());
        assert!(Answer::start(&p(1, f64::NAN), 1, 1.0).is_err());
        // Found by hand: a tiny positive rate made a period no Duration holds.
        assert!(Answer::start(&p(3, 1e-300), 1, 1.0).is_err());
        assert!(Answer::start(&p(3, MIN_RATE), 1, 1.0).is_ok());
    }
}
