//! The command line parsed and checked into what to do: `main` and the
//! tests go through [`parse`], so whatever a user can type is checked the
//! same way before anything runs.
//!
//! Every error here is a usage error: clap prints it naming the flag (or
//! the scenario file and field) and exits with status 2.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::args::{Cli, Command};
use super::files::{CompareArgs, MergeArgs, ReportArgs};
use super::server::ServerArgs;
use crate::result::{network_suite, stacks_suite, standard_suite, LimitSpec, Scenario};
use crate::scenarios::Extra;

/// What one invocation of `loadgen` does.
#[derive(Debug)]
pub enum Invocation {
    /// `run`, `suite`, `chat`, `echo`, `faults`, `limit`: measure, write
    /// result.json and the reports.
    Measure(Measure),
    /// `serve`: the feed server alone (what the embedded child runs), or
    /// behind an edge proxy.
    Serve {
        /// Boxed: the server's settings are large beside the other variants.
        config: Box<server::ServerConfig>,
        edge: Option<(edge::EdgeKind, edge::EdgeProfile)>,
    },
    Report(ReportArgs),
    /// `schema`: print result.json's JSON Schema.
    Schema,
    Compare(CompareArgs),
    Merge(MergeArgs),
    /// `worker`: one share of a wire, driven by a parent over stdin/stdout.
    Worker,
    /// `serve-bare`: the bare baseline (what `--stacks bare` starts).
    ServeBare(bare::BareConfig),
    /// `doctor URL`: check a deployed endpoint.
    Doctor(crate::doctor::DoctorSpec),
}

/// A measuring run, checked.
#[derive(Debug)]
pub struct Measure {
    /// The run's name (the result's, and its folder's).
    pub name: String,
    /// Feed scenarios.
    pub scenarios: Vec<Scenario>,
    /// Scenarios beyond the feed (chat, echo, faults), run after the feed ones.
    pub extras: Vec<Extra>,
    /// The browser model's runs.
    pub limits: Vec<LimitSpec>,
    pub server: ServerArgs,
    /// Where result.json goes (default: results/<timestamp>-<name>/).
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// Scenarios left out, and why (the network scenarios without root).
    pub skipped: Vec<String>,
}

/// Parses and checks `args` (the program name first), as `main` does.
/// `Err` is clap's: a usage error (status 2), or `--help`/`--version`
/// (status 0); [`clap::Error::exit`] prints it and exits.
pub fn parse<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    invocation(cli).map_err(|msg| Cli::command().error(ErrorKind::ValueValidation, msg))
}

fn invocation(cli: Cli) -> Result<Invocation, String> {
    let measure = match cli.command {
        Command::Run(mut args) => {
            let scenarios = args.scenarios()?;
            args.server.shard = args.shard;
            args.server.start_at_unix_ns = args.start_at;
            let name = args.name.clone().unwrap_or_else(|| {
                if scenarios.len() == 1 {
                    scenarios[0].name.clone()
                } else {
                    "run".into()
                }
            });
            Measure {
                name,
                scenarios,
                extras: Vec::new(),
                limits: Vec::new(),
                server: args.server,
                out: args.out,
                quiet: args.quiet,
                skipped: Vec::new(),
            }
        }
        Command::Suite(args) if args.stacks.is_some() => {
            let stacks = args
                .stacks
                .as_ref()
                .map(|l| l.0.clone())
                .unwrap_or_default();
            Measure {
                name: "stacks".into(),
                scenarios: stacks_suite(args.duration.as_secs_f64(), &stacks),
                extras: Vec::new(),
                limits: Vec::new(),
                server: args.server,
                out: args.out,
                quiet: args.quiet,
                skipped: Vec::new(),
            }
        }
        Command::Suite(args) => {
            let duration_s = args.duration.as_secs_f64();
            let (extras, limits) = if args.feed_only || args.network_only {
                (Vec::new(), Vec::new())
            } else {
                (
                    crate::scenarios::suite(duration_s),
                    vec![crate::limit::suite()],
                )
            };
            for extra in &extras {
                extra.validate().map_err(|e| format!("{e} (--duration)"))?;
            }
            let mut scenarios = if args.network_only {
                Vec::new()
            } else {
                standard_suite(duration_s)
            };
            args.edge.apply(&mut scenarios)?;
            let mut skipped = Vec::new();
            if args.edge.edge.is_some() {
                if !args.no_network {
                    skipped.push(
                        "the network scenarios (lossy, mobile, outage): they run the embedded server over an emulated link, not through an edge (run `loadgen suite --network-only` without --edge)".into(),
                    );
                }
            } else if !args.no_network {
                match network_scenarios_possible(&args.server) {
                    Ok(()) => scenarios.extend(network_suite(duration_s)),
                    Err(why) => skipped.push(format!(
                        "the network scenarios (lossy, mobile, outage): {why}"
                    )),
                }
            }
            Measure {
                name: "suite".into(),
                scenarios,
                extras,
                limits,
                server: args.server,
                out: args.out,
                quiet: args.quiet,
                skipped,
            }
        }
        Command::Chat(args) => extra("chat", args.extra()?, args.common),
        Command::Echo(args) => extra("echo", args.extra()?, args.common),
        Command::Faults(args) => extra("faults", args.extra()?, args.common),
        Command::Limit(args) => Measure {
            name: "limit".into(),
            scenarios: Vec::new(),
            extras: Vec::new(),
            limits: vec![args.spec()?],
            server: args.server,
            out: args.out,
            quiet: args.quiet,
            skipped: Vec::new(),
        },
        Command::Serve(args) => {
            let edge = match &args.edge.edge {
                Some(kind) => Some((
                    kind.parse().map_err(|e: edge::EdgeError| e.to_string())?,
                    args.edge.edge_config.parse()?,
                )),
                None => None,
            };
            return Ok(Invocation::Serve {
                config: Box::new(args.config),
                edge,
            });
        }
        Command::Report(args) => return Ok(Invocation::Report(args)),
        Command::Schema => return Ok(Invocation::Schema),
        Command::Compare(args) => return Ok(Invocation::Compare(args)),
        Command::Merge(args) => return Ok(Invocation::Merge(args)),
        Command::Worker => return Ok(Invocation::Worker),
        Command::ServeBare(args) => return Ok(Invocation::ServeBare(args.config)),
        Command::Doctor(args) => return Ok(Invocation::Doctor(args.spec())),
    };
    measure.server.check()?;
    if measure.scenarios.iter().any(|s| s.link.is_some()) {
        link_server_check(&measure.server)?;
        // Checked again with the flags applied after the scenario was made
        // (--edge): a link carries the embedded feed server alone.
        for s in measure.scenarios.iter().filter(|s| s.link.is_some()) {
            s.validate().map_err(|e| e.to_string())?;
        }
    }
    Ok(Invocation::Measure(measure))
}

/// A run over an emulated link starts the embedded server itself, as a
/// child process inside the link's server namespace.
fn link_server_check(server: &ServerArgs) -> Result<(), String> {
    if server.target.is_some() {
        return Err("--link runs over the embedded server, which it starts inside the link's server namespace: it cannot load an external server (--target)".into());
    }
    if server.in_process {
        return Err("--link runs the embedded server as a child process inside the link's server namespace: drop --in-process".into());
    }
    Ok(())
}

/// Whether the suite's network scenarios can run: root, the link
/// emulator, and the embedded server as a child process.
fn network_scenarios_possible(server: &ServerArgs) -> Result<(), String> {
    link_server_check(server)?;
    crate::run::link_support().map_err(|e| e.to_string())
}

fn extra(name: &str, extra: Extra, common: super::extras::ExtraOut) -> Measure {
    Measure {
        name: name.into(),
        scenarios: Vec::new(),
        extras: vec![extra],
        limits: Vec::new(),
        server: common.server,
        out: common.out,
        quiet: common.quiet,
        skipped: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;

    fn measure(args: &[&str]) -> Measure {
        match parse(args.iter().copied()) {
            Ok(Invocation::Measure(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_flags_make_a_scenario() {
        let m = measure(&[
            "loadgen",
            "run",
            "--wire",
            "sse-h1,ws-h1",
            "--connections",
            "10",
            "--duration",
            "2s",
        ]);
        let s = &m.scenarios;
        assert_eq!(s[0].wires, vec![Wire::SseH1, Wire::WsH1]);
        assert_eq!(s[0].duration_s, 2.0);
        assert!(parse(["loadgen", "run", "--wire", "nope"]).is_err());
        assert!(parse(["loadgen", "run", "--tls-target", "https://x"]).is_err());
    }

    #[test]
    fn link_flags_make_the_scenario_s_link() {
        let m = measure(&[
            "loadgen",
            "run",
            "--link",
            "delay=25ms,loss=1%",
            "--link-outage",
            "2s@3s",
            "--link-outage",
            "1s@6s",
            "--duration",
            "10s",
        ]);
        let link = m.scenarios[0].link.as_ref().unwrap();
        assert_eq!(link.rtt().as_millis(), 50);
        assert_eq!(link.outages.len(), 2);
        let m = measure(&["loadgen", "run", "--link-outage", "2s@1s"]);
        assert_eq!(m.scenarios[0].link.as_ref().unwrap().delay.as_millis(), 0);
        assert!(measure(&["loadgen", "run"]).scenarios[0].link.is_none());
        for (args, says) in [
            (vec!["run", "--link", "delay=lots"], "delay"),
            (vec!["run", "--link", "loss=150%"], "loss"),
            (vec!["run", "--link-outage", "2s"], "<duration>@<start>"),
            (
                vec!["run", "--link-outage", "20s@5s"],
                "ends 25 s into the hold",
            ),
            (
                vec!["run", "--link", "delay=1ms", "--in-process"],
                "--in-process",
            ),
            (
                vec![
                    "run",
                    "--link",
                    "delay=1ms",
                    "--target",
                    "http://127.0.0.1:1",
                ],
                "--target",
            ),
            (
                vec!["run", "--link", "delay=1ms", "--scenario", "x.toml"],
                "`link` table",
            ),
            (
                vec!["run", "--link", "delay=1ms", "--edge", "nginx"],
                "cannot be combined with an edge proxy",
            ),
            (
                vec![
                    "run",
                    "--link",
                    "delay=1ms",
                    "--sse-url",
                    "http://127.0.0.1:1/sse",
                ],
                "cannot be combined with any other server",
            ),
            (
                vec!["run", "--link", "delay=1ms", "--stacks", "actix,bare"],
                "cannot be combined with stacks",
            ),
        ] {
            let e = parse(std::iter::once("loadgen").chain(args.iter().copied())).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
            assert!(e.to_string().contains(says), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_suite_runs_or_skips_its_network_scenarios() {
        let m = measure(&["loadgen", "suite", "--network-only"]);
        assert!(m.extras.is_empty() && m.limits.is_empty());
        match crate::run::link_support() {
            Ok(()) => {
                assert_eq!(m.scenarios.len(), 6);
                assert!(m.skipped.is_empty());
            }
            Err(e) => {
                assert!(m.scenarios.is_empty());
                assert!(m.skipped[0].contains(&e.to_string()), "{:?}", m.skipped);
            }
        }
        let m = measure(&["loadgen", "suite", "--no-network"]);
        assert!(m.scenarios.iter().all(|s| s.link.is_none()));
        assert!(m.skipped.is_empty());
        let m = measure(&["loadgen", "suite", "--in-process"]);
        assert!(m.scenarios.iter().all(|s| s.link.is_none()));
        assert!(m.skipped[0].contains("--in-process"), "{:?}", m.skipped);
        let m = measure(&["loadgen", "suite", "--feed-only", "--edge", "haproxy"]);
        assert!(m.scenarios.iter().all(|s| s.link.is_none()));
        assert!(
            m.skipped[0].contains("not through an edge"),
            "{:?}",
            m.skipped
        );
    }

    #[test]
    fn numbers_out_of_range_are_usage_errors_naming_the_flag() {
        for (args, flag) in [
            (vec!["run", "--ramp", "1e-300"], "--ramp"),
            (vec!["chat", "--token-rate", "1e-300"], "--token-rate"),
            (vec!["run", "--connections", "0"], "--connections"),
            (vec!["run", "--rate", "NaN"], "--rate"),
            (
                vec!["faults", "--retry-ms", "18446744073709551615"],
                "--retry-ms",
            ),
            (vec!["compare", "a", "b", "--threshold=-5"], "--threshold"),
        ] {
            let e = parse(std::iter::once("loadgen").chain(args.iter().copied())).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let text = e.to_string();
            assert!(
                text.contains(flag) && text.contains("at least"),
                "{args:?}: {text}"
            );
        }
    }

    #[test]
    fn combinations_out_of_range_are_usage_errors_too() {
        for args in [
            vec!["run", "--connections", "1000000", "--ramp", "0.01"],
            vec!["run", "--connections", "10", "--h2-conns", "11"],
            vec!["run", "--connections", "1000000", "--ramp", "1ns"],
            vec![
                "chat",
                "--questions",
                "10000",
                "--tokens",
                "100000",
                "--token-rate",
                "0.01",
            ],
            vec!["faults", "--replay", "1000000", "--rate", "0.01"],
            vec!["limit", "--tabs", "1000", "--streams-per-tab", "10000"],
            vec![
                "run",
                "--target",
                "http://127.0.0.1:1",
                "--tls-target",
                "https://127.0.0.1:2",
            ],
        ] {
            let e = parse(std::iter::once("loadgen").chain(args.iter().copied())).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }
}
