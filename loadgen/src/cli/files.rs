//! `loadgen serve`, `report`, `compare` and `merge`: the subcommands that
//! serve or read results rather than measure, and where results go.

use std::path::PathBuf;

use clap::Args;

use super::numbers::parse_percent;
use crate::wire::Wire;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: server::ServerConfig,
    /// Serve through an edge proxy too (prints `edge: https://localhost:PORT/`
    /// first): its certificate is the server's as well, so one is trusted.
    #[command(flatten)]
    pub edge: super::feed::EdgeArgs,
}

/// `serve-bare`: the bare baseline, as the stacks run it.
#[derive(Debug, Args)]
pub struct ServeBareArgs {
    #[command(flatten)]
    pub config: bare::BareConfig,
}

/// `loadgen report DIR`: regenerate the reports of a run.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's folder (holding result.json), or a result.json file; with
    /// --index, a folder of runs.
    pub dir: PathBuf,
    /// The wire the others are compared with in the tables.
    #[arg(long, default_value = "ws-h1")]
    pub baseline: Wire,
    /// Write DIR/index.md and DIR/index.html instead: every run folder in
    /// DIR (date, commit, scenarios, complete or not, headline numbers),
    /// newest first, each linking to its report.
    #[arg(long)]
    pub index: bool,
}

/// `loadgen compare DIR_A DIR_B`: what changed from run A to run B.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run (folder or result.json): the reference.
    pub a: PathBuf,
    /// The later run (folder or result.json): the one judged.
    pub b: PathBuf,
    /// How much worse a metric may get before it is a regression, in percent
    /// (`10` or `10%`). Any increase in lost events is always one.
    #[arg(long, default_value = "10", value_parser = parse_percent)]
    pub threshold: f64,
    /// Exit with status 3 when there is a regression, or when the runs share
    /// no scenario and wire to compare (for CI).
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Where to write compare.md (default: B's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `loadgen merge DIR... --out DIR`: one result from several machines.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The runs to combine (folders or result.json files), two or more.
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the merged result.json and its reports.
    #[arg(long)]
    pub out: PathBuf,
    /// The wire the others are compared with in the merged reports.
    #[arg(long, default_value = "ws-h1")]
    pub baseline: Wire,
}

/// `results/<UTC timestamp>-<name>/`
pub fn default_out_dir(name: &str) -> PathBuf {
    let now = server::event::rfc3339(std::time::SystemTime::now());
    // 2026-11-24T17:30:00.123Z -> 20261124-173000
    let stamp: String = now
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .map(|c| if c == 'T' { '-' } else { c })
        .collect();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("results").join(format!("{stamp}-{safe}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dirs_are_timestamped() {
        let d = default_out_dir("my run");
        let s = d.to_string_lossy();
        assert!(s.starts_with("results/2"), "{s}");
        assert!(s.ends_with("-my_run"), "{s}");
    }
}
