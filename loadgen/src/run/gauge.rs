//! How a wire run reads the server's side: the feed server's `/stats`
//! (memory, CPU and its newest id), another server's process in /proc
//! (memory and CPU only), or nothing.

use std::time::{Duration, Instant};

use crate::client::{ServerProbe, ServerSnapshot};
use crate::measure::ProcessProbe;

/// How long a server without `/stats` is given to free closed connections
/// before its memory is read again.
const SETTLE_WITHOUT_STATS: Duration = Duration::from_secs(1);

/// Where the server's figures come from.
#[derive(Debug, Clone)]
pub enum ServerGauge {
    /// The feed server's `/stats`: figures, and the newest id every
    /// connection must reach at the end.
    Stats(Box<ServerProbe>),
    /// A server process (`--server-pid`, a baseline stack): RSS and CPU
    /// from /proc; the final id is the highest any connection saw.
    Process(ProcessProbe),
    /// No figures: the report says "not measured".
    Unmeasured,
}

impl ServerGauge {
    /// The server's figures now; `Ok(None)` when there are none to read.
    pub async fn snapshot(&self) -> Result<Option<ServerSnapshot>, String> {
        match self {
            ServerGauge::Stats(probe) => {
                probe.snapshot().await.map(Some).map_err(|e| e.to_string())
            }
            ServerGauge::Process(probe) => probe
                .read()
                .map(|f| {
                    Some(ServerSnapshot {
                        rss_bytes: f.rss_bytes,
                        cpu_us: f.cpu_us,
                        ..ServerSnapshot::default()
                    })
                })
                .map_err(|e| e.to_string()),
            ServerGauge::Unmeasured => Ok(None),
        }
    }

    /// True when the server says its newest id (only the feed server does).
    pub fn knows_newest_id(&self) -> bool {
        matches!(self, ServerGauge::Stats(_))
    }

    /// The figures once the server has let the connections go and its
    /// memory has settled (see [`RssSettling`]): `/stats` first says when
    /// its open count is back to `before`'s; a process is given a second for
    /// that. Also how long after that the reading was taken, in seconds.
    pub async fn settle_after(
        &self,
        before: Option<&ServerSnapshot>,
    ) -> Option<(ServerSnapshot, f64)> {
        match self {
            ServerGauge::Stats(probe) => {
                wait_for_closed(probe, before).await?;
            }
            ServerGauge::Process(_) => tokio::time::sleep(SETTLE_WITHOUT_STATS).await,
            ServerGauge::Unmeasured => return None,
        }
        let started = Instant::now();
        let mut settling = RssSettling::new(before.map(|b| b.rss_bytes));
        loop {
            let now = self.snapshot().await.ok().flatten()?;
            let waited = started.elapsed();
            if settling.settled(now.rss_bytes, waited) {
                return Some((now, waited.as_secs_f64()));
            }
            tokio::time::sleep(RSS_POLL).await;
        }
    }
}

/// How often the memory is read while it settles.
const RSS_POLL: Duration = Duration::from_millis(200);
/// The longest the memory is waited for once the connections are gone
/// (issue 15's bound: back within 20 % of idle within 10 s).
pub const RSS_SETTLE_MAX: Duration = Duration::from_secs(10);
/// Memory that has not moved by more than [`RSS_STILL_FRACTION`] for this
/// long has settled.
const RSS_STILL_FOR: Duration = Duration::from_secs(2);
const RSS_STILL_FRACTION: f64 = 0.02;
/// Back within this fraction above the idle figure: settled at once.
const RSS_NEAR_IDLE_FRACTION: f64 = 0.2;

/// Decides when the server's memory after a run is worth reading. Right
/// after the last close an allocator still holds the freed pages (the feed
/// server's trimmer gives them back within half a second; glibc's malloc
/// alone, as in another server, keeps them), so the reading waits until RSS is back near
/// idle, or has stopped falling for [`RSS_STILL_FOR`], or
/// [`RSS_SETTLE_MAX`] has passed.
#[derive(Debug, Clone)]
pub struct RssSettling {
    idle: Option<u64>,
    /// The reading the current still period started at, and when.
    still_since: Option<(u64, Duration)>,
}

impl RssSettling {
    /// `idle` is the RSS before the connections opened, when known.
    pub fn new(idle: Option<u64>) -> Self {
        RssSettling {
            idle,
            still_since: None,
        }
    }

    /// Takes one reading, `waited` after the connections were gone; true
    /// when it is the one to report.
    pub fn settled(&mut self, rss: u64, waited: Duration) -> bool {
        if waited >= RSS_SETTLE_MAX {
            return true;
        }
        if let Some(idle) = self.idle {
            if rss as f64 <= idle as f64 * (1.0 + RSS_NEAR_IDLE_FRACTION) {
                return true;
            }
        }
        match self.still_since {
            Some((mark, since))
                if (mark.abs_diff(rss) as f64) <= mark as f64 * RSS_STILL_FRACTION =>
            {
                waited.saturating_sub(since) >= RSS_STILL_FOR
            }
            _ => {
                self.still_since = Some((rss, waited));
                false
            }
        }
    }
}

/// Polls `/stats` (up to 10 s) until the open count is back to `before`'s.
async fn wait_for_closed(
    probe: &ServerProbe,
    before: Option<&ServerSnapshot>,
) -> Option<ServerSnapshot> {
    let baseline = before.map_or(0, |b| b.open);
    let mut after = None;
    for _ in 0..100 {
        after = probe.snapshot().await.ok();
        if after.as_ref().is_none_or(|a| a.open <= baseline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn back_near_idle_is_settled_at_once() {
        let mut s = RssSettling::new(Some(10 * MIB));
        assert!(!s.settled(55 * MIB, at(0)));
        assert!(s.settled(12 * MIB, at(200)), "12 MiB is within 20 % of 10");
    }

    #[test]
    fn falling_memory_is_waited_for_until_it_stops() {
        let mut s = RssSettling::new(Some(10 * MIB));
        // Purging: each reading well below the last.
        for (i, mib) in [90, 70, 50, 40, 30].into_iter().enumerate() {
            assert!(!s.settled(mib * MIB, at(200 * i as u64)), "{mib} MiB");
        }
        // Flat at 30 MiB from 0.8 s: settled once flat for 2 s.
        assert!(!s.settled(30 * MIB, at(1_800)));
        assert!(!s.settled(30 * MIB + 100_000, at(2_600)));
        assert!(s.settled(30 * MIB, at(2_800)));
    }

    #[test]
    fn memory_that_never_settles_is_read_at_the_bound() {
        let mut s = RssSettling::new(None);
        let mut t = 0;
        let mut rss = 500 * MIB;
        while t < 10_000 {
            assert!(!s.settled(rss, at(t)));
            rss = rss * 9 / 10;
            t += 200;
        }
        assert!(s.settled(rss, at(t)));
    }
}
