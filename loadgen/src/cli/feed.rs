//! `loadgen run` and `loadgen suite`: the feed scenarios, from flags or a
//! scenario file.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netlab::{LinkSpec, Outage};

use super::numbers::{parse_ramp, ranged, seconds, Ramp};
use super::server::ServerArgs;
use crate::result::{check_ramp, FaultSpec, Figure, Scenario, ScenarioError};
use crate::wire::Wire;

/// A comma-separated list of wires, as one flag value.
#[derive(Debug, Clone, PartialEq)]
pub struct WireList(pub Vec<Wire>);

pub fn parse_wires(s: &str) -> Result<WireList, String> {
    Wire::parse_list(s).map(WireList)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Wires to run, comma-separated: sse-h1, sse-h2, sse-h2c, ws-h1, or all.
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
    /// The scenarios this invocation asks for, checked; the error says
    /// which flags (or which scenario file field) to change.
    pub fn scenarios(&self) -> Result<Vec<Scenario>, String> {
        if let Some(path) = &self.scenario {
            if self.link.is_some() || !self.link_outage.is_empty() {
                return Err(format!(
                    "--link and --link-outage do not apply to --scenario {}: give each scenario a `link` table instead",
                    path.display()
                ));
            }
            return Scenario::load(path).map_err(|e| e.to_string());
        }
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
    #[command(flatten)]
    pub server: ServerArgs,
}
