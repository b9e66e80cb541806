//! Renders a result into the report's blocks and writes the files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::document::{Block, Chart, Document};
use super::error::{write, ReportError};
use super::findings::findings;
use super::markdown::CHART_DIR;
use super::{
    answer, charts, environment, extras, format, html, limit, markdown, network, proxy, stacks,
    tables,
};
use crate::result::{RunResult, ScenarioResult};
use crate::wire::Wire;

/// How a report is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// The wire the others are compared with (ratios in the tables). When a
    /// scenario lacks it, that scenario's first wire is used, and said so.
    pub baseline: Wire,
}

impl Default for ReportOptions {
    /// WebSocket over HTTP/1.1: the question people ask is "is SSE as good as WS?".
    fn default() -> Self {
        ReportOptions {
            baseline: Wire::WsH1,
        }
    }
}

/// The rendered report, before it is written.
#[derive(Debug, Clone)]
pub struct Report {
    pub markdown: String,
    pub html: String,
    /// Every chart, for `charts/` beside the Markdown.
    pub charts: Vec<Chart>,
}

/// Renders both files from a result.
pub fn render(result: &RunResult, opts: &ReportOptions) -> Result<Report, ReportError> {
    let doc = document_of(result, opts)?;
    Ok(Report {
        markdown: markdown::render(&doc),
        html: html::render(&doc),
        charts: doc.charts().cloned().collect(),
    })
}

/// Writes `report.md`, `report.html` and `charts/*.svg` into `dir`; returns
/// the paths of the two reports.
pub fn write_reports(
    result: &RunResult,
    dir: &Path,
    opts: &ReportOptions,
) -> Result<Vec<PathBuf>, ReportError> {
    let report = render(result, opts)?;
    let charts = dir.join(CHART_DIR);
    std::fs::create_dir_all(&charts).map_err(|source| ReportError::Write {
        path: charts.display().to_string(),
        source,
    })?;
    for chart in &report.charts {
        write(&charts.join(&chart.file), &chart.svg)?;
    }
    let md = dir.join("report.md");
    let html = dir.join("report.html");
    write(&md, &report.markdown)?;
    write(&html, &report.html)?;
    Ok(vec![md, html])
}

/// `DIR/result.json` for a folder, the path itself for a file.
pub fn result_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("result.json")
    } else {
        path.to_path_buf()
    }
}

/// The whole report as blocks: summary, findings, a section per scenario,
/// then the environment.
fn document_of(result: &RunResult, opts: &ReportOptions) -> Result<Document, ReportError> {
    let mut doc = Document::new(format!("SSE vs WebSocket: {}", result.name));
    doc.push(Block::Paragraph(run_line(result)));
    doc.push(Block::Paragraph(
        "Latency is the receive time minus the event's scheduled send time, both on one host \
         clock: a late producer shows up as latency, it is not hidden. Ratios (×) compare each \
         wire with the baseline; for events/s higher is better, for everything else lower."
            .into(),
    ));
    for block in answer::blocks(result) {
        doc.push(block);
    }
    if !result.problems.is_empty() {
        doc.push(Block::Heading(2, "Problems".into()));
        doc.push(Block::List(result.problems.clone()));
    }
    if !result.skipped.is_empty() {
        doc.push(Block::Heading(2, "Skipped".into()));
        doc.push(Block::List(result.skipped.clone()));
    }
    let feed: Vec<&ScenarioResult> = result
        .scenarios
        .iter()
        .filter(|s| !s.wires.is_empty())
        .collect();
    let limits: Vec<&ScenarioResult> = result
        .scenarios
        .iter()
        .filter(|s| s.limit().is_some())
        .collect();
    if !feed.is_empty() || !limits.is_empty() {
        doc.push(Block::Heading(2, "Findings".into()));
        doc.push(Block::Paragraph(
            "Generated from the numbers below; a difference under 5 % is not called a win.".into(),
        ));
        for s in result.scenarios.iter() {
            let list = match s.limit() {
                Some(l) => limit::findings(l),
                None if !s.wires.is_empty() => findings(s),
                None => continue,
            };
            doc.push(Block::Heading(3, scenario_title(s)));
            doc.push(Block::List(list));
        }
    }
    for block in stacks::blocks(result)? {
        doc.push(block);
    }
    let mut used = BTreeSet::new();
    for s in &feed {
        let stem = unique_stem(&scenario_title(s), &mut used);
        scenario_section(&mut doc, s, &stem, opts)?;
    }
    // The connection-limit scenario's table and chart, for whichever
    // scenario holds it.
    for s in &limits {
        let stem = unique_stem(&s.scenario.name, &mut used);
        for block in limit::blocks(s, &stem)? {
            doc.push(block);
        }
    }
    for block in network::blocks(result)? {
        doc.push(block);
    }
    for block in proxy::blocks(result)? {
        doc.push(block);
    }
    extras::push(&mut doc, result)?;
    environment::push(&mut doc, result);
    Ok(doc)
}

/// One feed scenario: what ran, the comparison table, the charts, details.
fn scenario_section(
    doc: &mut Document,
    s: &ScenarioResult,
    stem: &str,
    opts: &ReportOptions,
) -> Result<(), ReportError> {
    let sc = &s.scenario;
    doc.push(Block::Heading(2, super::run_facts::scenario_heading(s)));
    doc.push(Block::Paragraph(format!(
        "{} connections per wire, feed at {} events/s with {} B payload, held {} s; server: {}.",
        sc.connections,
        format::num(s.server.rate_hz),
        s.server.payload_bytes,
        format::num(sc.duration_s),
        match s.stack {
            Some(stack) =>
                format!("the {stack} stack in its own child process (memory and CPU from /proc)"),
            None => server_mode(&s.server.mode),
        },
    )));
    doc.push(Block::Paragraph(
        if s.wires.iter().all(|w| w.latency_hold_us.is_some()) {
            "Latency: of the events received during the hold (the ramp left out)."
        } else {
            "Latency: of every event received, the ramp included (this result has no \
             hold-only histogram)."
        }
        .into(),
    ));
    let baseline = tables::baseline(s, opts.baseline);
    if baseline != opts.baseline {
        doc.push(Block::Paragraph(format!(
            "The baseline {} did not run in this scenario: ratios are against {baseline}.",
            opts.baseline
        )));
    }
    doc.push(Block::Table(tables::comparison(s, baseline)));
    doc.push(Block::Heading(3, "Charts".into()));
    for chart in charts::for_scenario(s, stem)? {
        doc.push(Block::Chart(chart));
    }
    doc.push(Block::Heading(3, "Details per wire".into()));
    doc.push(Block::Table(tables::details(s)));
    let problems: Vec<String> = s
        .wires
        .iter()
        .flat_map(|w| {
            w.problems
                .iter()
                .map(move |p| format!("{}: {p}", w.wire))
                .chain(
                    w.first_errors
                        .iter()
                        .map(move |(k, m)| format!("{}: first {k} error: {m}", w.wire)),
                )
        })
        .collect();
    if !problems.is_empty() {
        doc.push(Block::Heading(3, "Problems on the wires".into()));
        doc.push(Block::List(problems));
    }
    Ok(())
}

/// What a server mode means for the memory and CPU figures.
fn server_mode(mode: &str) -> String {
    match mode {
        "child-process" => {
            "embedded, in its own process (server figures are the server's alone)".into()
        }
        "in-process" => {
            "embedded in the load generator's process (memory and CPU figures are of both)".into()
        }
        "external" => "external (figures from its /stats)".into(),
        "any-server" => {
            "any server given by URLs (no /stats: memory and CPU from /proc of --server-pid, or not measured; the feed's rate is not known)".into()
        }
        other => other.to_string(),
    }
}

/// A scenario's name, with its stack when it ran on one of several.
fn scenario_title(s: &ScenarioResult) -> String {
    match s.stack {
        Some(stack) => format!("{} on {stack}", s.scenario.name),
        None => s.scenario.name.clone(),
    }
}

fn run_line(r: &RunResult) -> String {
    format!(
        "Run `{}` by {}, {} to {}; {}.",
        r.name,
        r.tool,
        r.started_at,
        r.finished_at,
        if r.complete {
            "complete: everything asked for was done"
        } else {
            "INCOMPLETE: see the problems below"
        }
    )
}

/// A file-name stem for a scenario's charts, unique within the report.
fn unique_stem(name: &str, used: &mut BTreeSet<String>) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut stem = base.clone();
    let mut n = 2;
    while !used.insert(stem.clone()) {
        stem = format!("{base}-{n}");
        n += 1;
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_latency_is_shown_when_the_result_has_it() {
        let mut r: RunResult = serde_json::from_str(include_str!(
            "../../tests/fixtures/two-scenarios/result.json"
        ))
        .unwrap();
        let mut hold = r.scenarios[0].wires[0].latency_us.clone();
        hold.p99 = 123_456;
        r.scenarios[0].wires[0].latency_hold_us = Some(hold);
        let report = render(&r, &ReportOptions::default()).unwrap();
        assert!(
            report.markdown.contains("| 123.5ms (21.79×) |"),
            "{}",
            report.markdown
        );
    }

    #[test]
    fn stems_are_safe_and_unique() {
        let mut used = BTreeSet::new();
        assert_eq!(unique_stem("Feed 100", &mut used), "feed_100");
        assert_eq!(unique_stem("feed 100", &mut used), "feed_100-2");
        assert_eq!(unique_stem("../x", &mut used), "___x");
    }
}
