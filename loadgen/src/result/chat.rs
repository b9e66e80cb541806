//! The chat scenario's settings and figures: users ask questions, answers
//! stream token by token (see `scenarios::chat`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::{Bounds, DAY_S};
use super::histogram::HistogramSummary;
use crate::wire::Wire;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSpec {
    #[schemars(with = "Vec<crate::wire::WireSchema>")]
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

impl ChatSpec {
    /// Concurrent users per wire.
    pub const USERS: Bounds<usize> = Bounds::new(1, 100_000, "");
    /// Questions each user asks in turn.
    pub const QUESTIONS: Bounds<usize> = Bounds::new(1, 10_000, "");
    /// Tokens per answer: what the server's `/chat` accepts.
    pub const TOKENS: Bounds<u32> = Bounds::new(1, server::chat::MAX_TOKENS, "");
    /// Tokens per second: the server's limit, with a floor that keeps one
    /// token's wait under two minutes.
    pub const TOKEN_RATE: Bounds<f64> = Bounds::new(0.01, server::chat::MAX_RATE, " tokens/s");
    /// The browser model's cap on SSE-over-HTTP/1.1 requests in flight.
    pub const H1_POOL_LIMIT: Bounds<usize> = Bounds::new(1, 10_000, "");

    /// Checks every number against its range, and that the answers end within a day.
    pub fn validate(&self) -> Result<(), String> {
        let named = |e: String| format!("chat: {e}");
        if self.wires.is_empty() {
            return Err(named("at least one wire".into()));
        }
        Self::USERS
            .check_named("users", self.users)
            .map_err(named)?;
        Self::QUESTIONS
            .check_named("questions", self.questions)
            .map_err(named)?;
        Self::TOKENS
            .check_named("tokens", self.tokens)
            .map_err(named)?;
        Self::TOKEN_RATE
            .check_named("token_rate", self.token_rate)
            .map_err(named)?;
        if let Some(n) = self.h1_pool_limit {
            Self::H1_POOL_LIMIT
                .check_named("h1_pool_limit", n)
                .map_err(named)?;
        }
        let total_s = self.answer_seconds() * self.questions as f64;
        if total_s > DAY_S {
            return Err(named(format!(
                "{} questions of {} tokens at {} tokens/s take {total_s:.0} s: at most {DAY_S} s",
                self.questions, self.tokens, self.token_rate
            )));
        }
        Ok(())
    }

    fn answer_seconds(&self) -> f64 {
        f64::from(self.tokens) / self.token_rate
    }

    /// How long one answer takes on the server's schedule ([`Duration::MAX`]
    /// for settings [`validate`](Self::validate) refuses).
    pub fn answer_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.answer_seconds()).unwrap_or(Duration::MAX)
    }
}

/// The `chat` section of a scenario result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatResult {
    pub spec: ChatSpec,
    pub wires: Vec<ChatWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatWire {
    #[schemars(with = "crate::wire::WireSchema")]
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
