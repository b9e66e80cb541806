//! What to run: one scenario from the CLI or a TOML file, or the standard suite.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver::WireSpec;
use crate::wire::Wire;

/// One run: some wires, a connection count, a feed, how long to hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "all_wires")]
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

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |reason: &str| {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                reason: reason.into(),
            })
        };
        if self.wires.is_empty() {
            return bad("no wires");
        }
        if self.connections == 0 {
            return bad("connections must be at least 1");
        }
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0) {
            return bad("rate_hz must be above 0");
        }
        for (v, what) in [
            (self.duration_s, "duration_s"),
            (self.settle_s, "settle_s"),
            (self.drain_timeout_s, "drain_timeout_s"),
            (self.connect_timeout_s, "connect_timeout_s"),
            (self.ramp_per_s, "ramp_per_s"),
        ] {
            if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
                return bad(&format!("{what} must be between 0 and 86400"));
            }
        }
        Ok(())
    }

    /// The driver's settings for one of this scenario's wires.
    pub fn wire_spec(&self, wire: Wire, retry: Duration) -> WireSpec {
        WireSpec {
            wire,
            connections: self.connections,
            ramp_per_s: self.ramp_per_s,
            hold: Duration::from_secs_f64(self.duration_s),
            settle: Duration::from_secs_f64(self.settle_s),
            h2_conns: self.h2_conns,
            drain_timeout: Duration::from_secs_f64(self.drain_timeout_s),
            connect_timeout: Duration::from_secs_f64(self.connect_timeout_s),
            retry,
        }
    }
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
            wires,
            connections,
            ramp_per_s: 0.0,
            duration_s,
            rate_hz,
            payload_bytes: 0,
            h2_conns: None,
            settle_s: 0.0,
            drain_timeout_s: default_drain(),
            connect_timeout_s: default_connect(),
            processes: None,
        }
    }
}

/// The suite's scenarios beyond the feed: chat, echo and faults (each run
/// after the feed matrix by `loadgen suite`).
pub fn beyond_feed_suite(duration_s: f64) -> Vec<crate::scenarios::Extra> {
    crate::scenarios::suite(duration_s)
}

/// The standard matrix: every wire at 100, 1,000 and 10,000 connections.
///
/// The rate keeps the total near 100,000 events/s at the two larger sizes,
/// so they compare the cost of connections rather than of events.
pub fn standard_suite(duration_s: f64) -> Vec<Scenario> {
    [(100, 100.0), (1_000, 100.0), (10_000, 10.0)]
        .into_iter()
        .map(|(connections, rate_hz)| Scenario {
            name: format!("feed-{connections}"),
            wires: all_wires(),
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
        })
        .collect()
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
    fn the_suite_covers_every_wire_at_three_sizes() {
        let s = standard_suite(10.0);
        assert_eq!(
            s.iter().map(|s| s.connections).collect::<Vec<_>>(),
            [100, 1000, 10000]
        );
        assert!(s.iter().all(|s| s.wires.len() == 4 && s.validate().is_ok()));
    }
}
