//! The command line: one clap struct per subcommand, converted into the
//! library's scenario and run options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::runner::{RunOptions, ServerChoice};
use crate::scenario::Scenario;
use crate::tls_config::Trust;
use crate::wire::Wire;

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
    Run(RunArgs),
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
    /// Compare two runs wire by wire; mark what got worse beyond a threshold.
    Compare(CompareArgs),
    /// Combine results of the same scenarios taken on several machines.
    Merge(MergeArgs),
    /// One share of a wire, driven by a parent `loadgen` over stdin/stdout.
    #[command(hide = true)]
    Worker,
}

/// Where the server is and how to reach it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Load an external server's plain listener (http://host:port) instead of
    /// starting the embedded one.
    #[arg(long)]
    pub target: Option<String>,
    /// The external server's TLS listener (https://host:port), for sse-h2.
    #[arg(long, requires = "target")]
    pub tls_target: Option<String>,
    /// PEM file with the certificate to trust on --tls-target.
    #[arg(long, conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the TLS certificate of --tls-target.
    #[arg(long)]
    pub insecure: bool,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Run the embedded server inside this process (its memory and CPU then
    /// mix with the load generator's) instead of a child process.
    #[arg(long, conflicts_with = "target")]
    pub in_process: bool,
    /// Worker threads of the embedded server (default: one per core).
    #[arg(long)]
    pub server_workers: Option<usize>,
}

impl ServerArgs {
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let server = match &self.target {
            Some(http_url) => {
                let trust = match (&self.ca_cert, self.insecure) {
                    (Some(p), _) => Trust::CaFile(p.clone()),
                    (None, true) => Trust::Insecure,
                    (None, false) if self.tls_target.is_some() => anyhow::bail!(
                        "--tls-target needs --ca-cert FILE (the server prints its certificate path) or --insecure"
                    ),
                    (None, false) => Trust::Insecure,
                };
                ServerChoice::External {
                    http_url: http_url.clone(),
                    https_url: self.tls_target.clone(),
                    trust,
                    allow_remote: self.allow_remote,
                }
            }
            None if self.in_process => ServerChoice::InProcess,
            None => ServerChoice::Child {
                exe: std::env::current_exe().map_err(|e| {
                    anyhow::anyhow!("finding this program to start the server: {e}")
                })?,
            },
        };
        Ok(RunOptions {
            server,
            workers: self.server_workers,
            retry: Duration::from_secs(1),
            worker_exe: std::env::current_exe().ok(),
        })
    }
}

/// How fast connections open: `500` (per second) or `5s` (spread over that long).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ramp {
    PerSecond(f64),
    Over(Duration),
}

impl Ramp {
    pub fn per_second(self, connections: usize) -> f64 {
        match self {
            Ramp::PerSecond(r) => r,
            Ramp::Over(d) if d.is_zero() => 0.0,
            Ramp::Over(d) => connections as f64 / d.as_secs_f64(),
        }
    }
}

fn parse_ramp(s: &str) -> Result<Ramp, String> {
    if let Ok(r) = s.parse::<f64>() {
        if r.is_finite() && r >= 0.0 {
            return Ok(Ramp::PerSecond(r));
        }
        return Err(format!("`{s}`: a ramp is 0 or more connections per second"));
    }
    humantime::parse_duration(s)
        .map(Ramp::Over)
        .map_err(|e| format!("`{s}` is neither connections per second nor a duration: {e}"))
}

/// A comma-separated list of wires, as one flag value.
#[derive(Debug, Clone, PartialEq)]
pub struct WireList(pub Vec<Wire>);

fn parse_wires(s: &str) -> Result<WireList, String> {
    Wire::parse_list(s).map(WireList)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Wires to run, comma-separated: sse-h1, sse-h2, sse-h2c, ws-h1, or all.
    #[arg(long, default_value = "all", value_parser = parse_wires)]
    pub wire: WireList,
    /// Connections per wire.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Connections per second, or a duration to spread them over (0: at once).
    #[arg(long, default_value = "2000", value_parser = parse_ramp)]
    pub ramp: Ramp,
    /// How long the connections are held and measured.
    #[arg(long, default_value = "10s", value_parser = server::config::parse_duration)]
    pub duration: Duration,
    /// Feed rate of the embedded server (events/s).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Event payload size of the embedded server (bytes; 0 for the bare event).
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// HTTP/2 connections that carry the streams (default: 100 streams per
    /// connection, as Chromium does when the server announces no limit; at least 2).
    #[arg(long)]
    pub h2_conns: Option<usize>,
    /// Load-generator processes sharing the connections (default: 1, or as
    /// many as the open-file limit requires; each holds its share).
    #[arg(long)]
    pub processes: Option<usize>,
    /// Run the scenarios of a TOML file instead of the flags above.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Name of the run (default: the scenario's, or `run`).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write result.json (default: results/<timestamp>-<name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress view.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl RunArgs {
    /// The scenarios this invocation asks for.
    pub fn scenarios(&self) -> anyhow::Result<Vec<Scenario>> {
        if let Some(path) = &self.scenario {
            return Ok(Scenario::load(path)?);
        }
        let s = Scenario {
            name: self.name.clone().unwrap_or_else(|| "run".into()),
            wires: self.wire.0.clone(),
            connections: self.connections,
            ramp_per_s: self.ramp.per_second(self.connections),
            duration_s: self.duration.as_secs_f64(),
            rate_hz: self.rate,
            payload_bytes: self.payload_bytes,
            h2_conns: self.h2_conns,
            settle_s: 1.0,
            drain_timeout_s: 5.0,
            connect_timeout_s: 10.0,
            processes: self.processes,
        };
        s.validate()?;
        Ok(vec![s])
    }
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Run the feed matrix only, not the chat, echo and faults scenarios.
    #[arg(long)]
    pub feed_only: bool,
    /// How long each wire is held at each size.
    #[arg(long, default_value = "10s", value_parser = server::config::parse_duration)]
    pub duration: Duration,
    /// Where to write result.json (default: results/<timestamp>-suite/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Where a scenario beyond the feed writes, and which server it loads.
#[derive(Debug, Args)]
pub struct ExtraOut {
    /// Wires to run, comma-separated: sse-h1, sse-h2, sse-h2c, ws-h1, or all.
    #[arg(long, default_value = "all", value_parser = parse_wires)]
    pub wire: WireList,
    /// Where to write result.json (default: results/<timestamp>-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Concurrent users per wire.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Questions each user asks, one after another.
    #[arg(long, default_value_t = 3)]
    pub questions: usize,
    /// Tokens per answer.
    #[arg(long, default_value_t = 20)]
    pub tokens: u32,
    /// Tokens per second.
    #[arg(long, default_value_t = 100.0)]
    pub token_rate: f64,
    /// Browser model for sse-h1: at most this many requests in flight (a browser's 6).
    #[arg(long)]
    pub h1_pool_limit: Option<usize>,
    #[command(flatten)]
    pub common: ExtraOut,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Client counts, comma-separated, run one after another.
    #[arg(long, default_value = "1,100,1000", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// How long each (wire, client count) runs.
    #[arg(long, default_value = "3s", value_parser = server::config::parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: ExtraOut,
}

#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Streams per wire.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Feed rate (events/s).
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// The server's replay ring (events): the resume window.
    #[arg(long, default_value_t = 32)]
    pub replay: usize,
    /// Reconnect delay (ms): the SSE retry the server sends, and the WS client's.
    #[arg(long, default_value_t = 100)]
    pub retry_ms: u64,
    /// Fraction of the streams dropped each time.
    #[arg(long, default_value_t = 0.5)]
    pub drop_fraction: f64,
    /// How often streams are dropped.
    #[arg(long, default_value = "1s", value_parser = server::config::parse_duration)]
    pub drop_every: Duration,
    /// How long the drops go on (the `within` phase).
    #[arg(long, default_value = "4s", value_parser = server::config::parse_duration)]
    pub duration: Duration,
    /// The restart's outage in the `beyond` phase (default: twice the ring's span).
    #[arg(long)]
    pub outage_ms: Option<u64>,
    /// Skip the `beyond` phase.
    #[arg(long)]
    pub no_beyond: bool,
    #[command(flatten)]
    pub common: ExtraOut,
}

impl ChatArgs {
    pub fn extra(&self) -> crate::scenarios::Extra {
        crate::scenarios::Extra::Chat(crate::scenarios::chat::ChatSpec {
            wires: self.common.wire.0.clone(),
            users: self.users,
            questions: self.questions,
            tokens: self.tokens,
            token_rate: self.token_rate,
            h1_pool_limit: self.h1_pool_limit,
        })
    }
}

impl EchoArgs {
    pub fn extra(&self) -> crate::scenarios::Extra {
        crate::scenarios::Extra::Echo(crate::scenarios::echo::EchoSpec {
            wires: self.common.wire.0.clone(),
            clients: self.clients.clone(),
            duration_s: self.duration.as_secs_f64(),
        })
    }
}

impl FaultArgs {
    pub fn extra(&self) -> crate::scenarios::Extra {
        crate::scenarios::Extra::Faults(crate::scenarios::faults::FaultSpec {
            wires: self.common.wire.0.clone(),
            connections: self.connections,
            rate_hz: self.rate,
            replay: self.replay,
            retry_ms: self.retry_ms,
            duration_s: self.duration.as_secs_f64(),
            drop_fraction: self.drop_fraction,
            drop_every_s: self.drop_every.as_secs_f64(),
            outage_ms: self.outage_ms,
            beyond: !self.no_beyond,
            ..Default::default()
        })
    }
}

/// `loadgen limit`: one browser-model configuration per protocol, or the
/// suite's matrix.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Origins to try, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2 over TLS).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "h1,h2")]
    pub protocol: Vec<crate::limit::Protocol>,
    /// Tabs per browser profile (they share the profile's pools).
    #[arg(long, default_value_t = 1)]
    pub tabs: usize,
    /// EventSources each tab opens.
    #[arg(long, default_value_t = 8)]
    pub streams_per_tab: usize,
    /// Browser profiles (each has its own pools, like an incognito window).
    #[arg(long, default_value_t = 1)]
    pub profiles: usize,
    /// Host names the streams are spread over (sharding): 127.0.0.1,
    /// localhost, shard2.localhost... all reaching the one server.
    #[arg(long, default_value_t = 1)]
    pub hosts: usize,
    /// WebSockets each tab opens alongside the streams.
    #[arg(long, default_value_t = 0)]
    pub ws_per_tab: usize,
    /// The workaround: one stream per profile, fanned out to every tab.
    #[arg(long)]
    pub shared_stream: bool,
    /// HTTP/1.1 connections per (profile, scheme, host, port): Chromium's 6.
    #[arg(long, default_value_t = crate::limit::BROWSER_H1_PER_HOST)]
    pub h1_per_host: usize,
    /// HTTP/2 streams per connection when the server announces no
    /// SETTINGS_MAX_CONCURRENT_STREAMS (actix announces none): Chromium's 100.
    #[arg(long, default_value_t = crate::limit::BROWSER_H2_DEFAULT_STREAMS)]
    pub h2_default_streams: u32,
    /// How long the plain GET may wait before it counts as stalled.
    #[arg(long, default_value = "1500ms", value_parser = server::config::parse_duration)]
    pub get_cap: Duration,
    /// Run the suite's limit matrix instead of one configuration.
    #[arg(long)]
    pub suite: bool,
    /// Where to write result.json (default: results/<timestamp>-limit/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No summary table.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl LimitArgs {
    /// The model's settings from these flags.
    pub fn spec(&self) -> anyhow::Result<crate::limit::LimitSpec> {
        let mut spec = if self.suite {
            crate::limit::suite()
        } else {
            let mut protocols = self.protocol.clone();
            protocols.sort();
            protocols.dedup();
            crate::limit::LimitSpec {
                cases: protocols
                    .into_iter()
                    .map(|protocol| crate::limit::LimitCase {
                        protocol,
                        profiles: self.profiles,
                        tabs: self.tabs,
                        streams_per_tab: self.streams_per_tab,
                        hosts: self.hosts,
                        ws_per_tab: self.ws_per_tab,
                        shared_stream: self.shared_stream,
                    })
                    .collect(),
                get_cap_ms: self.get_cap.as_millis() as u64,
                ..Default::default()
            }
        };
        spec.h1_per_host = self.h1_per_host;
        spec.h2_default_streams = self.h2_default_streams;
        for case in &spec.cases {
            case.validate().map_err(anyhow::Error::msg)?;
        }
        Ok(spec)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: server::ServerConfig,
}

/// `loadgen report DIR`: regenerate the reports of a run.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's folder (holding result.json), or a result.json file.
    pub dir: PathBuf,
    /// The wire the others are compared with in the tables.
    #[arg(long, default_value = "ws-h1")]
    pub baseline: Wire,
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

/// `10`, `10%` or `2.5 %` as a fraction (0.1, 0.025).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let digits = s.trim().trim_end_matches('%').trim();
    match digits.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!(
            "`{s}`: a threshold is a percentage of 0 or more, e.g. 10 or 10%"
        )),
    }
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
    fn ramps_parse() {
        assert_eq!(parse_ramp("500"), Ok(Ramp::PerSecond(500.0)));
        assert_eq!(parse_ramp("5s").unwrap().per_second(1000), 200.0);
        assert!(parse_ramp("-1").is_err());
        assert!(parse_ramp("soon").is_err());
    }

    #[test]
    fn run_flags_make_a_scenario() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "--wire",
            "sse-h1,ws-h1",
            "--connections",
            "10",
            "--duration",
            "2s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!()
        };
        let s = args.scenarios().unwrap();
        assert_eq!(s[0].wires, vec![Wire::SseH1, Wire::WsH1]);
        assert_eq!(s[0].duration_s, 2.0);
        assert!(Cli::try_parse_from(["loadgen", "run", "--wire", "nope"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "run", "--tls-target", "https://x"]).is_err());
    }

    #[test]
    fn out_dirs_are_timestamped() {
        let d = default_out_dir("my run");
        let s = d.to_string_lossy();
        assert!(s.starts_with("results/2"), "{s}");
        assert!(s.ends_with("-my_run"), "{s}");
    }
}
