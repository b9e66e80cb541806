//! Scenarios beyond the broadcast feed, each comparing the wires on a use
//! that differs from a clock: chat-style streamed answers ([`chat`]), round
//! trips ([`echo`]) and reconnection under faults ([`faults`]).
//!
//! Each runs against the same embedded (or external) server as the feed
//! scenarios (the one starter, `run::server`), opens and reads its
//! connections with the connection core (`client`, `run::connection`), and
//! returns its own section of [`crate::result::ScenarioResult`]. Latencies
//! go to small per-scenario HDR histograms (`measure::Timing`) with the
//! recorder's precision (µs, 3 significant figures), stored encoded so
//! results merge exactly.

pub mod chat;
pub mod echo;
pub mod faults;

use serde::{Deserialize, Serialize};

use crate::result::{ChatSpec, EchoSpec, FaultSpec, RunResult, ScenarioResult, Section};
use crate::run::RunOptions;

/// One of the scenarios beyond the feed, as run by `loadgen suite` or its
/// own subcommand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Extra {
    Chat(ChatSpec),
    Echo(EchoSpec),
    Faults(FaultSpec),
}

impl Extra {
    pub fn name(&self) -> &'static str {
        match self {
            Extra::Chat(_) => "chat",
            Extra::Echo(_) => "echo",
            Extra::Faults(_) => "faults",
        }
    }

    /// Checks its settings against their ranges.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Extra::Chat(spec) => spec.validate(),
            Extra::Echo(spec) => spec.validate(),
            Extra::Faults(spec) => spec.validate(),
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
        Extra::Faults(FaultSpec {
            duration_s,
            ..Default::default()
        }),
        Extra::Echo(EchoSpec {
            duration_s: (duration_s / 2.0).max(1.0),
            ..Default::default()
        }),
        Extra::Chat(ChatSpec::default()),
    ]
}

/// Runs `extras` one after another and adds their results (and what went
/// wrong) to `result`.
pub async fn run_into(
    extras: &[Extra],
    opts: &RunOptions,
    result: &mut RunResult,
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
    let problems: Vec<String> = match &r.section {
        Section::Chat(c) => c.wires.iter().flat_map(|w| w.problems.clone()).collect(),
        Section::Echo(e) => e.levels.iter().flat_map(|l| l.problems.clone()).collect(),
        Section::Faults(f) => f.wires.iter().flat_map(|w| w.problems.clone()).collect(),
        Section::Feed | Section::Limit(_) => Vec::new(),
    };
    problems
        .into_iter()
        .map(|p| format!("{name}: {p}"))
        .collect()
}
