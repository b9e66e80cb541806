//! Scenarios beyond the broadcast feed, each comparing the wires on a use
//! that differs from a clock: chat-style streamed answers ([`chat`]), round
//! trips ([`echo`]) and reconnection under faults ([`faults`]).
//!
//! Each runs against the same embedded (or external) server as the feed
//! scenarios and returns its own section of [`crate::result::ScenarioResult`].
//! Latencies go to small per-scenario HDR histograms ([`Timing`]) with the
//! recorder's precision (µs, 3 significant figures), stored encoded so
//! results merge exactly.

pub mod chat;
pub mod echo;
pub mod faults;
mod http;
mod server;
mod timing;

pub use server::ScenarioServer;
pub use timing::Timing;

use serde::{Deserialize, Serialize};

use crate::result::ScenarioResult;
use crate::runner::RunOptions;

/// One of the scenarios beyond the feed, as run by `loadgen suite` or its
/// own subcommand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Extra {
    Chat(chat::ChatSpec),
    Echo(echo::EchoSpec),
    Faults(faults::FaultSpec),
}

impl Extra {
    pub fn name(&self) -> &'static str {
        match self {
            Extra::Chat(_) => "chat",
            Extra::Echo(_) => "echo",
            Extra::Faults(_) => "faults",
        }
    }

    /// Runs it; what went wrong is in the result's `problems`.
    pub async fn run(&self, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
        match self {
            Extra::Chat(spec) => chat::run(spec, opts).await,
            Extra::Echo(spec) => echo::run(spec, opts).await,
            Extra::Faults(spec) => faults::run(spec, opts).await,
        }
    }
}

/// The suite's part beyond the feed: short runs of each, sized so the
/// whole takes about `duration_s` × 20 seconds.
pub fn suite(duration_s: f64) -> Vec<Extra> {
    vec![
        Extra::Faults(faults::FaultSpec {
            duration_s,
            ..Default::default()
        }),
        Extra::Echo(echo::EchoSpec {
            duration_s: (duration_s / 2.0).max(1.0),
            ..Default::default()
        }),
        Extra::Chat(chat::ChatSpec::default()),
    ]
}

/// Runs `extras` one after another and adds their results (and what went
/// wrong) to `result`.
pub async fn run_into(
    extras: &[Extra],
    opts: &RunOptions,
    result: &mut crate::result::RunResult,
    cancel: &tokio_util::sync::CancellationToken,
) {
    for extra in extras {
        if cancel.is_cancelled() {
            result
                .problems
                .push(format!("interrupted before scenario `{}`", extra.name()));
            break;
        }
        match extra.run(opts).await {
            Ok(r) => {
                result.problems.extend(problems_of(&r));
                result.scenarios.push(r);
            }
            Err(e) => result.problems.push(format!("{}: {e:#}", extra.name())),
        }
    }
    result.complete = result.problems.is_empty();
}

fn problems_of(r: &ScenarioResult) -> Vec<String> {
    let name = &r.scenario.name;
    let mut out = Vec::new();
    if let Some(c) = &r.chat {
        out.extend(c.wires.iter().flat_map(|w| w.problems.clone()));
    }
    if let Some(e) = &r.echo {
        out.extend(e.levels.iter().flat_map(|l| l.problems.clone()));
    }
    if let Some(f) = &r.faults {
        out.extend(f.wires.iter().flat_map(|w| w.problems.clone()));
    }
    out.into_iter().map(|p| format!("{name}: {p}")).collect()
}

/// A plain-text table of the chat, echo and faults sections, for the terminal.
pub fn summary(result: &crate::result::RunResult) -> String {
    use std::fmt::Write as _;
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = String::new();
    for r in &result.scenarios {
        if let Some(f) = &r.faults {
            let _ = writeln!(
                out,
                "faults (replay {} events at {} ev/s)",
                f.spec.replay, f.spec.rate_hz
            );
            let _ = writeln!(
                out,
                "  wire     phase   reconnect p50/p99 ms   lost  dup  gap ids  true gap"
            );
            for w in &f.wires {
                let _ = writeln!(
                    out,
                    "  {:<8} {:<7} {:>9.1} / {:<9.1} {:>6} {:>4} {:>8} {:>9}",
                    w.wire.name(),
                    w.phase,
                    ms(w.reconnect_us.p50),
                    ms(w.reconnect_us.p99),
                    w.lost,
                    w.duplicates,
                    w.gap_ids,
                    w.true_gap
                );
            }
        }
        if let Some(e) = &r.echo {
            let _ = writeln!(out, "echo (closed loop, {} s per level)", e.spec.duration_s);
            let _ = writeln!(
                out,
                "  wire     clients   rtt p50/p99 ms        round trips/s"
            );
            for l in &e.levels {
                let _ = writeln!(
                    out,
                    "  {:<8} {:>7} {:>9.3} / {:<9.3} {:>12.0}",
                    l.wire.name(),
                    l.clients,
                    ms(l.rtt_us.p50),
                    ms(l.rtt_us.p99),
                    l.round_trips_per_s
                );
            }
        }
        if let Some(c) = &r.chat {
            let _ = writeln!(
                out,
                "chat ({} users x {} questions, {} tokens at {}/s)",
                c.spec.users, c.spec.questions, c.spec.tokens, c.spec.token_rate
            );
            let _ = writeln!(
                out,
                "  wire     setup p50 ms  ttft p50/p99 ms     inter-token p99 ms  total p50 ms"
            );
            for w in &c.wires {
                let _ = writeln!(
                    out,
                    "  {:<8} {:>12.2} {:>7.2} / {:<9.2} {:>17.2} {:>13.1}",
                    w.wire.name(),
                    ms(w.setup_us.p50),
                    ms(w.ttft_us.p50),
                    ms(w.ttft_us.p99),
                    ms(w.inter_token_us.p99),
                    ms(w.total_us.p50)
                );
            }
        }
    }
    out
}
