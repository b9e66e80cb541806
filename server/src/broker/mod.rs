//! The shared feed (`--feed-redis`): several server instances serve one
//! feed through Redis Streams, so a client that reconnects to *another*
//! instance resumes with `Last-Event-ID` and loses nothing.
//!
//! - One instance produces: it holds the [`lease`], ticks on the shared
//!   [`grid`] and appends each tick to the stream (`XADD … MAXLEN ~ N`) as
//!   an [`entry`] whose id is the feed id ([`producer`]).
//! - Every instance, the producer included, reads the stream (`XREAD
//!   BLOCK`) into its own hub and ring, and fans out locally ([`relay`]):
//!   the same ids and the same bytes everywhere.
//! - A client older than the local ring is served from the stream
//!   ([`archive`], `XRANGE`), and only what the stream no longer holds is
//!   announced as a gap.
//! - Redis unreachable: connected clients keep their streams (nothing new
//!   arrives), every task reconnects with backoff ([`link`]), nothing is
//!   buffered; the figures are in `/stats` `broker` and `/metrics`.
//!
//! Keys, from `--feed-key NAME`: the stream `NAME`, the lease `NAME:lease`,
//! the grid `NAME:grid`.

pub mod archive;
pub mod entry;
pub mod grid;
pub mod lease;
pub mod link;
pub mod producer;
pub mod relay;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::event::unix_now_ns;
use crate::hub::Hub;
use crate::stats::{BrokerStats, BrokerValues};
use grid::Grid;
use link::Link;

/// Why the shared feed could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("--feed-redis `{url}`: {source}")]
    Url {
        url: String,
        source: redis::RedisError,
    },
    #[error("the hub was made without the broker's figures (Stats::with_broker)")]
    NoStats,
}

/// What the shared feed's tasks share.
#[derive(Debug)]
pub struct SharedFeed {
    link: Link,
    hub: Arc<Hub>,
    redis_url: String,
    /// The stream's key.
    stream: String,
    lease_key: String,
    grid_key: String,
    /// This instance's name in the lease.
    instance: String,
    lease: Duration,
    stream_max: usize,
    /// The grid a new feed gets from this instance (`--rate`, `--payload-bytes`).
    rate_hz: f64,
    payload_bytes: usize,
    /// The feed's grid as last read from (or written to) Redis.
    grid: Mutex<Option<Grid>>,
}

impl SharedFeed {
    /// Checks the settings; nothing is connected until [`spawn`](Self::spawn).
    pub fn new(config: &ServerConfig, hub: &Arc<Hub>) -> Result<Arc<SharedFeed>, BrokerError> {
        let url = config.feed_redis.clone().unwrap_or_default();
        let link = Link::new(&url).map_err(|source| BrokerError::Url {
            url: link::redacted(&url),
            source,
        })?;
        if hub.stats.broker.is_none() {
            return Err(BrokerError::NoStats);
        }
        let key = &config.feed_key;
        Ok(Arc::new(SharedFeed {
            link,
            hub: hub.clone(),
            redis_url: link::redacted(&url),
            stream: key.clone(),
            lease_key: format!("{key}:lease"),
            grid_key: format!("{key}:grid"),
            instance: instance_name(),
            lease: config.feed_lease,
            stream_max: config.feed_stream_max,
            rate_hz: config.rate,
            payload_bytes: config.payload_bytes,
            grid: Mutex::new(None),
        }))
    }

    /// Starts the relay and the producer's campaign, and serves old resumes
    /// from the stream; all stop with `stop`.
    pub fn spawn(self: &Arc<Self>, stop: CancellationToken) {
        self.hub
            .set_archive(Arc::new(archive::StreamArchive::new(self.clone())));
        tokio::spawn(relay::run(self.clone(), stop.clone()));
        tokio::spawn(producer::run(self.clone(), stop));
    }

    fn stats(&self) -> &BrokerStats {
        self.hub
            .stats
            .broker
            .as_ref()
            .expect("checked in SharedFeed::new")
    }

    /// The grid as last known.
    pub fn grid(&self) -> Option<Grid> {
        *self.grid.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_grid(&self, grid: Grid) {
        let mut known = self.grid.lock().unwrap_or_else(|p| p.into_inner());
        if known.is_none() && (grid.rate_hz() - self.rate_hz).abs() > 1e-9 * self.rate_hz {
            tracing::warn!(
                feed_rate_hz = grid.rate_hz(),
                own_rate_hz = self.rate_hz,
                "the shared feed's grid in Redis has another rate than --rate: following the feed's"
            );
        }
        *known = Some(grid);
    }

    /// The highest id the feed may have made by now: every instance's
    /// clients may have seen up to it.
    pub fn horizon(&self) -> u64 {
        self.grid()
            .map_or(u64::MAX, |g| g.due_id(unix_now_ns()).saturating_add(1))
    }

    /// `/stats` `broker`.
    pub fn figures(&self) -> BrokerFigures {
        let s = self.stats();
        BrokerFigures {
            redis: self.redis_url.clone(),
            key: self.stream.clone(),
            instance: self.instance.clone(),
            role: if s.leader.get() == 1 {
                "leader"
            } else {
                "follower"
            },
            connected: s.connected.get() == 1,
            last_id_read: s.last_id_read.get().max(0) as u64,
            lease_ms: self.lease.as_millis() as u64,
            stream_max: self.stream_max,
            grid: self.grid().map(|g| GridFigures {
                start_unix_ns: g.start_unix_ns,
                period_ns: g.period_ns,
                rate_hz: g.rate_hz(),
                payload_bytes: g.payload_bytes,
            }),
            counters: s.counters.values(),
        }
    }
}

/// `/stats` `broker`: the shared feed as this instance sees it.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerFigures {
    /// Redis's URL, without a password.
    pub redis: String,
    /// The stream's key (the lease and the grid are `<key>:lease`, `<key>:grid`).
    pub key: String,
    /// This instance's name in the lease.
    pub instance: String,
    /// `leader` while this instance produces, else `follower`.
    pub role: &'static str,
    /// Whether the relay's connection to Redis is up.
    pub connected: bool,
    /// The newest id read from the stream.
    pub last_id_read: u64,
    pub lease_ms: u64,
    pub stream_max: usize,
    /// The feed's time grid, once read from Redis.
    pub grid: Option<GridFigures>,
    #[serde(flatten)]
    pub counters: BrokerValues,
}

#[derive(Debug, Clone, Serialize)]
pub struct GridFigures {
    pub start_unix_ns: u64,
    pub period_ns: u64,
    pub rate_hz: f64,
    pub payload_bytes: usize,
}

/// A name no other instance has: host, process id and start time.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{}", std::process::id(), unix_now_ns())
}
