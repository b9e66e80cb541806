//! What the Answer and the choose table draw on: the run's sections found
//! once, each with the anchor of the report section it is shown in, so every
//! sentence built from them can link to where its number comes from.
//!
//! Only what the run measured is found here; a section the run lacks is
//! `None` or empty, and the sentences built on it are left out, never
//! guessed.

use super::html::slug;
use super::latency::latency_of;
use crate::result::{
    ChatResult, EchoResult, FaultsResult, LimitResult, Protocol, RunResult, ScenarioResult,
    WireResult,
};
use crate::wire::Wire;

/// A feed scenario served directly (no edge, no other stack) with its anchor.
#[derive(Debug, Clone)]
pub struct FeedRun<'a> {
    pub scenario: &'a ScenarioResult,
    pub anchor: String,
}

impl<'a> FeedRun<'a> {
    pub fn wire(&self, wire: Wire) -> Option<&'a WireResult> {
        self.scenario.wires.iter().find(|w| w.wire == wire)
    }

    pub fn connections(&self) -> usize {
        self.scenario.scenario.connections
    }
}

/// The run's measured sections, as the Answer reads them.
#[derive(Debug)]
pub struct Facts<'a> {
    /// Direct feed scenarios, fewest connections first.
    pub feed: Vec<FeedRun<'a>>,
    pub limit: Option<(&'a LimitResult, String)>,
    pub chat: Option<&'a ChatResult>,
    pub echo: Option<&'a EchoResult>,
    pub faults: Option<&'a FaultsResult>,
    /// Anchor of the chat, echo and faults section, when any of them ran.
    pub extras_anchor: String,
    /// Feed scenarios through an edge (nginx, HAProxy).
    pub edge: Vec<&'a ScenarioResult>,
    /// Every feed scenario, direct and through an edge (the proxy
    /// section's findings compare them).
    pub all_feed: Vec<&'a ScenarioResult>,
    pub proxy_anchor: String,
    /// Feed scenarios over an emulated link (lossy, mobile, outages), in
    /// run order.
    pub network: Vec<&'a ScenarioResult>,
    pub network_anchor: String,
    /// Whether several stacks ran (the stacks section exists).
    pub stacks: bool,
    pub stacks_anchor: String,
}

/// A scenario's title as the report's heading shows it.
pub fn scenario_heading(s: &ScenarioResult) -> String {
    match s.stack {
        Some(stack) => format!("Scenario {} on {stack}", s.scenario.name),
        None => format!("Scenario {}", s.scenario.name),
    }
}

/// `#anchor` of a level-2 heading, as both renderers make it.
pub fn anchor(heading: &str) -> String {
    format!("#{}", slug(heading))
}

impl<'a> Facts<'a> {
    pub fn of(result: &'a RunResult) -> Facts<'a> {
        let mut feed: Vec<FeedRun<'a>> = result
            .scenarios
            .iter()
            .filter(|s| {
                !s.wires.is_empty()
                    && s.server.edge.is_none()
                    && s.stack.is_none()
                    && s.scenario.link.is_none()
            })
            .map(|scenario| FeedRun {
                scenario,
                anchor: anchor(&scenario_heading(scenario)),
            })
            .collect();
        feed.sort_by_key(|f| f.connections());
        let limit = result.scenarios.iter().find_map(|s| {
            s.limit().map(|l| {
                (
                    l,
                    anchor(&format!("Scenario {}: connection limits", s.scenario.name)),
                )
            })
        });
        Facts {
            feed,
            limit,
            chat: result.scenarios.iter().find_map(|s| s.chat()),
            echo: result.scenarios.iter().find_map(|s| s.echo()),
            faults: result.scenarios.iter().find_map(|s| s.faults()),
            extras_anchor: anchor("Chat, echo and faults"),
            edge: result
                .scenarios
                .iter()
                .filter(|s| !s.wires.is_empty() && s.server.edge.is_some())
                .collect(),
            all_feed: result
                .scenarios
                .iter()
                .filter(|s| !s.wires.is_empty())
                .collect(),
            proxy_anchor: anchor("Through a proxy"),
            network: result
                .scenarios
                .iter()
                .filter(|s| !s.wires.is_empty() && s.scenario.link.is_some())
                .collect(),
            network_anchor: anchor("Emulated links"),
            stacks: result.scenarios.iter().any(|s| s.stack.is_some()),
            stacks_anchor: anchor("Stacks side by side"),
        }
    }

    /// The direct feed scenario with the most connections.
    pub fn largest(&self) -> Option<&FeedRun<'a>> {
        self.feed.last()
    }

    /// The limit cases of one protocol with one profile, one host name and
    /// a stream per tab: the plain browser.
    pub fn plain_cases(&self, protocol: Protocol) -> Vec<&'a crate::result::LimitCaseResult> {
        self.limit
            .as_ref()
            .map(|(l, _)| {
                l.cases
                    .iter()
                    .filter(|c| {
                        c.case.protocol == protocol
                            && c.case.profiles == 1
                            && c.case.hosts == 1
                            && !c.case.shared_stream
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A wire's server memory per connection and CPU per event, when measured.
pub fn server_cost(w: &WireResult) -> Option<(f64, f64)> {
    w.server
        .as_ref()
        .map(|s| (s.rss_per_connection, s.cpu_us_per_event))
}

/// A wire's p99 latency (the hold's), when its events carried a send time.
pub fn p99(w: &WireResult) -> Option<u64> {
    w.measured.latency.then(|| latency_of(w).p99)
}
