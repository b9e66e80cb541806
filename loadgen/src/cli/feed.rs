//! `loadgen run` and `loadgen suite`: the feed scenarios, from flags or a
//! scenario file.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netlab::{LinkSpec, Outage};

use super::any_server::AnyServerArgs;
use super::numbers::{parse_ramp, ranged, seconds, Ramp};
use super::server::ServerArgs;
use crate::result::{check_ramp, FaultSpec, Figure, Scenario, ScenarioError, Stack};
use crate::run::shard::{parse_start_at, Shard};
use crate::wire::Wire;

/// A comma-separated list of wires, as one flag value.
#[derive(Debug, Clone, PartialEq)]
pub struct WireList(pub Vec<Wire>);

pub fn parse_wires(s: &str) -> Result<WireList, String> {
    Wire::parse_list(s).map(WireList)
}

/// A comma-separated list of stacks, as one flag value.
#[derive(Debug, Clone, PartialEq)]
pub struct StackList(pub Vec<Stack>);

pub fn parse_stacks(s: &str) -> Result<StackList, String> {
    Stack::parse_list(s).map(StackList)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Wires to run, comma-separated: sse-h1, sse-h2, sse-h2c, ws-h1, or all
    /// (those four), and ws-h2 or ws-h2c (WebSocket over HTTP/2, RFC 8441)
    /// against a server or edge that offers it.
    #[arg(long, default_value = "all", value_parser = parse_wires)]
    pub wire: WireList,
    /// Connections per wire.
    #[arg(long, default_value_t = 100, value_parser = ranged(Scenario::CONNECTIONS))]
    pub connections: usize,
    /// Connections per second, or a duration to spread them over (0: at once).
    #[arg(long, default_value = "2000", value_parser = parse_ramp)]
    pub ramp: Ramp,
    /// How long the connections are held and measured.
    #[arg(long, default_value = "10s", value_parser = seconds(Scenario::SECONDS))]
    pub duration: Duration,
    /// Feed rate of the embedded server (events/s).
    #[arg(long, default_value_t = 1.0, value_parser = ranged(Scenario::RATE_HZ))]
    pub rate: f64,
    /// Event payload size of the embedded server (bytes; 0 for the bare event).
    #[arg(long, default_value_t = 0, value_parser = ranged(Scenario::PAYLOAD_BYTES))]
    pub payload_bytes: usize,
    /// HTTP/2 connections that carry the streams (default: 100 streams per
    /// connection, as Chromium does when the server announces no limit; at least 2).
    #[arg(long, value_parser = ranged(Scenario::CONNECTIONS))]
    pub h2_conns: Option<usize>,
    /// Load-generator processes sharing the connections (default: 1, or as
    /// many as the open-file limit requires; each holds its share).
    #[arg(long, value_parser = ranged(Scenario::PROCESSES))]
    pub processes: Option<usize>,
    /// Run over an emulated link (needs root): the embedded server in one
    /// network namespace, the connections in another, joined by a link
    /// with this one-way delay, jitter, loss and rate per direction, e.g.
    /// "delay=25ms,jitter=5ms,loss=1%,rate=10mbit" (every part optional).
    #[arg(long, value_parser = parse_link)]
    pub link: Option<LinkSpec>,
    /// An outage of the link: no packet passes for DURATION, starting AT
    /// into the hold, e.g. 2s@5s (repeatable; implies a link).
    #[arg(long = "link-outage", value_name = "DURATION@AT", value_parser = parse_outage)]
    pub link_outage: Vec<Outage>,
    /// Run shard I of N (from 0): a contiguous block of about 1/N of each
    /// wire's connections, for several load generators (machines, pods)
    /// whose results `loadgen merge` adds up.
    #[arg(long, value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Start the hold at this instant (RFC 3339, e.g. 2026-11-29T10:00:00Z)
    /// instead of once connected, so shards measure the same window. One
    /// scenario of one wire per process: run one process per wire.
    #[arg(long, value_parser = parse_start_at)]
    pub start_at: Option<u64>,
    /// Run the scenarios of a TOML file instead of the flags above.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub edge: EdgeArgs,
    /// Name of the run (default: the scenario's, or `run`).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write result.json (default: results/<timestamp>-<name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress view.
    #[arg(long)]
    pub quiet: bool,
    /// Run the scenario against each of these stacks, each in its own child
    /// process: actix (this project's server), bare (minimal tokio), node
    /// (Express SSE + Node ws; needs `node`), or all.
    #[arg(long, value_parser = parse_stacks, conflicts_with_all = ["target", "in_process", "sse_url", "ws_url"])]
    pub stacks: Option<StackList>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub any: AnyServerArgs,
}

impl RunArgs {
    /// The scenarios this invocation asks for, checked; the error says
    /// which flags (or which scenario file field) to change.
    pub fn scenarios(&self) -> Result<Vec<Scenario>, String> {
        let mut scenarios = self.unsharded()?;
        self.edge.apply(&mut scenarios)?;
        if self.start_at.is_some() && (scenarios.len() != 1 || scenarios[0].wires.len() != 1) {
            return Err(
                "--start-at measures one window: give this process one scenario of one wire \
                 (e.g. --wire sse-h1) and run one process per wire"
                    .into(),
            );
        }
        if let Some(shard) = self.shard {
            for s in &scenarios {
                shard.scenario(s).map_err(|e| format!("--shard: {e}"))?;
            }
        }
        Ok(scenarios)
    }

    fn unsharded(&self) -> Result<Vec<Scenario>, String> {
        let stacks = self.stacks.as_ref().map(|l| l.0.clone());
        if let Some(path) = &self.scenario {
            if self.link.is_some() || !self.link_outage.is_empty() {
                return Err(format!(
                    "--link and --link-outage do not apply to --scenario {}: give each scenario a `link` table instead",
                    path.display()
                ));
            }
            let mut scenarios = Scenario::load(path).map_err(|e| e.to_string())?;
            if let Some(stacks) = stacks {
                for s in &mut scenarios {
                    s.stacks = stacks.clone();
                    s.validate().map_err(|e| format!("{e} (--stacks)"))?;
                }
            }
            return Ok(scenarios);
        }
        let any_server = self.any.settings(
            self.server.ca_cert.clone(),
            self.server.insecure,
            self.server.allow_remote,
        )?;
        let ramp_per_s = self.ramp.per_second(self.connections);
        check_ramp(ramp_per_s).map_err(|e| {
            format!(
                "--ramp {} opens {} connections at {} per second: that {e}",
                self.ramp,
                self.connections,
                ramp_per_s.show()
            )
        })?;
        if let Some(n) = self.h2_conns.filter(|&n| n > self.connections) {
            return Err(format!(
                "--h2-conns {n} is more than --connections {}: at most one stream per HTTP/2 connection",
                self.connections
            ));
        }
        let s = Scenario {
            name: self.name.clone().unwrap_or_else(|| "run".into()),
            wires: self.wire.0.clone(),
            connections: self.connections,
            ramp_per_s,
            duration_s: self.duration.as_secs_f64(),
            rate_hz: self.rate,
            payload_bytes: self.payload_bytes,
            h2_conns: self.h2_conns,
            settle_s: 1.0,
            drain_timeout_s: 5.0,
            connect_timeout_s: 10.0,
            processes: self.processes,
            link: self.link_spec(),
            any_server,
            stacks: stacks.unwrap_or_default(),
            edge: None,
            edge_config: None,
            saturation: false,
        };
        s.validate().map_err(|e| match e {
            ScenarioError::Invalid { reason, .. } => {
                format!("{reason} (--connections, --ramp and the other flags)")
            }
            other => other.to_string(),
        })?;
        Ok(vec![s])
    }
}

impl RunArgs {
    /// The link of `--link` and `--link-outage`, if either was given.
    fn link_spec(&self) -> Option<LinkSpec> {
        if self.link.is_none() && self.link_outage.is_empty() {
            return None;
        }
        let mut spec = self.link.clone().unwrap_or_default();
        spec.outages.extend(self.link_outage.iter().copied());
        Some(spec)
    }
}

fn parse_link(s: &str) -> Result<LinkSpec, String> {
    s.parse().map_err(|e: netlab::LinkSpecError| e.to_string())
}

fn parse_outage(s: &str) -> Result<Outage, String> {
    s.parse().map_err(|e: netlab::LinkSpecError| e.to_string())
}

/// An edge proxy in front of the embedded server.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// Put Debian's nginx or haproxy in front of the server (TLS with ALPN
    /// h2 and http/1.1 at the edge, HTTP/1.1 to the server): every wire
    /// goes through it (sse-h1 and ws-h1 over TLS; no h2c).
    #[arg(long, value_parser = ["nginx", "haproxy"])]
    pub edge: Option<String>,
    /// The edge's config: tuned (what a careful operator writes), naive
    /// (just proxy_pass / a bare backend), or a template FILE (see README).
    #[arg(long, requires = "edge", default_value = "tuned")]
    pub edge_config: String,
}

impl EdgeArgs {
    /// Sets the edge on every scenario (the flags win over a file's).
    pub fn apply(&self, scenarios: &mut [Scenario]) -> Result<(), String> {
        if let Some(kind) = &self.edge {
            for s in scenarios.iter_mut() {
                s.edge = Some(kind.clone());
                s.edge_config = Some(self.edge_config.clone());
                s.edge().map_err(|e| format!("--edge-config: {e}"))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Run the feed matrix only, not the chat, echo and faults scenarios.
    #[arg(long)]
    pub feed_only: bool,
    /// Leave out the network scenarios (lossy, mobile, outage links; they
    /// run only as root).
    #[arg(long, conflicts_with = "network_only")]
    pub no_network: bool,
    /// Run the network scenarios alone.
    #[arg(long)]
    pub network_only: bool,
    /// How long each wire is held at each size (and the faults scenario's drops last).
    #[arg(long, default_value = "10s", value_parser = seconds(FaultSpec::SECONDS))]
    pub duration: Duration,
    /// Where to write result.json (default: results/<timestamp>-suite/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
    /// Run the stacks matrix instead (feed only): each stack at 1,000 and
    /// 10,000 connections and a rate sweep at 1,000 (loadgen/scenarios/stacks.toml).
    #[arg(long, value_parser = parse_stacks, conflicts_with_all = ["target", "in_process"])]
    pub stacks: Option<StackList>,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}
