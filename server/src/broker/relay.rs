//! The relay: every instance reads the shared stream (`XREAD BLOCK`) into
//! its own hub, which fans out and keeps the replay ring as for a feed of
//! its own.
//!
//! It reads from the hub's newest id, so after an outage it reads exactly
//! what it missed; an id the stream no longer holds (trimmed while this
//! instance was away) leaves a hole in the ring that subscribers are told
//! about as a gap. A freshly started instance first fills its ring from the
//! stream's newest entries, so a client of another instance can resume
//! here at once.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::RedisError;
use tokio_util::sync::CancellationToken;

use super::entry::{stream_id, Entry};
use super::grid::Grid;
use super::link::Backoff;
use super::SharedFeed;

/// How long one `XREAD` blocks in Redis.
const BLOCK: Duration = Duration::from_millis(1000);
/// How long past [`BLOCK`] an answer may take before the connection is
/// taken for dead (a Redis that stopped answering without closing).
const READ_SLACK: Duration = Duration::from_secs(3);
/// Entries read at once: bounds what one read holds.
const BATCH: usize = 512;

/// Reads the stream into the hub until `stop`, reconnecting with backoff.
pub async fn run(feed: Arc<SharedFeed>, stop: CancellationToken) {
    let stats = feed.stats();
    let mut backoff = Backoff::default();
    let mut reported = false;
    while !stop.is_cancelled() {
        let connected = tokio::select! {
            _ = stop.cancelled() => return,
            c = feed.link.connect(None) => c,
        };
        let outcome = match connected {
            Ok(mut conn) => {
                stats.counters.connects.inc();
                stats.connected.set(1);
                backoff.reset();
                if reported {
                    tracing::info!(redis = %feed.redis_url, "shared feed: connected to Redis again");
                    reported = false;
                }
                let r = relay(&feed, &mut conn, &stop).await;
                stats.connected.set(0);
                stats.counters.disconnects.inc();
                r
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            stats.counters.redis_errors.inc();
            // Once per outage at WARN; every retry at DEBUG.
            if !reported {
                tracing::warn!(redis = %feed.redis_url, error = %e,
                    "shared feed: Redis unreachable; connected clients keep their streams, retrying with backoff");
                reported = true;
            } else {
                tracing::debug!(error = %e, "shared feed: relay still cannot reach Redis");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_pause()) => {}
        }
    }
}

/// Reads until the connection fails (`Err`) or `stop` (`Ok`).
async fn relay(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
    stop: &CancellationToken,
) -> Result<(), RedisError> {
    read_grid(feed, conn).await?;
    if feed.hub.latest_id() == 0 {
        seed(feed, conn).await?;
    }
    loop {
        let cursor = feed.hub.latest_id();
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&feed.stream)
            .arg(stream_id(cursor));
        let read = xread.query_async::<Option<StreamReadReply>>(conn);
        let reply = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(BLOCK + READ_SLACK, read) => r.map_err(|_| timed_out())??,
        };
        let Some(reply) = reply else {
            // Nothing new within the block; the grid may have been made meanwhile.
            if feed.grid().is_none() {
                read_grid(feed, conn).await?;
            }
            continue;
        };
        for raw in reply.keys.into_iter().flat_map(|k| k.ids) {
            publish(feed, &raw);
        }
    }
}

/// Hands one entry to the hub, counting what the stream skipped.
fn publish(feed: &SharedFeed, raw: &redis::streams::StreamId) {
    let stats = feed.stats();
    let entry = match Entry::parse(raw) {
        Ok(e) => e,
        Err(e) => {
            // Someone else wrote to our stream: skip it, loudly once per entry.
            tracing::warn!(error = %e, "shared feed: ignoring a stream entry that is not a tick");
            return;
        }
    };
    let latest = feed.hub.latest_id();
    if entry.id <= latest {
        return;
    }
    if latest > 0 && entry.id > latest + 1 {
        let missing = entry.id - latest - 1;
        stats.counters.relay_gap_ids.inc_by(missing);
        tracing::warn!(
            from = latest + 1,
            to = entry.id - 1,
            "shared feed: the stream no longer holds these ids; subscribers get a gap event"
        );
    }
    feed.hub.publish(entry.event());
    stats.counters.relayed.inc();
    stats.last_id_read.set(entry.id as i64);
}

/// Reads the feed's grid, if a producer has written one.
pub async fn read_grid(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
) -> Result<(), RedisError> {
    let text: Option<String> = redis::cmd("GET")
        .arg(&feed.grid_key)
        .query_async(conn)
        .await?;
    if let Some(text) = text {
        match Grid::from_json(&text) {
            Ok(g) => feed.set_grid(g),
            Err(e) => tracing::warn!(error = %e, "shared feed: ignoring the grid in Redis"),
        }
    }
    Ok(())
}

/// Fills a fresh instance's ring with the stream's newest entries.
async fn seed(feed: &SharedFeed, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(&feed.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(feed.hub.ring_capacity())
        .query_async(conn)
        .await?;
    let events: Vec<_> = newest
        .ids
        .iter()
        .rev()
        .filter_map(|raw| Entry::parse(raw).ok())
        .map(|e| e.event())
        .collect();
    if let Some(last) = events.last() {
        let stats = feed.stats();
        stats.last_id_read.set(last.id as i64);
        tracing::info!(
            first = events[0].id,
            last = last.id,
            "shared feed: ring filled from the stream"
        );
    }
    feed.hub.seed(events);
    Ok(())
}

fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer a blocking read in time",
    ))
}
