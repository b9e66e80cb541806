//! The producer: the instance holding the lease ticks on the feed's grid
//! and appends every tick to the stream; the others wait to take over.
//!
//! A new producer continues from the stream's last entry (or from its own
//! ring, if Redis came back empty) on the same grid, and publishes at once
//! every tick that fell due while nobody led, each with its scheduled
//! time, so the failover shows as latency and no id is skipped. Entry ids
//! are the feed ids, and Redis refuses an id that is not above the
//! stream's top: a second producer (one that was paused past its lease)
//! can neither duplicate an id nor leave a hole.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use redis::{RedisError, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::entry::{stream_id, PAYLOAD_FIELD, SENT_FIELD};
use super::grid::Grid;
use super::lease::Lease;
use super::link::Backoff;
use super::relay::read_grid;
use super::SharedFeed;
use crate::event::unix_now_ns;

/// How long one command may take before the connection is taken for dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Ticks written in one round trip when catching up.
const BATCH: u64 = 256;

/// Campaigns for the lease and produces while holding it, until `stop`.
pub async fn run(feed: Arc<SharedFeed>, stop: CancellationToken) {
    let lease = Lease::new(feed.lease_key.clone(), feed.instance.clone(), feed.lease);
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        let connected = tokio::select! {
            _ = stop.cancelled() => return,
            c = feed.link.connect(Some(COMMAND_TIMEOUT)) => c,
        };
        let outcome = match connected {
            Ok(mut conn) => {
                backoff.reset();
                campaign(&feed, &lease, &mut conn, &stop).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            feed.stats().counters.redis_errors.inc();
            tracing::debug!(error = %e, "shared feed: the producer's campaign lost Redis");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_pause()) => {}
        }
    }
}

/// Tries for the lease every quarter of its length; leads when it gets it.
async fn campaign(
    feed: &SharedFeed,
    lease: &Lease,
    conn: &mut MultiplexedConnection,
    stop: &CancellationToken,
) -> Result<(), RedisError> {
    loop {
        let asked_at = Instant::now();
        if lease.acquire(conn).await? {
            lead(feed, lease, conn, stop, asked_at).await?;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(lease.length() / 4) => {}
        }
    }
}

/// Produces until the lease is lost, Redis fails or `stop` (then the lease
/// is given up so a successor need not wait for it to expire).
async fn lead(
    feed: &SharedFeed,
    lease: &Lease,
    conn: &mut MultiplexedConnection,
    stop: &CancellationToken,
    asked_at: Instant,
) -> Result<(), RedisError> {
    let stats = feed.stats();
    stats.leader.set(1);
    stats.counters.takeovers.inc();
    let result = produce(feed, lease, conn, stop, asked_at).await;
    stats.leader.set(0);
    stats.counters.stepdowns.inc();
    if stop.is_cancelled() {
        let _ = tokio::time::timeout(Duration::from_secs(1), lease.release(conn)).await;
    }
    result
}

async fn produce(
    feed: &SharedFeed,
    lease: &Lease,
    conn: &mut MultiplexedConnection,
    stop: &CancellationToken,
    asked_at: Instant,
) -> Result<(), RedisError> {
    // The lease runs from when it was asked for; a tenth is kept as margin
    // for the time the answer took.
    let margin = lease.length() / 10;
    let mut valid_until = asked_at + lease.length() - margin;
    let grid = ensure_grid(feed, conn).await?;
    let mut next = first_id(feed, conn, &grid).await?;
    tracing::info!(
        next,
        instance = %feed.instance,
        "shared feed: this instance produces now"
    );
    let mut renew_at = Instant::now() + lease.renew_every();
    loop {
        if Instant::now() >= renew_at {
            let asked = Instant::now();
            if !lease.renew(conn).await? {
                tracing::warn!(
                    "shared feed: the producer's lease went to another instance; following"
                );
                return Ok(());
            }
            valid_until = asked + lease.length() - margin;
            renew_at = asked + lease.renew_every();
        }
        if Instant::now() >= valid_until {
            tracing::warn!("shared feed: could not renew the lease in time; following");
            return Ok(());
        }
        let now_ns = unix_now_ns();
        let due_ns = grid.sent_unix_ns(next);
        if due_ns > now_ns {
            let wake = (Instant::now() + Duration::from_nanos(due_ns - now_ns)).min(renew_at);
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(wake) => {}
            }
            continue;
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        next = publish_due(feed, conn, &grid, next, now_ns).await?;
    }
}

/// Writes every tick due by `now_ns` from `next` (at most [`BATCH`]) in one
/// round trip; returns the next id to write.
async fn publish_due(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
    grid: &Grid,
    next: u64,
    now_ns: u64,
) -> Result<u64, RedisError> {
    let stats = feed.stats();
    let last = grid.due_id(now_ns).clamp(next, next + BATCH - 1);
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for id in next..=last {
        xadd(
            &mut pipe,
            feed,
            id,
            grid.sent_unix_ns(id),
            grid.payload_bytes,
        );
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    let mut refused = false;
    for (id, reply) in (next..=last).zip(replies) {
        match reply {
            Value::ServerError(e) if is_id_refusal(&e.to_string()) => {
                stats.counters.duplicate_ids_refused.inc();
                refused = true;
            }
            Value::ServerError(e) => return Err(e.into()),
            _ => {
                stats.counters.published.inc();
                if now_ns >= grid.sent_unix_ns(id + 1) {
                    stats.counters.published_late.inc();
                }
            }
        }
    }
    if refused {
        // Another producer wrote these ids: carry on after the stream's top.
        let top = stream_top(feed, conn).await?;
        tracing::warn!(
            top,
            "shared feed: another producer wrote ids this one was about to; continuing after them"
        );
        return Ok(top.max(last) + 1);
    }
    Ok(last + 1)
}

/// `XADD <stream> MAXLEN ~ N <id>-0 sent_unix_ns <ns> payload_bytes <n>`
fn xadd(pipe: &mut redis::Pipeline, feed: &SharedFeed, id: u64, sent: u64, payload: usize) {
    pipe.cmd("XADD")
        .arg(&feed.stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(feed.stream_max)
        .arg(stream_id(id))
        .arg(SENT_FIELD)
        .arg(sent)
        .arg(PAYLOAD_FIELD)
        .arg(payload);
}

/// Redis's answer to an `XADD` whose id is not above the stream's top.
fn is_id_refusal(message: &str) -> bool {
    message.contains("equal or smaller")
}

/// The feed's grid: Redis's if there is one; else the one this instance
/// knew (Redis came back empty) or a new one starting now, written with
/// `SET NX` and read back, so racing producers agree.
async fn ensure_grid(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
) -> Result<Grid, RedisError> {
    read_grid(feed, conn).await?;
    let proposal = feed
        .grid()
        .unwrap_or_else(|| Grid::new(unix_now_ns(), feed.rate_hz, feed.payload_bytes));
    let _: Option<String> = redis::cmd("SET")
        .arg(&feed.grid_key)
        .arg(proposal.to_json())
        .arg("NX")
        .query_async(conn)
        .await?;
    read_grid(feed, conn).await?;
    feed.grid().ok_or_else(|| {
        RedisError::from(std::io::Error::other(
            "the shared feed's grid in Redis is unusable (see the warning above)",
        ))
    })
}

/// The first id to write: after the stream's top, or after this
/// instance's newest if Redis came back empty (its ring is put back first,
/// so instances that missed the last ids before the outage find them).
async fn first_id(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
    grid: &Grid,
) -> Result<u64, RedisError> {
    let top = stream_top(feed, conn).await?;
    let local = feed.hub.latest_id();
    if top == 0 && local > 0 {
        restore(feed, conn, grid).await?;
    }
    Ok(top.max(local) + 1)
}

/// The id of the stream's newest entry (0 for an empty or missing stream).
async fn stream_top(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
) -> Result<u64, RedisError> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(&feed.stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(newest
        .ids
        .first()
        .and_then(|e| e.id.split_once('-')?.0.parse().ok())
        .unwrap_or(0))
}

/// Puts this instance's ring back into an emptied stream.
async fn restore(
    feed: &SharedFeed,
    conn: &mut MultiplexedConnection,
    grid: &Grid,
) -> Result<(), RedisError> {
    let events = feed.hub.ring_events();
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(());
    };
    for chunk in events.chunks(BATCH as usize) {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for e in chunk {
            xadd(&mut pipe, feed, e.id, e.sent_unix_ns, grid.payload_bytes);
        }
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        let written = replies
            .iter()
            .filter(|r| !matches!(r, Value::ServerError(_)))
            .count();
        feed.stats().counters.restored.inc_by(written as u64);
    }
    tracing::warn!(
        first = events[0].id,
        last,
        "shared feed: Redis came back empty; this instance's ring was put back into the stream"
    );
    Ok(())
}
