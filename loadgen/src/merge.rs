//! `loadgen merge DIR... --out DIR`: one result from runs of the same
//! scenarios taken on several machines (or processes), as if one load
//! generator had held every connection.
//!
//! What is combined, and how:
//! - Histograms exactly: decoded, added, re-encoded ([`Recorder::merge`]),
//!   so percentiles of the merge are those of all events together, not an
//!   average of percentiles. Counters, connections, events, bytes and rates
//!   are summed; per-second series are added element-wise, second i of each
//!   source counting from its own start; `hold_s` and `final_id` take the
//!   largest.
//! - Load-generator cost: summed (each source is its own process); CPU per
//!   event is recomputed as total CPU over total events.
//! - Server cost: when the sources ran their own servers (embedded, or
//!   external ones at different addresses), summed like the load generator's,
//!   and memory per connection recomputed over all connections. When every
//!   source loaded the same external server, each measured that one
//!   process while all held their connections together, so the merge takes
//!   the lowest RSS before, the highest RSS held and the highest CPU, which
//!   assumes the holds overlapped (they must, for the merge to describe one
//!   load).
//! - Problems are concatenated, each prefixed with its source. The
//!   environment lists every machine when they differ (cores and memory are
//!   then the totals), and the command line becomes `loadgen merge ...`.
//!
//! Only feed scenarios merge: chat, echo, faults (and any other section
//! beyond the feed) are refused, as are results whose scenarios, wires or
//! feed settings differ.

use std::collections::BTreeMap;

use crate::measure::{add_network, Recorder};
use crate::result::{
    Environment, HistogramError, LoadgenCost, Measured, NetworkResult, RunResult, ScenarioResult,
    ServerCost, WireResult, SCHEMA_VERSION,
};
use crate::wire::Wire;

/// Why results could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("merge needs at least two results, got {0}")]
    TooFew(usize),
    /// The runs hold different scenarios.
    #[error("{0}: only runs of the same scenarios merge")]
    Scenarios(String),
    /// A scenario ran different wires.
    #[error("scenario `{scenario}`: {detail}: only the same wires merge")]
    Wires { scenario: String, detail: String },
    /// A scenario's feed differs.
    #[error("scenario `{scenario}`: {detail}: these are different scenarios")]
    Settings { scenario: String, detail: String },
    #[error("scenario `{scenario}` holds {sections} results, which do not merge: merge runs of feed scenarios only (`loadgen run`, `loadgen suite --feed-only`)")]
    NotFeed { scenario: String, sections: String },
    #[error("scenario `{scenario}`, wire {wire}, {source_label}: {source}")]
    Histogram {
        scenario: String,
        wire: Wire,
        source_label: String,
        source: HistogramError,
    },
}

/// Merges `sources`, each named by a label (its folder) for messages.
pub fn merge(sources: &[(String, RunResult)]) -> Result<RunResult, MergeError> {
    let [(first_label, first), rest @ ..] = sources else {
        return Err(MergeError::TooFew(0));
    };
    if rest.is_empty() {
        return Err(MergeError::TooFew(1));
    }
    let names = |r: &RunResult| {
        let mut n: Vec<String> = r
            .scenarios
            .iter()
            .map(|s| match s.stack {
                Some(stack) => format!("{} on {stack}", s.scenario.name),
                None => s.scenario.name.clone(),
            })
            .collect();
        n.sort();
        n.join(", ")
    };
    for (label, r) in rest {
        if names(r) != names(first) {
            return Err(MergeError::Scenarios(format!(
                "{label} has scenarios [{}], {first_label} has [{}]",
                names(r),
                names(first)
            )));
        }
    }
    let mut scenarios = Vec::new();
    for s in &first.scenarios {
        let parts: Vec<(&String, &ScenarioResult)> = sources
            .iter()
            .filter_map(|(label, r)| {
                let found = r
                    .scenarios
                    .iter()
                    .find(|o| o.scenario.name == s.scenario.name && o.stack == s.stack)?;
                Some((label, found))
            })
            .collect();
        scenarios.push(merge_scenario(&parts)?);
    }
    let labelled = |label: &String, p: &String| format!("[{label}] {p}");
    Ok(RunResult {
        schema_version: SCHEMA_VERSION,
        tool: first.tool.clone(),
        name: first.name.clone(),
        started_at: sources
            .iter()
            .map(|(_, r)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: sources
            .iter()
            .map(|(_, r)| r.finished_at.clone())
            .max()
            .unwrap_or_default(),
        complete: sources.iter().all(|(_, r)| r.complete),
        problems: sources
            .iter()
            .flat_map(|(l, r)| r.problems.iter().map(move |p| labelled(l, p)))
            .collect(),
        skipped: first.skipped.clone(),
        environment: merge_environment(sources),
        scenarios,
    })
}

fn merge_scenario(parts: &[(&String, &ScenarioResult)]) -> Result<ScenarioResult, MergeError> {
    let (first_label, first) = parts[0];
    let name = &first.scenario.name;
    let wires = |s: &ScenarioResult| {
        let mut w: Vec<Wire> = s.wires.iter().map(|w| w.wire).collect();
        w.sort();
        w.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ")
    };
    for (label, s) in parts {
        if let Some(section) = s.section.name() {
            return Err(MergeError::NotFeed {
                scenario: name.clone(),
                sections: section.to_string(),
            });
        }
        if wires(s) != wires(first) {
            return Err(MergeError::Wires {
                scenario: name.clone(),
                detail: format!(
                    "{label} ran wires [{}], {first_label} ran [{}]",
                    wires(s),
                    wires(first)
                ),
            });
        }
        let checks = [
            ("rate_hz", first.server.rate_hz, s.server.rate_hz),
            (
                "payload_bytes",
                first.server.payload_bytes as f64,
                s.server.payload_bytes as f64,
            ),
            (
                "duration_s",
                first.scenario.duration_s,
                s.scenario.duration_s,
            ),
        ];
        for (what, expected, found) in checks {
            if expected != found {
                return Err(MergeError::Settings {
                    scenario: name.clone(),
                    detail: format!("{what} is {expected} in {first_label} but {found} in {label}"),
                });
            }
        }
    }
    let shared_server = parts
        .iter()
        .all(|(_, s)| s.server.mode == "external" && s.server.http_url == first.server.http_url);
    let mut merged = first.clone();
    merged.scenario.connections = parts.iter().map(|(_, s)| s.scenario.connections).sum();
    merged.wires = Vec::new();
    for w in &first.wires {
        let same: Vec<(&String, &WireResult)> = parts
            .iter()
            .filter_map(|(l, s)| Some((*l, s.wires.iter().find(|o| o.wire == w.wire)?)))
            .collect();
        merged.wires.push(merge_wire(name, &same, shared_server)?);
    }
    Ok(merged)
}

fn merge_wire(
    scenario: &str,
    parts: &[(&String, &WireResult)],
    shared_server: bool,
) -> Result<WireResult, MergeError> {
    let first = parts[0].1;
    let decode = |label: &String, w: &WireResult| {
        Recorder::from_snapshot(&w.recorder).map_err(|source| MergeError::Histogram {
            scenario: scenario.to_string(),
            wire: w.wire,
            source_label: label.clone(),
            source,
        })
    };
    let mut recorder = decode(parts[0].0, first)?;
    for (label, w) in &parts[1..] {
        recorder.merge(&decode(label, w)?);
    }
    let snap = recorder
        .snapshot()
        .map_err(|source| MergeError::Histogram {
            scenario: scenario.to_string(),
            wire: first.wire,
            source_label: "the merge".into(),
            source,
        })?;
    let sum = |f: fn(&WireResult) -> u64| parts.iter().map(|(_, w)| f(w)).sum::<u64>();
    let sum_f = |f: fn(&WireResult) -> f64| parts.iter().map(|(_, w)| f(w)).sum::<f64>();
    let events_in_hold = sum(|w| w.events_in_hold);
    let mut protocols_seen = BTreeMap::new();
    let mut client_protocols = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut first_errors = BTreeMap::new();
    for (_, w) in parts {
        for (k, v) in &w.protocols_seen {
            *protocols_seen.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &w.client_protocols {
            *client_protocols.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &w.errors {
            *errors.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &w.first_errors {
            first_errors.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let h2: Vec<u64> = parts.iter().filter_map(|(_, w)| w.h2_connections).collect();
    Ok(WireResult {
        wire: first.wire,
        connections: parts.iter().map(|(_, w)| w.connections).sum(),
        opened: parts.iter().map(|(_, w)| w.opened).sum(),
        h2_connections: if h2.is_empty() {
            None
        } else {
            Some(h2.iter().sum())
        },
        protocols_seen,
        client_protocols,
        hold_s: parts.iter().map(|(_, w)| w.hold_s).fold(0.0, f64::max),
        events_in_hold,
        events_per_s: sum_f(|w| w.events_per_s),
        bytes_per_s: sum_f(|w| w.bytes_per_s),
        final_id: parts.iter().map(|(_, w)| w.final_id).max().unwrap_or(0),
        lost: sum(|w| w.lost),
        missing_at_end: sum(|w| w.missing_at_end),
        duplicates: sum(|w| w.duplicates),
        gap_events: sum(|w| w.gap_events),
        gap_missing: sum(|w| w.gap_missing),
        reconnects: sum(|w| w.reconnects),
        errors,
        first_errors,
        latency_us: snap.latency_us.clone(),
        latency_hold_us: merge_hold_latency(parts),
        connect_us: snap.connect_us.clone(),
        first_event_us: snap.first_event_us.clone(),
        reconnect_us: snap.reconnect_us.clone(),
        server: merge_server(parts, events_in_hold, shared_server),
        // Each part went through its own proxy, if any: not added up.
        proxy: match parts {
            [(_, only)] => only.proxy.clone(),
            _ => None,
        },
        loadgen: LoadgenCost::measured(
            sum(|w| w.loadgen.cpu_us_hold),
            events_in_hold,
            sum(|w| w.loadgen.rss_bytes),
            // Known only when every part says what it held before.
            parts.iter().map(|(_, w)| w.loadgen.rss_before).sum(),
            parts.iter().map(|(_, w)| w.opened).sum(),
        ),
        problems: parts
            .iter()
            .flat_map(|(l, w)| w.problems.iter().map(move |p| format!("[{l}] {p}")))
            .collect(),
        processes: parts.iter().map(|(_, w)| w.processes).sum(),
        measured: Measured {
            latency: parts.iter().any(|(_, w)| w.measured.latency),
            loss: parts.iter().any(|(_, w)| w.measured.loss),
        },
        // Machines connected at once: the slowest one says when all were.
        connected_in_s: parts
            .iter()
            .map(|(_, w)| w.connected_in_s)
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.into_iter().fold(0.0, f64::max)),
        recorder: snap,
        network: merge_network(scenario, parts)?,
    })
}

/// Every source's link figures added (exact: histograms merged); `None`
/// unless every source ran over a link.
fn merge_network(
    scenario: &str,
    parts: &[(&String, &WireResult)],
) -> Result<Option<NetworkResult>, MergeError> {
    let mut merged: Option<NetworkResult> = None;
    for (label, w) in parts {
        let Some(n) = &w.network else {
            return Ok(None);
        };
        merged = Some(match merged {
            None => n.clone(),
            Some(m) => add_network(&m, n).map_err(|source| MergeError::Histogram {
                scenario: scenario.to_string(),
                wire: w.wire,
                source_label: (*label).clone(),
                source,
            })?,
        });
    }
    Ok(merged)
}

/// See the module doc: summed for separate servers, overlapped for one.
/// `None` unless every source measured the server.
fn merge_server(parts: &[(&String, &WireResult)], events: u64, shared: bool) -> Option<ServerCost> {
    let costs: Vec<&ServerCost> = parts
        .iter()
        .map(|(_, w)| w.server.as_ref())
        .collect::<Option<_>>()?;
    let connections: usize = parts.iter().map(|(_, w)| w.opened).sum();
    let (before, held, after, cpu) = if shared {
        (
            costs.iter().map(|c| c.rss_before).min().unwrap_or(0),
            costs.iter().map(|c| c.rss_held).max().unwrap_or(0),
            costs.iter().map(|c| c.rss_after).max().unwrap_or(0),
            costs.iter().map(|c| c.cpu_us_hold).max().unwrap_or(0),
        )
    } else {
        (
            costs.iter().map(|c| c.rss_before).sum(),
            costs.iter().map(|c| c.rss_held).sum(),
            costs.iter().map(|c| c.rss_after).sum(),
            costs.iter().map(|c| c.cpu_us_hold).sum(),
        )
    };
    Some(ServerCost {
        rss_before: before,
        rss_held: held,
        rss_after: after,
        rss_after_s: costs.iter().filter_map(|c| c.rss_after_s).reduce(f64::max),
        rss_per_connection: if connections > 0 {
            held.saturating_sub(before) as f64 / connections as f64
        } else {
            0.0
        },
        cpu_us_hold: cpu,
        cpu_us_per_event: per_event(cpu, events),
    })
}

fn per_event(cpu_us: u64, events: u64) -> f64 {
    if events > 0 {
        cpu_us as f64 / events as f64
    } else {
        0.0
    }
}

/// The first source's environment when all machines are alike; otherwise
/// every machine listed, with cores and memory totalled.
fn merge_environment(sources: &[(String, RunResult)]) -> Environment {
    let envs: Vec<&Environment> = sources.iter().map(|(_, r)| &r.environment).collect();
    let mut e = envs[0].clone();
    let distinct = |f: fn(&Environment) -> &String| {
        let mut seen: Vec<&String> = Vec::new();
        for env in &envs {
            if !seen.contains(&f(env)) {
                seen.push(f(env));
            }
        }
        seen.into_iter().cloned().collect::<Vec<_>>().join(" | ")
    };
    let alike = envs.iter().all(|o| {
        o.cpu_model == e.cpu_model && o.cores == e.cores && o.memory_bytes == e.memory_bytes
    });
    if !alike {
        e.cpu_model = sources
            .iter()
            .map(|(l, r)| {
                let env = &r.environment;
                format!(
                    "{l}: {} ({} cores, {})",
                    env.cpu_model,
                    env.cores,
                    crate::report::bytes(env.memory_bytes as f64)
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        e.cores = envs.iter().map(|o| o.cores).sum();
        e.memory_bytes = envs.iter().map(|o| o.memory_bytes).sum();
    }
    e.kernel = distinct(|o| &o.kernel);
    e.rustc = distinct(|o| &o.rustc);
    e.git_commit = distinct(|o| &o.git_commit);
    e.open_files_limit = envs.iter().map(|o| o.open_files_limit).min().unwrap_or(0);
    e.command_line = ["loadgen", "merge"]
        .into_iter()
        .map(String::from)
        .chain(sources.iter().map(|(l, _)| l.clone()))
        .collect();
    e
}

/// The hold-only latency histograms added exactly; absent if any part lacks one.
fn merge_hold_latency(parts: &[(&String, &WireResult)]) -> Option<crate::result::HistogramSummary> {
    let mut h = crate::result::new_histogram();
    for (_, w) in parts {
        h.add(w.latency_hold_us.as_ref()?.decode().ok()?).ok()?;
    }
    crate::result::summarize(&h).ok()
}
