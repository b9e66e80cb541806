//! How a wire run reads the server's side: the feed server's `/stats`
//! (memory, CPU and its newest id), another server's process in /proc
//! (memory and CPU only), or nothing.

use std::time::Duration;

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

    /// The figures once the server has let the connections go: `/stats`
    /// says when its open count is back to `before`'s (up to 10 s); a
    /// process is given a second.
    pub async fn settle_after(&self, before: Option<&ServerSnapshot>) -> Option<ServerSnapshot> {
        match self {
            ServerGauge::Stats(probe) => settle_after(probe, before).await,
            ServerGauge::Process(_) => {
                tokio::time::sleep(SETTLE_WITHOUT_STATS).await;
                self.snapshot().await.ok().flatten()
            }
            ServerGauge::Unmeasured => None,
        }
    }
}

/// Waits (up to 10 s) for the feed server to see the connections gone, then reads it.
pub async fn settle_after(
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
