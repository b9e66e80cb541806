//! `report.md` and `report.html`: what a run measured, for people.
//!
//! Both files are rendered from one [`Document`] (headings, paragraphs,
//! tables, charts), so the Markdown and the HTML never disagree. The report
//! is a pure function of `result.json`: no clock, no machine probing, maps
//! kept in order and floats printed with fixed precision, so regenerating
//! it (`loadgen report DIR`) gives the same bytes, and golden tests hold.
//!
//! Charts are SVG drawn by plotters ([`charts`]). The HTML carries them
//! inline (one self-contained file, nothing fetched); the Markdown links
//! them from `charts/` beside it, which code hosts show as images.

mod answer;
mod charts;
mod choose;
mod document;
mod environment;
mod error;
mod extra_charts;
mod extras;
mod findings;
mod format;
mod html;
mod index;
mod latency;
mod limit;
mod markdown;
mod network;
mod network_charts;
mod proxy;
mod render;
mod run_facts;
mod stack_charts;
mod stack_runs;
mod stacks;
mod tables;
pub mod text;

pub use choose::NOT_MEASURED;
pub use document::{Align, Block, Chart, Document, Table};
pub use error::ReportError;
pub use findings::findings;
pub use format::{bytes, percent, ratio, us};
pub use index::write_index;
pub use latency::latency_of;
pub use markdown::{table as markdown_table, CHART_DIR};
pub use network::summary as network_summary;
pub use render::{render, result_file, write_reports, Report, ReportOptions};
pub use stack_runs::{runs_of, summaries, StackRun, StackSummary};
