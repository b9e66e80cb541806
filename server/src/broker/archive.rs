//! The stream as the hub's archive: a subscriber that asks for ids older
//! than this instance's ring is served from Redis (`XRANGE`), page by
//! page, and only what the stream no longer holds becomes a gap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use tokio::sync::Semaphore;

use super::entry::{stream_id, Entry};
use super::SharedFeed;
use crate::event::SharedEvent;
use crate::hub::{Archive, ArchiveError};

/// Archive reads in flight at once: a reconnect storm of old clients waits
/// its turn instead of holding a page each.
const CONCURRENT_READS: usize = 8;
/// How long one page may take.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared stream, read for resumes older than the ring.
#[derive(Debug)]
pub struct StreamArchive {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    feed: Arc<SharedFeed>,
    /// One connection for every read (made on first use, dropped on error).
    conn: Mutex<Option<MultiplexedConnection>>,
    permits: Semaphore,
}

impl StreamArchive {
    pub fn new(feed: Arc<SharedFeed>) -> StreamArchive {
        StreamArchive {
            inner: Arc::new(Inner {
                feed,
                conn: Mutex::new(None),
                permits: Semaphore::new(CONCURRENT_READS),
            }),
        }
    }
}

impl Inner {
    async fn connection(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        if let Some(c) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(c);
        }
        let c = self.feed.link.connect(Some(READ_TIMEOUT)).await?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    async fn read(&self, from: u64, to: u64) -> Result<Vec<SharedEvent>, redis::RedisError> {
        let mut conn = self.connection().await?;
        let page: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.feed.stream)
            .arg(stream_id(from))
            .arg(stream_id(to))
            .arg("COUNT")
            .arg(to - from + 1)
            .query_async(&mut conn)
            .await?;
        Ok(page
            .ids
            .iter()
            .filter_map(|raw| Entry::parse(raw).ok())
            .map(|e| e.event())
            .collect())
    }
}

impl Archive for StreamArchive {
    fn range(
        &self,
        from: u64,
        to: u64,
    ) -> BoxFuture<'static, Result<Vec<SharedEvent>, ArchiveError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let stats = inner.feed.stats();
            let _permit = inner
                .permits
                .acquire()
                .await
                .map_err(|e| ArchiveError(e.to_string()))?;
            match tokio::time::timeout(READ_TIMEOUT, inner.read(from, to)).await {
                Ok(Ok(events)) => {
                    stats.counters.archive_reads.inc();
                    stats.counters.archive_events.inc_by(events.len() as u64);
                    Ok(events)
                }
                failed => {
                    stats.counters.archive_failures.inc();
                    *inner.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    Err(ArchiveError(match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {READ_TIMEOUT:?}"),
                    }))
                }
            }
        })
    }

    fn horizon(&self) -> u64 {
        self.inner.feed.horizon()
    }
}
