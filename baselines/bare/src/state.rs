//! What every connection task shares: the configuration, the fan-out, the
//! counters, and the token that says the server is stopping.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::BareConfig;
use crate::fanout::Fanout;
use crate::stats::{Stats, StatsSnapshot};

#[derive(Debug)]
pub struct State {
    pub config: BareConfig,
    pub fanout: Arc<Fanout>,
    pub stats: Stats,
    /// Cancelled once, on shutdown: every task watches it (no global flag).
    pub stop: CancellationToken,
}

impl State {
    pub fn new(config: BareConfig) -> Self {
        State {
            fanout: Arc::new(Fanout::new(config.queue, config.replay)),
            config,
            stats: Stats::default(),
            stop: CancellationToken::new(),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.stats
            .snapshot(self.config.rate, self.fanout.latest_id())
    }
}
