//! The command line as clap sees it: one struct per subcommand, in the
//! files beside this one.

use clap::{Parser, Subcommand};

use super::doctor::DoctorArgs;
use super::extras::{ChatArgs, EchoArgs, FaultArgs};
use super::feed::{RunArgs, SuiteArgs};
use super::files::{CompareArgs, MergeArgs, ReportArgs, ServeArgs, ServeBareArgs};
use super::limit::LimitArgs;

/// Measure SSE and WebSocket side by side, over HTTP/1.1, h2 and h2c.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario (from flags or a TOML file) and write result.json.
    // Boxed: its flags are large beside the other commands'.
    Run(Box<RunArgs>),
    /// Run the standard matrix: every wire at 100, 1,000 and 10,000 connections.
    Suite(SuiteArgs),
    /// Run the feed server alone (what the embedded child process runs).
    Serve(ServeArgs),
    /// Chat-style answers: users ask questions, answers stream token by token.
    Chat(ChatArgs),
    /// Round trips, client to server to client, at 1, 100 and 1,000 clients.
    Echo(EchoArgs),
    /// Reconnect and resume under dropped streams and a restart.
    Faults(FaultArgs),
    /// The six-connection limit: a browser model (per-profile pools, 6
    /// connections per host on HTTP/1.1, one h2 connection per origin).
    Limit(LimitArgs),
    /// Write report.md and report.html (charts included) from a run's result.json.
    Report(ReportArgs),
    /// Print the JSON Schema of result.json (generated from the result
    /// types; results/schema.json is this output).
    Schema,
    /// Compare two runs wire by wire; mark what got worse beyond a threshold.
    Compare(CompareArgs),
    /// Combine results of the same scenarios taken on several machines.
    Merge(MergeArgs),
    /// Check a deployed SSE or WebSocket endpoint for proxy and protocol
    /// pitfalls: PASS, WARN or FAIL per check, with the fix; exit 1 on FAIL.
    Doctor(DoctorArgs),
    /// One share of a wire, driven by a parent `loadgen` over stdin/stdout.
    #[command(hide = true)]
    Worker,
    /// The bare baseline (baselines/bare), as `--stacks bare` starts it.
    #[command(hide = true)]
    ServeBare(ServeBareArgs),
}
