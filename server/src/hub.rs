//! The fan-out: one producer, many subscribers, a replay ring for resume.
//!
//! Live events travel through a bounded `tokio::sync::broadcast` channel of
//! shared, pre-encoded events: sending is O(1) whatever the subscriber count,
//! and a slow subscriber never stalls the others, it only lags. A subscriber
//! that lags past the channel is refilled from the [`ReplayRing`] (losing
//! nothing); one that lags past the ring is sent a gap event naming exactly
//! the ids it lost. Memory is bounded by the channel and the ring, shared by
//! all, whatever the clients do.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

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

/// One item for a subscriber.
#[derive(Debug)]
pub enum Item {
    Event(SharedEvent),
    Gap(Gap),
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
}

/// Buckets of streams for [`Hub::drop_fraction`]: the fraction's granularity.
pub const DROP_BUCKETS: usize = 64;

impl Hub {
    pub fn new(replay: usize, fanout_buffer: usize, max_connections: usize) -> Arc<Hub> {
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
            stats: Stats::new(),
            buckets: (0..DROP_BUCKETS)
                .map(|_| Mutex::new(drop_all.child_token()))
                .collect(),
            drop_all: Mutex::new(drop_all),
            next_bucket: AtomicUsize::new(0),
            next_drop: AtomicUsize::new(0),
            shutdown,
        })
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
        let (resume, last_sent, backlog) = match last {
            LastId::None => (Resume::None, newest, Default::default()),
            LastId::Malformed => {
                self.stats.counters.malformed_resumes.inc();
                (Resume::Malformed, newest, Default::default())
            }
            LastId::Id(id) if id > newest => {
                self.stats.counters.future_resumes.inc();
                (Resume::Future, newest, Default::default())
            }
            LastId::Id(id) => {
                self.stats.counters.resumes.inc();
                let backlog = ring.after(id, newest);
                let resume = if backlog.gap.is_some() {
                    Resume::Gap
                } else {
                    Resume::Replay
                };
                (resume, id, backlog)
            }
        };
        drop(ring);
        if let Some(gap) = backlog.gap {
            self.count_gap(gap);
        }
        let sub = Subscription {
            rx,
            pending_gap: backlog.gap,
            backlog: Some(backlog.events.into_iter()).filter(|b| b.len() > 0),
            last_sent,
            hub: self.clone(),
        };
        (sub, resume)
    }

    fn count_gap(&self, gap: Gap) {
        self.stats.counters.gaps.inc();
        self.stats.counters.gap_ids.inc_by(gap.to - gap.from + 1);
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
    pending_gap: Option<Gap>,
    /// Replayed events still to send; `None` once sent, so the buffer is freed.
    backlog: Option<std::vec::IntoIter<SharedEvent>>,
    /// The newest id delivered or announced lost.
    last_sent: u64,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The next item, or `None` when the feed has stopped.
    ///
    /// Cancel-safe: dropping the future loses nothing (it is used in `select!`).
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(gap) = self.pending_gap.take() {
                self.last_sent = self.last_sent.max(gap.to);
                return Some(Item::Gap(gap));
            }
            if let Some(backlog) = &mut self.backlog {
                for event in backlog.by_ref() {
                    if event.id > self.last_sent {
                        self.last_sent = event.id;
                        return Some(Item::Event(event));
                    }
                }
                self.backlog = None;
            }
            match self.rx.recv().await {
                Ok(event) if event.id <= self.last_sent => continue,
                Ok(event) if event.id == self.last_sent + 1 => {
                    self.last_sent = event.id;
                    return Some(Item::Event(event));
                }
                // A hole cannot happen (the ring lock orders subscribe and
                // publish) but costs nothing to heal: refill from the ring.
                Ok(_) => self.refill(),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.hub.stats.counters.lagged.inc();
                    self.refill();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Fills the backlog from the ring after a lag; a gap names what it lost.
    fn refill(&mut self) {
        let backlog = {
            let ring = self.hub.ring();
            ring.after(self.last_sent, self.hub.latest_id())
        };
        if let Some(gap) = backlog.gap {
            self.hub.count_gap(gap);
            self.hub.stats.counters.slow_gaps.inc();
        }
        self.pending_gap = backlog.gap;
        self.backlog = Some(backlog.events.into_iter()).filter(|b| b.len() > 0);
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
