//! What the driver runs on one wire ([`WireSpec`]), made from a checked
//! [`Scenario`] and sent as is to worker processes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::result::{Bounds, LinkTiming, Scenario};
use crate::wire::Wire;

/// Streams Chromium puts on one HTTP/2 connection when the server announces
/// no limit (actix announces none): the default pool sizing follows it.
pub const BROWSER_H2_STREAMS: usize = 100;

/// What to run on one wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireSpec {
    pub wire: Wire,
    pub connections: usize,
    /// New connections per second (0: all at once).
    pub ramp_per_s: f64,
    /// How long the connections are held and measured.
    pub hold: Duration,
    /// Pause between "all connected" and the held-memory reading.
    pub settle: Duration,
    /// HTTP/2 connections carrying the streams (None: browser-like default).
    pub h2_conns: Option<usize>,
    /// How long connections may take to read up to the final id.
    pub drain_timeout: Duration,
    /// Extra time allowed, beyond the ramp, for every connection to open.
    pub connect_timeout: Duration,
    /// Reconnect delay until the server sends `retry:`.
    pub retry: Duration,
    /// Over an emulated link: its timing, by which connections judge
    /// stalls and recovery from outages.
    #[serde(default)]
    pub link: Option<LinkTiming>,
    /// The index of the first connection (a shard's block starts there).
    #[serde(default)]
    pub first_index: usize,
    /// When the hold starts (Unix ns, `--start-at`), instead of as soon as
    /// the connections are open and settled.
    #[serde(default)]
    pub hold_at_unix_ns: Option<u64>,
    /// An inter-arrival gap longer than this is a stall.
    #[serde(default = "default_stall")]
    pub stall_after: Duration,
    /// A saturation step: connections still short of the last id when the
    /// drain time runs out are counted as lost, not reported as a problem.
    #[serde(default)]
    pub saturation: bool,
}

fn default_stall() -> Duration {
    crate::measure::DEFAULT_STALL
}

/// A stall: as any server's settings say, else a second or three periods
/// of the feed, whichever is longer (a slow feed's normal gap is no stall).
fn stall_after(s: &Scenario) -> Duration {
    match &s.any_server {
        Some(any) => Duration::from_millis(any.stall_ms),
        None => Duration::try_from_secs_f64(3.0 / s.rate_hz)
            .unwrap_or(Duration::MAX)
            .max(crate::measure::DEFAULT_STALL),
    }
}

/// Longest any phase of a wire run may be, as a duration.
const DAY: Duration = Duration::from_secs(86_400);

impl WireSpec {
    /// The driver's settings for one of a scenario's wires. The scenario's
    /// ranges make every duration finite; a scenario that was not checked
    /// is refused here rather than panicking later.
    pub fn for_scenario(s: &Scenario, wire: Wire, retry: Duration) -> Result<WireSpec, String> {
        s.validate().map_err(|e| e.to_string())?;
        let secs = |v: f64| Duration::try_from_secs_f64(v).map_err(|e| format!("{v} s: {e}"));
        Ok(WireSpec {
            wire,
            connections: s.connections,
            ramp_per_s: s.ramp_per_s,
            hold: secs(s.duration_s)?,
            settle: secs(s.settle_s)?,
            h2_conns: s.h2_conns,
            drain_timeout: secs(s.drain_timeout_s)?,
            connect_timeout: secs(s.connect_timeout_s)?,
            retry,
            link: s.link.as_ref().map(LinkTiming::of),
            first_index: 0,
            hold_at_unix_ns: None,
            stall_after: stall_after(s),
            saturation: s.saturation,
        })
    }

    /// Checks a spec that did not come from a checked scenario (a worker's
    /// job, read from its parent).
    pub fn validate(&self) -> Result<(), String> {
        Scenario::CONNECTIONS.check_named("connections", self.connections)?;
        crate::result::check_ramp(self.ramp_per_s).map_err(|e| format!("ramp_per_s {e}"))?;
        if let Some(n) = self.h2_conns {
            Bounds::new(1, self.connections, " (the connections)").check_named("h2_conns", n)?;
        }
        for (d, what) in [
            (self.hold, "hold"),
            (self.settle, "settle"),
            (self.drain_timeout, "drain_timeout"),
            (self.connect_timeout, "connect_timeout"),
            (self.retry, "retry"),
            (self.ramp_time(), "ramp"),
        ] {
            if d > DAY {
                return Err(format!("{what} {d:?} is longer than a day"));
            }
        }
        Ok(())
    }

    /// How long opening every connection takes.
    pub fn ramp_time(&self) -> Duration {
        self.ramp_offset(self.connections)
    }

    /// When connection `i` starts, from the ramp's start (saturating for
    /// rates [`validate`](Self::validate) refuses).
    pub fn ramp_offset(&self, i: usize) -> Duration {
        if self.ramp_per_s > 0.0 {
            Duration::try_from_secs_f64(i as f64 / self.ramp_per_s).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        }
    }

    /// HTTP/2 connections for this many streams: like a browser, 100 streams
    /// per connection, but at least 2 so both server workers are used.
    pub fn h2_pool_size(&self) -> usize {
        self.h2_conns.unwrap_or_else(|| {
            self.connections
                .div_ceil(BROWSER_H2_STREAMS)
                .max(2)
                .min(self.connections.max(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        crate::result::standard_suite(10.0).remove(0)
    }

    #[test]
    fn a_checked_scenario_makes_a_spec() {
        let spec =
            WireSpec::for_scenario(&scenario(), Wire::SseH1, Duration::from_secs(1)).unwrap();
        assert_eq!(spec.hold, Duration::from_secs(10));
        assert!(spec.validate().is_ok());
        assert_eq!(spec.h2_pool_size(), 2);
    }

    #[test]
    fn unchecked_numbers_are_refused_not_panicked_on() {
        let mut s = scenario();
        s.ramp_per_s = 1e-300;
        assert!(WireSpec::for_scenario(&s, Wire::SseH1, Duration::ZERO).is_err());
        let mut spec = WireSpec::for_scenario(&scenario(), Wire::SseH1, Duration::ZERO).unwrap();
        spec.ramp_per_s = 1e-300;
        assert!(spec.validate().is_err());
        assert_eq!(spec.ramp_offset(5), Duration::MAX);
    }
}
