//! The shared feed's time grid: when tick `id` is due, for every instance
//! and every producer that will ever lead.
//!
//! Stored once in Redis (`<key>:grid`, written with `SET NX`, so the first
//! producer's grid is the feed's for good). A new producer continues the
//! ids on it, so a tick keeps the same `sent_unix_ns` whoever publishes
//! it and however late: lateness shows as latency, never as a skipped id.

use serde::{Deserialize, Serialize};

use crate::config::MAX_PAYLOAD_BYTES;
use crate::feed::period_ns;

/// Tick `id` (from 1) is due at `start_unix_ns + (id - 1) × period_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub start_unix_ns: u64,
    pub period_ns: u64,
    /// Each event's JSON is padded to this many bytes.
    pub payload_bytes: usize,
}

/// A grid read from Redis that this server cannot use.
#[derive(Debug, thiserror::Error)]
#[error("the shared feed's grid in Redis is not usable ({0}); delete the key to start a new feed")]
pub struct GridError(String);

impl Grid {
    /// A new feed whose first tick is due at `start_unix_ns`.
    pub fn new(start_unix_ns: u64, rate_hz: f64, payload_bytes: usize) -> Grid {
        Grid {
            start_unix_ns,
            period_ns: period_ns(rate_hz),
            payload_bytes,
        }
    }

    /// The scheduled wall-clock time of tick `id`.
    pub fn sent_unix_ns(&self, id: u64) -> u64 {
        self.start_unix_ns
            .saturating_add(id.saturating_sub(1).saturating_mul(self.period_ns))
    }

    /// The newest id due at `now_unix_ns` (0 before the first).
    pub fn due_id(&self, now_unix_ns: u64) -> u64 {
        if now_unix_ns < self.start_unix_ns {
            return 0;
        }
        (now_unix_ns - self.start_unix_ns) / self.period_ns + 1
    }

    pub fn rate_hz(&self) -> f64 {
        1e9 / self.period_ns as f64
    }

    /// The grid's text in Redis.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Grid always serializes")
    }

    /// Reads a grid from Redis, refusing what would break the producer
    /// (a zero period, a padding beyond what an event may carry).
    pub fn from_json(text: &str) -> Result<Grid, GridError> {
        let g: Grid = serde_json::from_str(text)
            .map_err(|e| GridError(format!("{e}: {}", crate::event::snippet(text))))?;
        if g.period_ns == 0 {
            return Err(GridError("a period of 0 ns".into()));
        }
        if g.payload_bytes > MAX_PAYLOAD_BYTES {
            return Err(GridError(format!(
                "payload_bytes {} is over {MAX_PAYLOAD_BYTES}",
                g.payload_bytes
            )));
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_agree() {
        let g = Grid::new(1_000, 4.0, 0);
        assert_eq!(g.period_ns, 250_000_000);
        assert_eq!(g.sent_unix_ns(1), 1_000);
        assert_eq!(g.sent_unix_ns(5), 1_000 + 1_000_000_000);
        assert_eq!(g.due_id(999), 0);
        assert_eq!(g.due_id(1_000), 1);
        assert_eq!(g.due_id(g.sent_unix_ns(7)), 7);
        assert_eq!(g.due_id(g.sent_unix_ns(7) - 1), 6);
        assert_eq!(g.rate_hz(), 4.0);
    }

    #[test]
    fn text_round_trips_and_garbage_is_refused() {
        let g = Grid::new(123, 0.5, 64);
        assert_eq!(Grid::from_json(&g.to_json()).unwrap(), g);
        for bad in [
            "",
            "{}",
            r#"{"start_unix_ns":1,"period_ns":0,"payload_bytes":0}"#,
            r#"{"start_unix_ns":1,"period_ns":1,"payload_bytes":999999999999}"#,
        ] {
            assert!(Grid::from_json(bad).is_err(), "{bad}");
        }
    }
}
