//! The stacks' runs of one wire, as the stacks report reads them: each
//! (stack, scenario) pair, which loads it held, and each stack's summary
//! across the loads (saturation, the highest load held, memory at the most
//! connections, connect rate).

use super::latency::latency_of;
use crate::result::{RunResult, ScenarioResult, Stack, WireResult};
use crate::wire::Wire;

/// The p99 a load must stay under to count as held.
pub const HELD_P99_US: u64 = 50_000;
/// The share of the offered events a load must deliver to count as held.
pub const HELD_SHARE: f64 = 0.95;

/// One stack's run of one wire in one scenario.
#[derive(Debug, Clone, Copy)]
pub struct StackRun<'a> {
    pub stack: Stack,
    pub scenario: &'a ScenarioResult,
    pub wire: &'a WireResult,
}

impl StackRun<'_> {
    /// Events/s the feed offered all connections.
    pub fn offered(&self) -> f64 {
        self.scenario.server.rate_hz * self.wire.connections as f64
    }

    /// The load was held: nearly all delivered, p99 under 50 ms, nothing lost.
    pub fn held(&self) -> bool {
        let w = self.wire;
        w.events_per_s >= self.offered() * HELD_SHARE
            && latency_of(w).p99 < HELD_P99_US
            && w.lost == 0
            && w.opened == w.connections
    }

    /// New connections per second, when they all opened at once (a ramp
    /// caps the rate at its own).
    pub fn connect_rate(&self) -> Option<f64> {
        let s = self.wire.connected_in_s?;
        (self.scenario.scenario.ramp_per_s == 0.0 && s > 0.0)
            .then(|| self.wire.connections as f64 / s)
    }
}

/// Every stack run of `wire`, in result order.
pub fn runs_of(result: &RunResult, wire: Wire) -> Vec<StackRun<'_>> {
    result
        .scenarios
        .iter()
        .filter_map(|s| Some((s.stack?, s)))
        .flat_map(|(stack, s)| {
            s.wires
                .iter()
                .filter(move |w| w.wire == wire)
                .map(move |w| StackRun {
                    stack,
                    scenario: s,
                    wire: w,
                })
        })
        .collect()
}

/// The wires some stack ran, in report order.
pub fn wires_of(result: &RunResult) -> Vec<Wire> {
    Wire::EVERY
        .into_iter()
        .filter(|&w| !runs_of(result, w).is_empty())
        .collect()
}

/// One stack's figures across the scenarios of a wire.
#[derive(Debug, Clone, Copy)]
pub struct StackSummary<'a> {
    pub stack: Stack,
    /// The run with the most events/s delivered.
    pub saturation: StackRun<'a>,
    /// The highest offered events/s held at the sweep's connection count.
    pub held: Option<f64>,
    /// The run with the most connections (memory per connection).
    pub most_connections: StackRun<'a>,
    pub connect_rate: Option<f64>,
}

/// The connection count most scenarios ran (the rate sweep's).
pub fn sweep_connections(runs: &[StackRun<'_>]) -> usize {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|(c, _)| *c == r.wire.connections) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.wire.connections, 1)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(c, n)| (n, std::cmp::Reverse(c)))
        .map_or(0, |(c, _)| c)
}

/// Each stack's summary, in stack order.
pub fn summaries<'a>(runs: &[StackRun<'a>]) -> Vec<StackSummary<'a>> {
    let sweep = sweep_connections(runs);
    let mut stacks: Vec<Stack> = runs.iter().map(|r| r.stack).collect();
    stacks.sort();
    stacks.dedup();
    stacks
        .into_iter()
        .filter_map(|stack| {
            let mine: Vec<&StackRun<'a>> = runs.iter().filter(|r| r.stack == stack).collect();
            let saturation = **mine
                .iter()
                .max_by(|a, b| a.wire.events_per_s.total_cmp(&b.wire.events_per_s))?;
            let most_connections = **mine.iter().max_by_key(|r| r.wire.connections)?;
            let held = mine
                .iter()
                .filter(|r| r.wire.connections == sweep && r.held())
                .map(|r| r.offered())
                .fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.max(v)))
                });
            let connect_rate = mine
                .iter()
                .filter_map(|r| r.connect_rate())
                .fold(None, |best: Option<f64>, v| {
                    Some(best.map_or(v, |b| b.max(v)))
                });
            Some(StackSummary {
                stack,
                saturation,
                held,
                most_connections,
                connect_rate,
            })
        })
        .collect()
}
