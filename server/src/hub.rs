//! The fan-out: one producer, many subscribers, a replay ring for resume.
//!
//! Live events travel through a bounded `tokio::sync::broadcast` channel of
//! shared, pre-encoded events: sending is O(1) whatever the subscriber count,
//! and a slow subscriber never stalls the others, it only lags. A subscriber
//! that lags past the channel is refilled from the [`ReplayRing`] (losing
//! nothing); one that lags past the ring is sent a gap event naming exactly
//! the ids it lost. Memory is bounded by the channel and the ring, shared by
//! all, whatever the clients do.
//!
//! When the feed is shared by several servers (`--feed-redis`), the hub
//! also has an [`Archive`]: the shared stream, which holds more than the
//! ring. A subscriber that asks for ids older than the ring is served from
//! it page by page (bounded memory per subscriber), and only what the
//! archive no longer holds is announced as a gap.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use crate::event::Item;
use crate::event::{Gap, Resume, SharedEvent};
use crate::ring::ReplayRing;
use crate::stats::Stats;

/// What the client said it saw last, parsed from `Last-Event-ID` or `lastEventId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastId {
    /// Nothing: a new client.
    None,
    /// A decimal id.
    Id(u64),
    /// Not a decimal number (ignored; see [`Resume::Malformed`]).
    Malformed,
}

impl LastId {
    /// Parses a resume id. Blank is none; surrounding spaces are tolerated.
    pub fn parse(raw: Option<&str>) -> LastId {
        match raw.map(str::trim) {
            None | Some("") => LastId::None,
            Some(s) => s.parse().map(LastId::Id).unwrap_or(LastId::Malformed),
        }
    }
}

/// Ids older than the ring fetched from the archive at once: what one
/// catching-up subscriber holds at most.
pub const ARCHIVE_PAGE: u64 = 256;

/// Why the archive could not answer (the subscriber's stream then ends,
/// and its client resumes later: nothing is announced lost that was not).
#[derive(Debug, thiserror::Error)]
#[error("the shared feed's archive is unavailable: {0}")]
pub struct ArchiveError(pub String);

/// Events older than the ring, kept by a shared feed (the Redis stream).
pub trait Archive: Send + Sync + std::fmt::Debug {
    /// The events it still holds with ids in `from..=to`, oldest first
    /// (at most [`ARCHIVE_PAGE`] are asked at once); an id it no longer
    /// holds is absent.
    fn range(
        &self,
        from: u64,
        to: u64,
    ) -> BoxFuture<'static, Result<Vec<SharedEvent>, ArchiveError>>;

    /// The highest id the shared feed may have made by now (another
    /// instance may be ahead of this one): a resume id up to it waits for
    /// the feed instead of being refused as from the future.
    fn horizon(&self) -> u64;
}

/// The shared state of the feed.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<SharedEvent>,
    ring: Mutex<ReplayRing>,
    latest: AtomicU64,
    open: AtomicUsize,
    max_connections: usize,
    pub stats: Stats,
    shutdown: CancellationToken,
    /// Cancelled by "drop all connections"; replaced by a fresh child each time.
    drop_all: Mutex<CancellationToken>,
    /// Streams are dealt round-robin into these buckets at connect (children
    /// of `drop_all`, remade lazily once cancelled), so a fraction of them can
    /// be dropped by cancelling whole buckets: O(1) per stream, nothing per event.
    buckets: Vec<Mutex<CancellationToken>>,
    next_bucket: AtomicUsize,
    next_drop: AtomicUsize,
    /// The shared feed's stream, when there is one (`--feed-redis`).
    archive: OnceLock<Arc<dyn Archive>>,
}

/// Buckets of streams for [`Hub::drop_fraction`]: the fraction's granularity.
pub const DROP_BUCKETS: usize = 64;

impl Hub {
    pub fn new(replay: usize, fanout_buffer: usize, max_connections: usize) -> Arc<Hub> {
        Self::with_stats(replay, fanout_buffer, max_connections, Stats::new())
    }

    /// A hub whose figures are `stats` (the shared feed's include the broker's).
    pub fn with_stats(
        replay: usize,
        fanout_buffer: usize,
        max_connections: usize,
        stats: Stats,
    ) -> Arc<Hub> {
        // The ring must cover the fan-out buffer: a subscriber that lags
        // past the buffer is refilled from the ring, and must never be told
        // ids are lost that the buffer still held.
        let (tx, _) = broadcast::channel(fanout_buffer.min(replay).max(1));
        let shutdown = CancellationToken::new();
        let drop_all = shutdown.child_token();
        Arc::new(Hub {
            tx,
            ring: Mutex::new(ReplayRing::new(replay)),
            latest: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            max_connections,
            stats,
            buckets: (0..DROP_BUCKETS)
                .map(|_| Mutex::new(drop_all.child_token()))
                .collect(),
            drop_all: Mutex::new(drop_all),
            next_bucket: AtomicUsize::new(0),
            next_drop: AtomicUsize::new(0),
            shutdown,
            archive: OnceLock::new(),
        })
    }

    /// Serves resumes older than the ring from `archive` (set once, by the
    /// shared feed, before streams are served).
    pub fn set_archive(&self, archive: Arc<dyn Archive>) {
        if self.archive.set(archive).is_err() {
            tracing::warn!("the hub already has an archive; keeping the first");
        }
    }

    fn archive(&self) -> Option<&Arc<dyn Archive>> {
        self.archive.get()
    }

    fn ring(&self) -> MutexGuard<'_, ReplayRing> {
        // A panic while holding the ring cannot leave it half-updated (push is
        // one VecDeque operation), so a poisoned lock is still usable.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest id the feed has made (0 before the first tick).
    pub fn latest_id(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Publishes the next event. Called by the producer only.
    pub fn publish(&self, event: SharedEvent) {
        let id = event.id;
        // Ring and channel are updated under the ring lock so a subscriber that
        // takes the lock sees each event either in the ring or on its receiver:
        // no hole and no duplicate at the seam.
        let mut ring = self.ring();
        ring.push(event.clone());
        self.latest.store(id, Ordering::Release);
        // No receiver is not an error: the feed ticks with nobody listening.
        let _ = self.tx.send(event);
        drop(ring);
        self.stats.feed_last_id.set(id as i64);
    }

    /// Fills the ring with events made before this process joined a shared
    /// feed, without sending them live: a subscriber already waiting starts
    /// with the next live event, a resuming one finds them in the ring.
    /// Events not newer than the latest are skipped.
    pub fn seed(&self, events: impl IntoIterator<Item = SharedEvent>) {
        let mut ring = self.ring();
        let mut latest = self.latest_id();
        for event in events {
            if event.id > latest {
                latest = event.id;
                ring.push(event);
            }
        }
        self.latest.store(latest, Ordering::Release);
        drop(ring);
        self.stats.feed_last_id.set(latest as i64);
    }

    /// How many events the ring keeps.
    pub fn ring_capacity(&self) -> usize {
        self.ring().capacity()
    }

    /// The events the ring holds now, oldest first.
    pub fn ring_events(&self) -> Vec<SharedEvent> {
        self.ring().events().cloned().collect()
    }

    /// Admits one more stream, or refuses when `max_connections` are open.
    pub fn admit(self: &Arc<Self>) -> Option<Permit> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.stats.counters.refused.inc();
            return None;
        }
        Some(Permit { hub: self.clone() })
    }

    /// Streams admitted and not yet closed.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Starts a subscription after `last`: replay, gap and live events.
    pub fn subscribe(self: &Arc<Self>, last: LastId) -> (Subscription, Resume) {
        let ring = self.ring();
        let rx = self.tx.subscribe();
        let newest = self.latest_id();
        let archive = self.archive();
        let mut sub = Subscription {
            rx,
            backlog: VecDeque::new(),
            catch_up: false,
            lagged: false,
            // Nothing made yet (a relay that has not read the shared feed):
            // the first live event, whatever its id, starts the stream.
            follow_first: newest == 0,
            last_sent: newest,
            hub: self.clone(),
        };
        let resume = match last {
            LastId::None => Resume::None,
            LastId::Malformed => {
                self.stats.counters.malformed_resumes.inc();
                Resume::Malformed
            }
            // Another instance of a shared feed may be ahead of this one:
            // wait for the feed to pass the id.
            LastId::Id(id) if id > newest && archive.is_some_and(|a| id <= a.horizon()) => {
                self.stats.counters.resumes.inc();
                sub.last_sent = id;
                sub.follow_first = false;
                Resume::Replay
            }
            LastId::Id(id) if id > newest => {
                self.stats.counters.future_resumes.inc();
                Resume::Future
            }
            LastId::Id(id) => {
                self.stats.counters.resumes.inc();
                sub.last_sent = id;
                sub.follow_first = false;
                let older_than_ring = ring.first_id().map_or(id < newest, |f| id + 1 < f);
                if older_than_ring && archive.is_some() {
                    sub.catch_up = true;
                    Resume::Archive
                } else {
                    let gaps = ring.items_after(id, newest, &mut sub.backlog);
                    if gaps > 0 {
                        Resume::Gap
                    } else {
                        Resume::Replay
                    }
                }
            }
        };
        drop(ring);
        self.count_gaps(&sub.backlog);
        (sub, resume)
    }

    fn count_gap(&self, gap: Gap) {
        self.stats.counters.gaps.inc();
        self.stats.counters.gap_ids.inc_by(gap.to - gap.from + 1);
    }

    fn count_gaps(&self, items: &VecDeque<Item>) {
        for item in items {
            if let Item::Gap(gap) = item {
                self.count_gap(*gap);
            }
        }
    }

    /// A token cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A token cancelled when every stream must close: shutdown, or the next
    /// "drop all connections". Take it when a stream starts.
    pub fn stream_token(&self) -> CancellationToken {
        let i = self.next_bucket.fetch_add(1, Ordering::Relaxed) % DROP_BUCKETS;
        let mut bucket = self.buckets[i].lock().unwrap_or_else(|p| p.into_inner());
        if bucket.is_cancelled() {
            // Dropped (or never made): a fresh child of today's drop-all token.
            *bucket = self
                .drop_all
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .child_token();
        }
        bucket.clone()
    }

    /// Closes about `fraction` of the open streams (whole buckets of
    /// [`DROP_BUCKETS`], dealt round-robin at connect; a rotating start picks
    /// different buckets each time). Returns the buckets dropped.
    pub fn drop_fraction(&self, fraction: f64) -> usize {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let n = (fraction * DROP_BUCKETS as f64).round() as usize;
        let start = self.next_drop.fetch_add(n.max(1), Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % DROP_BUCKETS;
            self.buckets[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancel();
        }
        n
    }

    /// Closes every open stream (clients then reconnect and resume).
    /// Returns how many were open.
    pub fn drop_all(&self) -> usize {
        let open = self.open_streams();
        let mut token = self.drop_all.lock().unwrap_or_else(|p| p.into_inner());
        token.cancel();
        *token = self.shutdown.child_token();
        self.stats.counters.admin_drops.inc();
        open
    }

    /// Closes every stream and stops the feed.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }
}

/// One admitted stream; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    hub: Arc<Hub>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One subscriber's view of the feed: backlog first, then live events, in id
/// order, each id once.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<SharedEvent>,
    /// Replayed events and gaps still to send (emptied and freed once sent).
    backlog: VecDeque<Item>,
    /// Behind the live channel: fetch from the ring (or the archive) first.
    catch_up: bool,
    /// The catch-up is due to lagging (counted as a slow subscriber's gap).
    lagged: bool,
    /// No id known yet: the first live event starts the stream.
    follow_first: bool,
    /// The newest id delivered or announced lost.
    last_sent: u64,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The next item, or `None` when the feed has stopped (or the archive
    /// it must catch up from is unreachable: the client resumes later).
    ///
    /// Cancel-safe: dropping the future loses nothing (it is used in
    /// `select!`); an archive read cut short is made again.
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.backlog.pop_front() {
                if self.backlog.is_empty() {
                    // Free a replay's buffer: a subscriber keeps none while live.
                    self.backlog = VecDeque::new();
                }
                match &item {
                    Item::Event(e) if e.id <= self.last_sent => continue,
                    Item::Event(e) => self.last_sent = e.id,
                    Item::Gap(g) => self.last_sent = self.last_sent.max(g.to),
                }
                return Some(item);
            }
            if self.catch_up {
                if !self.refill().await {
                    return None;
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if self.follow_first => {
                    self.follow_first = false;
                    self.last_sent = event.id;
                    return Some(Item::Event(event));
                }
                Ok(event) if event.id <= self.last_sent => continue,
                Ok(event) if event.id == self.last_sent + 1 => {
                    self.last_sent = event.id;
                    return Some(Item::Event(event));
                }
                // Within one process a hole cannot happen (the ring lock
                // orders subscribe and publish); a relayed shared feed may
                // skip ids its stream no longer held. Either way the ring
                // says exactly what is there.
                Ok(_) => self.catch_up = true,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.hub.stats.counters.lagged.inc();
                    self.follow_first = false;
                    self.catch_up = true;
                    self.lagged = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Fills the backlog after a lag, a hole or a resume: from the archive
    /// while the next id is older than the ring, else from the ring, with
    /// gaps naming exactly what neither holds. False when the archive
    /// could not be read.
    async fn refill(&mut self) -> bool {
        let page = {
            let ring = self.hub.ring();
            let newest = self.hub.latest_id();
            let before_ring = ring.first_id().map_or(newest, |f| f.saturating_sub(1));
            match self.hub.archive() {
                Some(archive) if self.last_sent < before_ring => {
                    let from = self.last_sent + 1;
                    let to = before_ring.min(from + ARCHIVE_PAGE - 1);
                    Some((archive.range(from, to), from, to))
                }
                _ => {
                    let gaps = ring.items_after(self.last_sent, newest, &mut self.backlog);
                    drop(ring);
                    if gaps > 0 && self.lagged {
                        self.hub.stats.counters.slow_gaps.inc();
                    }
                    self.hub.count_gaps(&self.backlog);
                    self.catch_up = false;
                    self.lagged = false;
                    None
                }
            }
        };
        let Some((read, from, to)) = page else {
            return true;
        };
        match read.await {
            Ok(events) => {
                let mut expected = from;
                for e in events.into_iter().filter(|e| (from..=to).contains(&e.id)) {
                    if e.id < expected {
                        continue;
                    }
                    if e.id > expected {
                        self.backlog.push_back(Item::Gap(Gap {
                            from: expected,
                            to: e.id - 1,
                        }));
                    }
                    expected = e.id + 1;
                    self.backlog.push_back(Item::Event(e));
                }
                if expected <= to {
                    self.backlog
                        .push_back(Item::Gap(Gap { from: expected, to }));
                }
                self.hub.count_gaps(&self.backlog);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "a subscriber could not catch up from the archive");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::encode_tick;

    fn publish(hub: &Hub, ids: std::ops::RangeInclusive<u64>) {
        for id in ids {
            hub.publish(Arc::new(encode_tick(id, id, 0)));
        }
    }

    async fn take(sub: &mut Subscription, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            match sub.next().await.unwrap() {
                Item::Event(e) => out.push(e.id.to_string()),
                Item::Gap(g) => out.push(format!("gap {}-{}", g.from, g.to)),
            }
        }
        out
    }

    #[test]
    fn last_id_parsing() {
        assert_eq!(LastId::parse(None), LastId::None);
        assert_eq!(LastId::parse(Some(" ")), LastId::None);
        assert_eq!(LastId::parse(Some("42")), LastId::Id(42));
        assert_eq!(LastId::parse(Some(" 42 ")), LastId::Id(42));
        assert_eq!(LastId::parse(Some("-1")), LastId::Malformed);
        assert_eq!(LastId::parse(Some("abc")), LastId::Malformed);
        assert_eq!(
            LastId::parse(Some("99999999999999999999999")),
            LastId::Malformed
        );
    }

    #[tokio::test]
    async fn resume_replays_then_goes_live_without_seam() {
        let hub = Hub::new(8, 4, 10);
        publish(&hub, 1..=5);
        let (mut sub, resume) = hub.subscribe(LastId::Id(2));
        assert_eq!(resume, Resume::Replay);
        publish(&hub, 6..=7);
        assert_eq!(take(&mut sub, 5).await, ["3", "4", "5", "6", "7"]);
    }

    #[tokio::test]
    async fn too_old_resume_gets_a_gap() {
        let hub = Hub::new(3, 4, 10);
        publish(&hub, 1..=10);
        let (mut sub, resume) = hub.subscribe(LastId::Id(2));
        assert_eq!(resume, Resume::Gap);
        assert_eq!(take(&mut sub, 4).await, ["gap 3-7", "8", "9", "10"]);
        assert_eq!(hub.stats.counters.gap_ids.get(), 5);
    }

    #[tokio::test]
    async fn lagging_subscriber_is_refilled_from_the_ring() {
        let hub = Hub::new(64, 2, 10);
        let (mut sub, _) = hub.subscribe(LastId::None);
        publish(&hub, 1..=20);
        let got = take(&mut sub, 20).await;
        let want: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert!(hub.stats.counters.lagged.get() >= 1);
        assert_eq!(hub.stats.counters.gaps.get(), 0);
    }

    #[tokio::test]
    async fn lagging_past_the_ring_gets_an_exact_gap() {
        let hub = Hub::new(4, 2, 10);
        let (mut sub, _) = hub.subscribe(LastId::None);
        publish(&hub, 1..=20);
        assert_eq!(
            take(&mut sub, 5).await,
            ["gap 1-16", "17", "18", "19", "20"]
        );
        assert_eq!(hub.stats.counters.slow_gaps.get(), 1);
    }

    #[tokio::test]
    async fn future_and_malformed_ids_start_live() {
        let hub = Hub::new(4, 4, 10);
        publish(&hub, 1..=3);
        let (mut sub, resume) = hub.subscribe(LastId::Id(100));
        assert_eq!(resume, Resume::Future);
        let (mut sub2, resume2) = hub.subscribe(LastId::Malformed);
        assert_eq!(resume2, Resume::Malformed);
        publish(&hub, 4..=4);
        assert_eq!(take(&mut sub, 1).await, ["4"]);
        assert_eq!(take(&mut sub2, 1).await, ["4"]);
    }

    /// An archive in memory: the hub's side of the contract (the Redis
    /// one is tested against a real Redis in `tests/shared_feed.rs`).
    #[derive(Debug)]
    struct Held(Vec<u64>, u64);

    impl Archive for Held {
        fn range(
            &self,
            from: u64,
            to: u64,
        ) -> BoxFuture<'static, Result<Vec<SharedEvent>, ArchiveError>> {
            let events = self
                .0
                .iter()
                .filter(|id| (from..=to).contains(*id))
                .map(|&id| Arc::new(encode_tick(id, id, 0)))
                .collect();
            Box::pin(async move { Ok(events) })
        }

        fn horizon(&self) -> u64 {
            self.1
        }
    }

    #[tokio::test]
    async fn older_than_the_ring_comes_from_the_archive_with_exact_gaps() {
        let hub = Hub::new(4, 4, 10);
        let mut held: Vec<u64> = (5..=20).collect();
        held.retain(|&id| id != 9);
        hub.set_archive(Arc::new(Held(held, 25)));
        publish(&hub, 1..=20);
        let (mut sub, resume) = hub.subscribe(LastId::Id(2));
        assert_eq!(resume, Resume::Archive);
        let mut want = vec!["gap 3-4".to_string()];
        want.extend((5..=8).map(|i| i.to_string()));
        want.push("gap 9-9".into());
        want.extend((10..=20).map(|i| i.to_string()));
        assert_eq!(take(&mut sub, want.len()).await, want);
        publish(&hub, 21..=21);
        assert_eq!(take(&mut sub, 1).await, ["21"]);
        assert_eq!(hub.stats.counters.gap_ids.get(), 3);
    }

    #[tokio::test]
    async fn an_id_another_instance_reached_waits_instead_of_starting_over() {
        let hub = Hub::new(8, 8, 10);
        hub.set_archive(Arc::new(Held(Vec::new(), 12)));
        publish(&hub, 1..=10);
        let (mut sub, resume) = hub.subscribe(LastId::Id(11));
        assert_eq!(resume, Resume::Replay);
        let (_, beyond) = hub.subscribe(LastId::Id(13));
        assert_eq!(beyond, Resume::Future);
        publish(&hub, 11..=12);
        assert_eq!(take(&mut sub, 1).await, ["12"]);
    }

    #[tokio::test]
    async fn a_seeded_hub_replays_and_a_waiting_subscriber_starts_live() {
        let hub = Hub::new(8, 8, 10);
        let (mut early, _) = hub.subscribe(LastId::None);
        hub.seed((40..=45).map(|id| Arc::new(encode_tick(id, id, 0))));
        publish(&hub, 46..=46);
        assert_eq!(take(&mut early, 1).await, ["46"]);
        let (mut resumed, resume) = hub.subscribe(LastId::Id(43));
        assert_eq!(resume, Resume::Replay);
        assert_eq!(take(&mut resumed, 3).await, ["44", "45", "46"]);
    }

    #[test]
    fn admission_is_bounded_and_released() {
        let hub = Hub::new(4, 4, 2);
        let a = hub.admit().unwrap();
        let _b = hub.admit().unwrap();
        assert!(hub.admit().is_none());
        assert_eq!(hub.stats.counters.refused.get(), 1);
        drop(a);
        assert!(hub.admit().is_some());
    }

    #[test]
    fn drop_all_cancels_current_streams_only() {
        let hub = Hub::new(4, 4, 2);
        let before = hub.stream_token();
        hub.drop_all();
        assert!(before.is_cancelled());
        assert!(!hub.stream_token().is_cancelled());
        hub.shut_down();
        assert!(hub.stream_token().is_cancelled());
    }

    #[test]
    fn drop_fraction_cancels_whole_buckets_only() {
        let hub = Hub::new(4, 4, 1000);
        let tokens: Vec<_> = (0..DROP_BUCKETS * 2).map(|_| hub.stream_token()).collect();
        assert_eq!(hub.drop_fraction(0.25), DROP_BUCKETS / 4);
        let dropped = tokens.iter().filter(|t| t.is_cancelled()).count();
        assert_eq!(dropped, DROP_BUCKETS / 2);
        // The next quarter is a different one; a new stream is not cancelled.
        hub.drop_fraction(0.25);
        assert_eq!(
            tokens.iter().filter(|t| t.is_cancelled()).count(),
            DROP_BUCKETS
        );
        assert!(!hub.stream_token().is_cancelled());
        assert_eq!(hub.drop_fraction(0.0), 0);
        hub.drop_all();
        assert!(tokens.iter().all(|t| t.is_cancelled()));
    }
}
