//! The "choose" table under the Answer: one row per situation a team is
//! in, one column per choice (SSE over HTTP/1.1, SSE over HTTP/2,
//! WebSocket), and in each cell the measured fact that decides it, or
//! [`NOT_MEASURED`] when this run has no figure for it.

use super::document::{Align, Table};
use super::format::{bytes, cpu_us, us};
use super::run_facts::{p99, server_cost, Facts};
use crate::result::{Protocol, ScenarioResult};
use crate::wire::Wire;

/// A cell whose figure this run lacks.
pub const NOT_MEASURED: &str = "not measured in this run";

/// One choice: a column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    SseH1,
    SseH2,
    Ws,
}

const CHOICES: [Choice; 3] = [Choice::SseH1, Choice::SseH2, Choice::Ws];

impl Choice {
    /// The wires that count as this choice, in order of preference: the
    /// first one the run measured is shown.
    fn wires(self) -> &'static [Wire] {
        match self {
            Choice::SseH1 => &[Wire::SseH1],
            Choice::SseH2 => &[Wire::SseH2, Wire::SseH2c],
            Choice::Ws => &[Wire::WsH1, Wire::WsH2, Wire::WsH2c],
        }
    }
}

/// A row's cell for one choice, or `None` when this run has no figure.
type Cell = fn(&Facts, Choice) -> Option<String>;

/// The table: situations down, choices across.
pub fn table(f: &Facts) -> Table {
    let rows: [(&str, Cell); 6] = [
        ("browser-to-server feed only", feed_only),
        ("many tabs", many_tabs),
        ("chat / streamed answers", chat),
        ("bidirectional", bidirectional),
        ("behind a proxy", proxy),
        ("mobile", mobile),
    ];
    Table {
        header: vec![
            "situation".into(),
            "SSE over HTTP/1.1".into(),
            "SSE over HTTP/2".into(),
            "WebSocket".into(),
        ],
        align: vec![Align::Left; 4],
        rows: rows
            .iter()
            .map(|(name, cell)| {
                std::iter::once(name.to_string())
                    .chain(
                        CHOICES
                            .iter()
                            .map(|c| cell(f, *c).unwrap_or_else(|| NOT_MEASURED.into())),
                    )
                    .collect()
            })
            .collect(),
    }
}

/// Memory, CPU and p99 at the most connections this run held.
fn feed_only(f: &Facts, c: Choice) -> Option<String> {
    let run = f.largest()?;
    let w = c.wires().iter().find_map(|w| run.wire(*w))?;
    let mut cell = format!("{}: ", w.wire);
    if let Some((mem, cpu)) = server_cost(w) {
        cell.push_str(&format!(
            "{}/connection, {}/event, ",
            bytes(mem),
            cpu_us(cpu)
        ));
    }
    match p99(w) {
        Some(v) => cell.push_str(&format!("p99 {}", us(v))),
        None => cell.push_str("latency not measured"),
    }
    cell.push_str(&format!(
        " at {} connections",
        super::format::count(run.connections() as f64)
    ));
    Some(cell)
}

/// The emulated mobile link (a rate limit, delay and loss; the lossiest
/// such link if there are several): p99, late events and losses.
fn mobile(f: &Facts, c: Choice) -> Option<String> {
    let s = f
        .network
        .iter()
        .filter(|s| {
            s.scenario
                .link
                .as_ref()
                .is_some_and(|l| l.rate_bps.is_some())
        })
        .max_by(|a, b| {
            let loss =
                |s: &&ScenarioResult| s.scenario.link.as_ref().map_or(0.0, |l| l.loss_percent);
            loss(a).total_cmp(&loss(b))
        })?;
    let w = c
        .wires()
        .iter()
        .find_map(|w| s.wires.iter().find(|r| r.wire == *w))?;
    let late = w
        .network
        .as_ref()
        .map(|n| format!(", {:.1} % of events late", n.stalls.stall_fraction * 100.0))
        .unwrap_or_default();
    let latency = p99(w).map_or("latency not measured".into(), |v| format!("p99 {}", us(v)));
    Some(format!(
        "{}: {latency}{late}, {} lost ({})",
        w.wire, w.lost, s.scenario.name
    ))
}

/// The browser model's pools: how many streams one profile holds.
fn many_tabs(f: &Facts, c: Choice) -> Option<String> {
    let (l, _) = f.limit.as_ref()?;
    match c {
        Choice::SseH1 | Choice::SseH2 => {
            let protocol = if c == Choice::SseH1 {
                Protocol::H1
            } else {
                Protocol::H2
            };
            let cases = f.plain_cases(protocol);
            let most = cases.iter().max_by_key(|c| c.streams_asked)?;
            Some(format!(
                "{} of {} streams opened on {} connection{}, {} waiting ({})",
                most.streams_opened,
                most.streams_asked,
                most.connections,
                if most.connections == 1 { "" } else { "s" },
                most.streams_pending,
                most.label
            ))
        }
        Choice::Ws => {
            let (opened, asked) = l
                .cases
                .iter()
                .fold((0, 0), |(o, a), c| (o + c.ws_opened, a + c.ws_asked));
            (asked > 0).then(|| format!("{opened} of {asked} opened, outside the browser's pool"))
        }
    }
}

/// Time to first token and the gap between tokens.
fn chat(f: &Facts, c: Choice) -> Option<String> {
    let chat = f.chat?;
    let w = c
        .wires()
        .iter()
        .find_map(|w| chat.wires.iter().find(|x| x.wire == *w))?;
    Some(format!(
        "{}: first token p50 {}, inter-token p99 {}",
        w.wire,
        us(w.ttft_us.p50),
        us(w.inter_token_us.p99)
    ))
}

/// Round-trip time at the most clients the echo scenario ran.
fn bidirectional(f: &Facts, c: Choice) -> Option<String> {
    let echo = f.echo?;
    let most = echo.levels.iter().map(|l| l.clients).max()?;
    let l = c.wires().iter().find_map(|w| {
        echo.levels
            .iter()
            .find(|l| l.wire == *w && l.clients == most)
    })?;
    let how = if l.wire.is_ws() {
        "one socket both ways"
    } else {
        "stream + a POST per message"
    };
    Some(format!(
        "{}: round trip p50 {} at {} clients ({how})",
        l.wire,
        us(l.rtt_us.p50),
        super::format::count(most as f64)
    ))
}

/// What each edge config delivered on this choice's wire.
fn proxy(f: &Facts, c: Choice) -> Option<String> {
    let cells: Vec<String> = f.edge.iter().filter_map(|s| edge_cell(s, c)).collect();
    (!cells.is_empty()).then(|| cells.join("; "))
}

fn edge_cell(s: &ScenarioResult, c: Choice) -> Option<String> {
    let e = s.server.edge.as_ref()?;
    let w = c
        .wires()
        .iter()
        .find_map(|w| s.wires.iter().find(|x| x.wire == *w))?;
    let latency = p99(w).map_or("latency not measured".into(), |v| format!("p99 {}", us(v)));
    Some(format!(
        "{} {} ({}): {} of {} open, {latency}",
        e.kind, e.config, w.wire, w.opened, w.connections
    ))
}
