//! What to run: one feed scenario from the CLI or a TOML file, or the
//! standard suite; every number checked against its range.

use std::path::Path;

use serde::{Deserialize, Serialize};

use netlab::LinkSpec;

use super::any_server::AnyServer;
use super::bounds::{Bounds, DAY_S};
use super::stack::Stack;
use crate::wire::Wire;

/// One run: some wires, a connection count, a feed, how long to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "all_wires")]
    #[schemars(with = "Vec<crate::wire::WireSchema>")]
    pub wires: Vec<Wire>,
    pub connections: usize,
    /// New connections per second (0: all at once).
    #[serde(default = "default_ramp")]
    pub ramp_per_s: f64,
    /// How long the connections are held and measured, in seconds.
    #[serde(default = "default_duration")]
    pub duration_s: f64,
    /// The feed's rate (embedded server; an external server's is read from /stats).
    #[serde(default = "default_rate")]
    pub rate_hz: f64,
    #[serde(default)]
    pub payload_bytes: usize,
    /// HTTP/2 connections carrying the streams (default: browser-like).
    #[serde(default)]
    pub h2_conns: Option<usize>,
    #[serde(default = "default_settle")]
    pub settle_s: f64,
    #[serde(default = "default_drain")]
    pub drain_timeout_s: f64,
    #[serde(default = "default_connect")]
    pub connect_timeout_s: f64,
    /// Load-generator processes sharing the connections (default: one, or
    /// as many as the open-file limit requires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<usize>,
    /// Run over an emulated link (needs root): the embedded server in one
    /// network namespace, the connections in another, joined by the link
    /// emulator. A `link` table with the fields of `--link`
    /// (`delay = "25ms"`, `loss = "1%"`, `outages = ["2s@5s"]`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<netlab::LinkTable>")]
    pub link: Option<LinkSpec>,
    /// Load any SSE or WebSocket server instead of the feed server: its
    /// URLs and how to read its events (`[scenario.any_server]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_server: Option<AnyServer>,
    /// Run the scenario once per stack, each in its own child process
    /// (empty: the embedded feed server alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    /// An edge proxy in front of the embedded server, as Debian's binary
    /// started for the run: `nginx` or `haproxy` (default: none, direct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<String>,
    /// The edge's config: `tuned` (default), `naive`, or a template file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_config: Option<String>,
    /// A step of a saturation sweep: the offered load may exceed what the
    /// server delivers, so events that had not arrived when the drain time
    /// ran out are counted (`lost`, `missing_at_end`), as the measure of
    /// the step, not reported as a problem of the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saturation: bool,
}

fn all_wires() -> Vec<Wire> {
    Wire::ALL.to_vec()
}
fn default_ramp() -> f64 {
    2000.0
}
fn default_duration() -> f64 {
    10.0
}
fn default_rate() -> f64 {
    1.0
}
fn default_settle() -> f64 {
    1.0
}
fn default_drain() -> f64 {
    5.0
}
fn default_connect() -> f64 {
    10.0
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading the scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the scenario file {path} is not valid: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("scenario `{name}`: {reason}")]
    Invalid { name: String, reason: String },
}

/// A TOML file: one `[[scenario]]` table per scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    scenario: Vec<Scenario>,
}

impl Scenario {
    /// Reads every scenario of a TOML file.
    pub fn load(path: &Path) -> Result<Vec<Scenario>, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: ScenarioFile = toml::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: shown,
            source: Box::new(source),
        })?;
        for s in &file.scenario {
            s.validate()?;
        }
        Ok(file.scenario)
    }

    /// Checks every number against its range (the same ranges as the
    /// command line's flags), and that the ramp ends within a day.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |reason: String| ScenarioError::Invalid {
            name: self.name.clone(),
            reason,
        };
        if let Some(any) = &self.any_server {
            any.validate().map_err(&bad)?;
            if !self.stacks.is_empty() {
                return Err(bad(
                    "any_server and stacks exclude each other: one loads a server you run, the other starts the stacks"
                        .into(),
                ));
            }
        } else if self.wires.is_empty() {
            return Err(bad("no wires".into()));
        }
        if self.edge.is_some() && (self.any_server.is_some() || !self.stacks.is_empty()) {
            return Err(bad(
                "an edge goes in front of the embedded feed server only: drop edge, or any_server and stacks"
                    .into(),
            ));
        }
        Self::CONNECTIONS
            .check_named("connections", self.connections)
            .map_err(bad)?;
        check_ramp(self.ramp_per_s).map_err(|e| bad(format!("ramp_per_s {e}")))?;
        Self::RATE_HZ
            .check_named("rate_hz", self.rate_hz)
            .map_err(bad)?;
        Self::PAYLOAD_BYTES
            .check_named("payload_bytes", self.payload_bytes)
            .map_err(bad)?;
        for (v, what) in [
            (self.duration_s, "duration_s"),
            (self.settle_s, "settle_s"),
            (self.drain_timeout_s, "drain_timeout_s"),
            (self.connect_timeout_s, "connect_timeout_s"),
        ] {
            Self::SECONDS.check_named(what, v).map_err(bad)?;
        }
        if let Some(n) = self.h2_conns {
            Bounds::new(1, self.connections, " (the connections)")
                .check_named("h2_conns", n)
                .map_err(bad)?;
        }
        if let Some(p) = self.processes {
            Self::PROCESSES.check_named("processes", p).map_err(bad)?;
        }
        if let Some(link) = &self.link {
            link.validate().map_err(|e| bad(e.to_string()))?;
            if let Some(o) = link
                .outages
                .iter()
                .find(|o| o.end().as_secs_f64() > self.duration_s)
            {
                return Err(bad(format!(
                    "the outage {o} ends {} s into the hold, after the {} s hold: hold at least that long, and some seconds more to see the streams recover",
                    o.end().as_secs_f64(),
                    self.duration_s
                )));
            }
            if let Some(other) = self.beside_link() {
                return Err(bad(format!(
                    "a link runs the embedded feed server in its own network namespace; it cannot be combined with {other} (not supported: run those without the link)"
                )));
            }
        }
        self.edge().map_err(bad)?;
        let ramp_s = self.ramp_seconds();
        if ramp_s > DAY_S {
            return Err(bad(format!(
                "{} connections at {} per second would take {ramp_s:.0} s to open: at most {DAY_S} s",
                self.connections, self.ramp_per_s
            )));
        }
        Ok(())
    }

    /// The wires this scenario runs: those of its URLs when it loads any
    /// server, else its `wires`.
    pub fn wires_to_run(&self) -> Vec<Wire> {
        match &self.any_server {
            Some(any) => any.wires(),
            None => self.wires.clone(),
        }
    }

    /// The edge proxy and its config, if the scenario has one.
    pub fn edge(&self) -> Result<Option<(edge::EdgeKind, edge::EdgeProfile)>, String> {
        edge_choice(self.edge.as_deref(), self.edge_config.as_deref())
    }

    /// How long opening every connection takes (0 when all open at once).
    pub fn ramp_seconds(&self) -> f64 {
        if self.ramp_per_s > 0.0 {
            self.connections as f64 / self.ramp_per_s
        } else {
            0.0
        }
    }
}

/// New connections per second: 0 (all at once) or within
/// [`Scenario::RAMP_PER_S`].
pub fn check_ramp(per_s: f64) -> Result<f64, String> {
    if per_s == 0.0 {
        return Ok(0.0);
    }
    Scenario::RAMP_PER_S
        .check(per_s)
        .map_err(|e| format!("{e}, or 0 for all at once"))
}

impl Scenario {
    /// Connections per wire.
    pub const CONNECTIONS: Bounds<usize> = Bounds::new(1, 1_000_000, "");
    /// New connections per second when not 0 (all at once).
    pub const RAMP_PER_S: Bounds<f64> = Bounds::new(0.01, 1_000_000.0, " per second");
    /// The feed's rate: the embedded server's own range, with a floor that
    /// keeps one period under two minutes.
    pub const RATE_HZ: Bounds<f64> = Bounds::new(0.01, 1_000_000.0, " events/s");
    /// Padding of each event: under the clients' 1 MiB message limit.
    pub const PAYLOAD_BYTES: Bounds<usize> = Bounds::new(0, 1_000_000, " bytes");
    /// The hold, settle, drain and connect phases.
    pub const SECONDS: Bounds<f64> = Bounds::new(0.0, DAY_S, " s");
    /// Load-generator processes per wire.
    pub const PROCESSES: Bounds<usize> = Bounds::new(1, 256, "");
}

impl Scenario {
    /// The header of a scenario beyond the feed (`chat`, `echo`, `faults`):
    /// its settings live in its own section of the result.
    pub fn extra(
        name: &str,
        wires: Vec<Wire>,
        connections: usize,
        rate_hz: f64,
        duration_s: f64,
    ) -> Scenario {
        Scenario {
            name: name.to_string(),
            ramp_per_s: 0.0,
            settle_s: 0.0,
            ..feed_scenario(wires, connections, rate_hz, duration_s)
        }
    }

    /// A network scenario's settings, before its link: every wire at 100
    /// connections and 10 events/s, held `duration_s`.
    pub fn network(name: &str, duration_s: f64) -> Scenario {
        Scenario {
            name: name.to_string(),
            ..feed_scenario(all_wires(), 100, 10.0, duration_s)
        }
    }

    /// What this scenario combines with its link that a link cannot carry
    /// (the link's namespaces hold the embedded feed server and nothing
    /// else), if anything.
    fn beside_link(&self) -> Option<&'static str> {
        if self.edge.is_some() {
            Some("an edge proxy (--edge, `edge`)")
        } else if self.any_server.is_some() {
            Some("any other server (--sse-url/--ws-url, `any_server`)")
        } else if !self.stacks.is_empty() {
            Some("stacks (--stacks, `stacks`)")
        } else {
            None
        }
    }
}

/// The standard matrix: every wire at 100, 1,000 and 10,000 connections,
/// then the saturation sweep ([`SATURATION_RATES_HZ`]).
///
/// The rate keeps the total near 100,000 events/s at the two larger sizes,
/// so they compare the cost of connections rather than of events.
pub fn standard_suite(duration_s: f64) -> Vec<Scenario> {
    [(100, 100.0), (1_000, 100.0), (10_000, 10.0)]
        .into_iter()
        .map(|(connections, rate_hz)| Scenario {
            name: format!("feed-{connections}"),
            ..feed_scenario(all_wires(), connections, rate_hz, duration_s)
        })
        .chain(saturation_sweep(duration_s))
        .collect()
}

/// The saturation sweep's rates, events/s per connection at 1,000
/// connections: 200k, 400k and 600k events/s in all. actix delivered
/// 400k/s at 1,000 connections on the 2-core reference machine with p99
/// 24 ms, so the highest rate with p99 under 50 ms and nothing lost falls
/// inside the sweep, and a throughput regression moves it (or its p99) in
/// `loadgen compare`.
pub const SATURATION_RATES_HZ: [f64; 3] = [200.0, 400.0, 600.0];
/// The sweep's hold, at most: 4 wires × 3 rates must stay within about
/// three minutes with ramp, settle and drain.
const SATURATION_HOLD_S: f64 = 5.0;

/// Every wire at 1,000 connections at each of [`SATURATION_RATES_HZ`],
/// named `sweep-1000-<rate>hz`.
pub fn saturation_sweep(duration_s: f64) -> Vec<Scenario> {
    SATURATION_RATES_HZ
        .into_iter()
        .map(|rate_hz| Scenario {
            name: format!("sweep-1000-{rate_hz}hz"),
            saturation: true,
            ..feed_scenario(
                all_wires(),
                1_000,
                rate_hz,
                duration_s.min(SATURATION_HOLD_S),
            )
        })
        .collect()
}

/// A feed scenario with the defaults of a scenario file.
fn feed_scenario(wires: Vec<Wire>, connections: usize, rate_hz: f64, duration_s: f64) -> Scenario {
    Scenario {
        name: String::new(),
        wires,
        connections,
        ramp_per_s: default_ramp(),
        duration_s,
        rate_hz,
        payload_bytes: 0,
        h2_conns: None,
        settle_s: default_settle(),
        drain_timeout_s: default_drain(),
        connect_timeout_s: default_connect(),
        processes: None,
        link: None,
        any_server: None,
        stacks: Vec::new(),
        edge: None,
        edge_config: None,
        saturation: false,
    }
}

/// The stacks matrix (`loadgen suite --stacks`, and
/// `loadgen/scenarios/stacks.toml`): sse-h1 and ws-h1 on every stack at
/// 1,000 connections, all opened at once (the connect rate), at 25 to 200
/// events/s each (a sweep to saturation), and at 10,000 connections at
/// 10 events/s (100,000 events/s, as 1,000 at 100).
pub fn stacks_suite(duration_s: f64, stacks: &[Stack]) -> Vec<Scenario> {
    let sweep = [25.0, 50.0, 100.0, 200.0].map(|rate| (1_000, rate, 0.0));
    sweep
        .into_iter()
        .chain([(10_000, 10.0, 5_000.0)])
        .map(|(connections, rate_hz, ramp_per_s)| Scenario {
            name: format!("stacks-{}k-{rate_hz}hz", connections / 1_000),
            ramp_per_s,
            stacks: stacks.to_vec(),
            ..feed_scenario(
                vec![Wire::SseH1, Wire::WsH1],
                connections,
                rate_hz,
                duration_s,
            )
        })
        .collect()
}

/// An edge proxy (`nginx`, `haproxy`) and its config (`tuned` when none is
/// named, `naive` or a template file), as scenario files and limit runs
/// name them.
pub fn edge_choice(
    kind: Option<&str>,
    config: Option<&str>,
) -> Result<Option<(edge::EdgeKind, edge::EdgeProfile)>, String> {
    match (kind, config) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err("edge_config needs an edge (nginx or haproxy)".into()),
        (Some(kind), config) => {
            let kind: edge::EdgeKind = kind.parse().map_err(|e: edge::EdgeError| e.to_string())?;
            let profile = match config {
                Some(c) => c.parse::<edge::EdgeProfile>()?,
                None => edge::EdgeProfile::Tuned,
            };
            Ok(Some((kind, profile)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_files_load_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[[scenario]]\nname = \"small\"\nconnections = 10\nwires = [\"sse-h1\", \"ws-h1\"]\n",
        )
        .unwrap();
        let s = Scenario::load(&path).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].wires, vec![Wire::SseH1, Wire::WsH1]);
        assert_eq!(s[0].duration_s, 10.0);
    }

    #[test]
    fn bad_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[[scenario]]\nname = \"x\"\nconnections = 1\nwires = [\"sse-h3\"]\n",
        )
        .unwrap();
        let e = Scenario::load(&path).unwrap_err().to_string();
        assert!(e.contains("sse-h3"), "{e}");
        std::fs::write(&path, "[[scenario]]\nname = \"x\"\nconnections = 0\n").unwrap();
        let e = Scenario::load(&path).unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
        std::fs::write(&path, "[[scenario]]\nname = \"x\"\nconections = 5\n").unwrap();
        assert!(Scenario::load(&path).is_err());
        let e = Scenario::load(Path::new("/nonexistent.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent.toml"), "{e}");
    }

    #[test]
    fn a_link_table_is_read_and_its_outages_must_fit_the_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let head = "[[scenario]]\nname = \"l\"\nconnections = 10\nduration_s = 10\n";
        std::fs::write(
            &path,
            format!(
                "{head}[scenario.link]\ndelay = \"25ms\"\nloss = \"1%\"\noutages = [\"2s@5s\"]\n"
            ),
        )
        .unwrap();
        let s = Scenario::load(&path).unwrap();
        let link = s[0].link.as_ref().unwrap();
        assert_eq!(link.rtt().as_millis(), 50);
        assert_eq!(link.outages.len(), 1);
        std::fs::write(
            &path,
            format!("{head}[scenario.link]\noutages = [\"20s@5s\"]\n"),
        )
        .unwrap();
        let e = Scenario::load(&path).unwrap_err().to_string();
        assert!(e.contains("ends 25 s into the hold"), "{e}");
        std::fs::write(&path, format!("{head}[scenario.link]\nloss = \"200%\"\n")).unwrap();
        let e = Scenario::load(&path).unwrap_err().to_string();
        assert!(e.contains("loss"), "{e}");
        std::fs::write(&path, format!("{head}[scenario.link]\nlos = \"2%\"\n")).unwrap();
        assert!(Scenario::load(&path).is_err(), "unknown fields are refused");
    }

    #[test]
    fn the_suite_covers_every_wire_at_three_sizes_then_sweeps_the_rate() {
        let s = standard_suite(10.0);
        assert_eq!(
            s.iter().map(|s| s.connections).collect::<Vec<_>>(),
            [100, 1000, 10000, 1000, 1000, 1000]
        );
        assert!(s.iter().all(|s| s.wires.len() == 4 && s.validate().is_ok()));
        let sweep: Vec<_> = s[3..]
            .iter()
            .map(|s| (s.name.as_str(), s.rate_hz))
            .collect();
        assert_eq!(
            sweep,
            [
                ("sweep-1000-200hz", 200.0),
                ("sweep-1000-400hz", 400.0),
                ("sweep-1000-600hz", 600.0)
            ]
        );
        assert!(s[3..].iter().all(|s| s.duration_s == 5.0));
        // Only the sweep's steps may deliver less than offered without
        // that being a problem of the run.
        assert!(s[..3].iter().all(|s| !s.saturation));
        assert!(s[3..].iter().all(|s| s.saturation));
        assert_eq!(
            standard_suite(2.0)[3].duration_s,
            2.0,
            "a shorter suite, a shorter sweep"
        );
    }
}
