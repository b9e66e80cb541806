//! `loadgen report --index DIR`: one page listing every run under `DIR`
//! (each folder holding a `result.json`), newest first, with its date,
//! commit, scenarios, whether it is complete, and its headline numbers,
//! linking to each run's report. Written as `index.md` and `index.html`
//! beside the runs, so it opens offline like the reports themselves.
//!
//! A folder whose `result.json` cannot be read is listed with the reason,
//! not skipped: the index shows everything that is there.

use std::path::{Path, PathBuf};

use super::document::{Block, Document, Table};
use super::error::{write, ReportError};
use super::format::{count, us};
use super::latency::latency_of;
use super::{html, markdown};
use crate::result::RunResult;

/// One folder of runs, read.
#[derive(Debug)]
struct Indexed {
    /// The folder's name, relative to the index.
    folder: String,
    result: Result<RunResult, String>,
}

/// Writes `index.md` and `index.html` into `dir`; returns their paths.
pub fn write_index(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let runs = read_runs(dir)?;
    let md = dir.join("index.md");
    let html_path = dir.join("index.html");
    write(&md, &markdown::render(&document(&runs, "report.md")))?;
    write(&html_path, &html::render(&document(&runs, "report.html")))?;
    Ok(vec![md, html_path])
}

/// Every sub-folder of `dir` holding a `result.json`, newest first (by the
/// run's start; unreadable ones last), then by folder name.
fn read_runs(dir: &Path) -> Result<Vec<Indexed>, ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut runs: Vec<Indexed> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("result.json").is_file())
        .filter_map(|p| {
            let folder = p.file_name()?.to_string_lossy().to_string();
            let result = RunResult::load(&p.join("result.json")).map_err(|e| e.to_string());
            Some(Indexed { folder, result })
        })
        .collect();
    runs.sort_by(|a, b| {
        let started = |r: &Indexed| r.result.as_ref().ok().map(|r| r.started_at.clone());
        started(b)
            .cmp(&started(a))
            .then_with(|| a.folder.cmp(&b.folder))
    });
    Ok(runs)
}

/// The index as a document whose links point at each run's `report`
/// (`report.md` or `report.html`).
fn document(runs: &[Indexed], report: &str) -> Document {
    let mut doc = Document::new("SSE vs WebSocket: runs".into());
    doc.push(Block::Paragraph(format!(
        "{} run{}, newest first. Headline: per wire, the p99 latency and events/s of the feed \
         scenario with the most connections, and events lost over the whole run.",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    )));
    let mut table = Table::numeric(&[
        "run",
        "started",
        "commit",
        "scenarios",
        "complete",
        "headline",
    ]);
    table.align = vec![super::document::Align::Left; 6];
    for run in runs {
        let link = format!("[{}]({}/{report})", run.folder, run.folder);
        let row = match &run.result {
            Ok(r) => vec![
                link,
                r.started_at.clone(),
                if r.environment.git_commit.is_empty() {
                    "unknown".into()
                } else {
                    r.environment.git_commit.clone()
                },
                r.scenarios
                    .iter()
                    .map(|s| s.scenario.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if r.complete { "yes" } else { "NO" }.into(),
                headline(r),
            ],
            Err(e) => vec![
                run.folder.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("unreadable: {e}"),
            ],
        };
        table.rows.push(row);
    }
    doc.push(Block::Table(table));
    doc
}

/// The feed scenario with the most connections, per wire; then the loss.
fn headline(r: &RunResult) -> String {
    let lost: u64 = r
        .scenarios
        .iter()
        .flat_map(|s| &s.wires)
        .filter(|w| w.measured.loss)
        .map(|w| w.lost)
        .sum();
    let largest = r
        .scenarios
        .iter()
        .filter(|s| !s.wires.is_empty())
        .max_by_key(|s| s.scenario.connections);
    let feed = largest.map(|s| {
        let wires: Vec<String> = s
            .wires
            .iter()
            .map(|w| {
                let p99 = if w.measured.latency {
                    us(latency_of(w).p99)
                } else {
                    "n/m".into()
                };
                format!("{} p99 {p99}, {} ev/s", w.wire, count(w.events_per_s))
            })
            .collect();
        format!("{}: {}", s.scenario.name, wires.join("; "))
    });
    match feed {
        Some(f) => format!("{f}; lost {}", count(lost as f64)),
        None => format!("no feed scenario; lost {}", count(lost as f64)),
    }
}
