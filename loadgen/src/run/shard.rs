//! One load generator among several (`--shard I/N`, `--start-at`): each
//! runs its share of every wire's connections and starts its hold at one
//! agreed instant, so shards on different machines (or pods) measure the
//! same window and `loadgen merge` adds them up exactly.
//!
//! Shard `I` of `N` (from 0, as Kubernetes numbers an Indexed Job's pods)
//! holds a contiguous block of the connection indices: the first
//! `C mod N` shards take `⌈C/N⌉` connections, the others `⌊C/N⌋`, and
//! shard `I` starts at the sum of the shares before it. The index picks a
//! connection's source address and HTTP/2 connection, so shards never
//! collide on them.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::result::Scenario;

/// Which share of the connections this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// From 0.
    pub index: usize,
    pub count: usize,
}

/// The most shards one run may have.
pub const MAX_SHARDS: usize = 10_000;

impl Shard {
    /// Parses `I/N` (0 ≤ I < N ≤ 10,000).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a shard: write I/N, e.g. 0/4"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: the shard index `{i}` is not a whole number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: the shard count `{n}` is not a whole number"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "`{s}`: the shard count must be from 1 to {MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "`{s}`: the shard index must be from 0 to {} (shards count from 0)",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's connections of `total`, and the index of its first.
    pub fn share_of(&self, total: usize) -> (usize, usize) {
        let share = |i: usize| total / self.count + usize::from(i < total % self.count);
        let first: usize = (0..self.index).map(share).sum();
        (share(self.index), first)
    }

    /// The scenario as this shard runs it: its share of the connections (at
    /// its share of the ramp), or an error when it would get none.
    pub fn scenario(&self, s: &Scenario) -> Result<Scenario, String> {
        let (share, _) = self.share_of(s.connections);
        if share == 0 {
            return Err(format!(
                "shard {}/{} of scenario `{}` gets no connection of {}: use fewer shards",
                self.index, self.count, s.name, s.connections
            ));
        }
        let mut mine = s.clone();
        mine.connections = share;
        mine.ramp_per_s = s.ramp_per_s * share as f64 / s.connections as f64;
        if let Some(h2) = s.h2_conns {
            mine.h2_conns = Some(self.share_of(h2).0.clamp(1, share));
        }
        Ok(mine)
    }
}

/// Parses `--start-at`: RFC 3339 (`2026-11-29T10:00:00Z`), into Unix
/// nanoseconds.
pub fn parse_start_at(s: &str) -> Result<u64, String> {
    let at = humantime::parse_rfc3339_weak(s.trim()).map_err(|e| {
        format!("`{s}` is not an RFC 3339 instant ({e}), e.g. 2026-11-29T10:00:00Z")
    })?;
    let ns = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?
        .as_nanos();
    u64::try_from(ns).map_err(|_| format!("`{s}` is too far in the future"))
}

/// Waits until `at_unix_ns` (wall clock). Returns how late the hold
/// starts, when the instant had passed already (the connections were not
/// all open by then: the windows of the shards then differ).
pub async fn wait_until(at_unix_ns: u64) -> Option<Duration> {
    let now = server::event::unix_now_ns();
    if now > at_unix_ns {
        return Some(Duration::from_nanos(now - at_unix_ns));
    }
    tokio::time::sleep(Duration::from_nanos(at_unix_ns - now)).await;
    None
}

/// The problem a late hold start is, for `problems`.
pub fn late_start(late: Duration) -> String {
    format!(
        "the hold began {:.3} s after --start-at: the connections were not ready in time, \
         so this shard's window differs from the others'",
        late.as_secs_f64()
    )
}

/// `--start-at` as the user wrote it, for messages.
pub fn show_instant(at_unix_ns: u64) -> String {
    humantime::format_rfc3339(UNIX_EPOCH + Duration::from_nanos(at_unix_ns)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_connection_once_in_blocks() {
        for (total, n) in [(10, 3), (45_000, 6), (7, 7), (1_000, 1)] {
            let mut next = 0;
            for i in 0..n {
                let (share, first) = Shard { index: i, count: n }.share_of(total);
                assert_eq!(
                    first, next,
                    "{total} over {n}: shard {i} starts after the last"
                );
                next += share;
            }
            assert_eq!(next, total);
        }
        assert_eq!(Shard { index: 0, count: 3 }.share_of(10), (4, 0));
        assert_eq!(Shard { index: 2, count: 3 }.share_of(10), (3, 7));
    }

    #[test]
    fn shard_and_instant_flags_are_checked() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2", "0/10001"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let t = parse_start_at("2026-11-29T10:00:00Z").unwrap();
        assert_eq!(show_instant(t), "2026-11-29T10:00:00Z");
        assert!(parse_start_at("tomorrow").is_err());
        assert!(parse_start_at("1960-01-01T00:00:00Z").is_err());
    }
}
