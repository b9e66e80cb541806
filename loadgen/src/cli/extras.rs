//! `loadgen chat`, `loadgen echo` and `loadgen faults`: the scenarios
//! beyond the feed, one subcommand each.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::feed::{parse_wires, WireList};
use super::numbers::{ranged, seconds};
use super::server::ServerArgs;
use crate::result::{ChatSpec, EchoSpec, FaultSpec};
use crate::scenarios::Extra;

/// Where a scenario beyond the feed writes, and which server it loads.
#[derive(Debug, Args)]
pub struct ExtraOut {
    /// Wires to run, comma-separated: sse-h1, sse-h2, sse-h2c, ws-h1, or all
    /// (those four), and ws-h2 or ws-h2c (WebSocket over HTTP/2, RFC 8441)
    /// against a server or edge that offers it.
    #[arg(long, default_value = "all", value_parser = parse_wires)]
    pub wire: WireList,
    /// Where to write result.json (default: results/<timestamp>-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Concurrent users per wire.
    #[arg(long, default_value_t = 20, value_parser = ranged(ChatSpec::USERS))]
    pub users: usize,
    /// Questions each user asks, one after another.
    #[arg(long, default_value_t = 3, value_parser = ranged(ChatSpec::QUESTIONS))]
    pub questions: usize,
    /// Tokens per answer.
    #[arg(long, default_value_t = 20, value_parser = ranged(ChatSpec::TOKENS))]
    pub tokens: u32,
    /// Tokens per second.
    #[arg(long, default_value_t = 100.0, value_parser = ranged(ChatSpec::TOKEN_RATE))]
    pub token_rate: f64,
    /// Browser model for sse-h1: at most this many requests in flight (a browser's 6).
    #[arg(long, value_parser = ranged(ChatSpec::H1_POOL_LIMIT))]
    pub h1_pool_limit: Option<usize>,
    #[command(flatten)]
    pub common: ExtraOut,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Client counts, comma-separated, run one after another.
    #[arg(long, default_value = "1,100,1000", value_delimiter = ',', value_parser = ranged(EchoSpec::CLIENTS))]
    pub clients: Vec<usize>,
    /// How long each (wire, client count) runs.
    #[arg(long, default_value = "3s", value_parser = seconds(EchoSpec::DURATION_S))]
    pub duration: Duration,
    #[command(flatten)]
    pub common: ExtraOut,
}

#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Streams per wire.
    #[arg(long, default_value_t = 50, value_parser = ranged(FaultSpec::CONNECTIONS))]
    pub connections: usize,
    /// Feed rate (events/s).
    #[arg(long, default_value_t = 50.0, value_parser = ranged(FaultSpec::RATE_HZ))]
    pub rate: f64,
    /// The server's replay ring (events): the resume window.
    #[arg(long, default_value_t = 32, value_parser = ranged(FaultSpec::REPLAY))]
    pub replay: usize,
    /// Reconnect delay (ms): the SSE retry the server sends, and the WS client's.
    #[arg(long, default_value_t = 100, value_parser = ranged(FaultSpec::RETRY_MS))]
    pub retry_ms: u64,
    /// Fraction of the streams dropped each time.
    #[arg(long, default_value_t = 0.5, value_parser = ranged(FaultSpec::DROP_FRACTION))]
    pub drop_fraction: f64,
    /// How often streams are dropped.
    #[arg(long, default_value = "1s", value_parser = seconds(FaultSpec::SECONDS))]
    pub drop_every: Duration,
    /// How long the drops go on (the `within` phase).
    #[arg(long, default_value = "4s", value_parser = seconds(FaultSpec::SECONDS))]
    pub duration: Duration,
    /// The restart's outage in the `beyond` phase (default: twice the ring's span).
    #[arg(long, value_parser = ranged(FaultSpec::OUTAGE_MS))]
    pub outage_ms: Option<u64>,
    /// Skip the `beyond` phase.
    #[arg(long)]
    pub no_beyond: bool,
    #[command(flatten)]
    pub common: ExtraOut,
}

impl ChatArgs {
    /// The chat scenario these flags ask for, checked.
    pub fn extra(&self) -> Result<Extra, String> {
        let spec = ChatSpec {
            wires: self.common.wire.0.clone(),
            users: self.users,
            questions: self.questions,
            tokens: self.tokens,
            token_rate: self.token_rate,
            h1_pool_limit: self.h1_pool_limit,
        };
        spec.validate()
            .map_err(|e| format!("{e} (--questions, --tokens, --token-rate)"))?;
        Ok(Extra::Chat(spec))
    }
}

impl EchoArgs {
    /// The echo scenario these flags ask for, checked.
    pub fn extra(&self) -> Result<Extra, String> {
        let spec = EchoSpec {
            wires: self.common.wire.0.clone(),
            clients: self.clients.clone(),
            duration_s: self.duration.as_secs_f64(),
        };
        spec.validate()
            .map_err(|e| format!("{e} (--clients, --duration)"))?;
        Ok(Extra::Echo(spec))
    }
}

impl FaultArgs {
    /// The faults scenario these flags ask for, checked.
    pub fn extra(&self) -> Result<Extra, String> {
        let spec = FaultSpec {
            wires: self.common.wire.0.clone(),
            connections: self.connections,
            rate_hz: self.rate,
            replay: self.replay,
            retry_ms: self.retry_ms,
            duration_s: self.duration.as_secs_f64(),
            drop_fraction: self.drop_fraction,
            drop_every_s: self.drop_every.as_secs_f64(),
            outage_ms: self.outage_ms,
            beyond: !self.no_beyond,
            ..Default::default()
        };
        spec.validate()
            .map_err(|e| format!("{e} (--replay, --rate, --outage-ms)"))?;
        Ok(Extra::Faults(spec))
    }
}
