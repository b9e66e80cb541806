//! The fan-out: the feed publishes each event once; every subscriber reads
//! the same shared bytes.
//!
//! Live events go through a bounded `tokio::sync::broadcast` channel, so
//! publishing costs the same whatever the subscriber count and a slow
//! subscriber never holds back the others: it only falls behind, and one
//! that falls further behind than the channel holds is closed and counted
//! (see `subscriber`), never skipped silently. The server's `ReplayRing`
//! keeps the last events for `Last-Event-ID` resume.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use server::event::{Resume, SharedEvent};
use server::hub::LastId;
use server::ring::{Backlog, ReplayRing};
use tokio::sync::broadcast;

use crate::wsframe;

/// One tick, encoded for both wires.
#[derive(Debug)]
pub struct FeedEvent {
    /// The server's encoding: `sse` holds the SSE frame byte for byte as the
    /// actix server sends it, `ws` the JSON.
    pub event: SharedEvent,
    /// `event.ws` as a complete WebSocket text frame.
    pub ws_frame: Bytes,
}

impl FeedEvent {
    pub fn new(event: SharedEvent) -> Self {
        let ws_frame = wsframe::text(&event.ws);
        FeedEvent { event, ws_frame }
    }

    pub fn id(&self) -> u64 {
        self.event.id
    }
}

pub type SharedFeedEvent = Arc<FeedEvent>;

#[derive(Debug)]
pub struct Fanout {
    tx: broadcast::Sender<SharedFeedEvent>,
    ring: Mutex<ReplayRing>,
    latest: AtomicU64,
}

/// A new subscriber's start: what it missed, then its live receiver.
#[derive(Debug)]
pub struct Subscription {
    pub rx: broadcast::Receiver<SharedFeedEvent>,
    pub resume: Resume,
    /// The newest id when the subscription started.
    pub last_id: u64,
    /// Events to send before the live ones (and a gap naming older ids).
    pub backlog: Backlog,
}

impl Fanout {
    /// `queue` live events per subscriber at most (a power of two), `replay`
    /// events kept for resume.
    pub fn new(queue: usize, replay: usize) -> Self {
        let (tx, _) = broadcast::channel(queue.max(1));
        Fanout {
            tx,
            ring: Mutex::new(ReplayRing::new(replay)),
            latest: AtomicU64::new(0),
        }
    }

    fn ring(&self) -> MutexGuard<'_, ReplayRing> {
        // The ring holds no invariant a panicking holder could break halfway.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest id published (0 before the first tick).
    pub fn latest_id(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Publishes the next event (the feed's producer only).
    pub fn publish(&self, event: SharedFeedEvent) {
        // Ring and channel change under the ring's lock, so a subscriber
        // (which takes it too) finds each event in its backlog or on its
        // receiver, never in both and never in neither.
        let mut ring = self.ring();
        ring.push(event.event.clone());
        self.latest.store(event.id(), Ordering::Release);
        // No subscriber is not an error: the feed ticks for nobody.
        let _ = self.tx.send(event);
        drop(ring);
    }

    /// Subscribes after `last`: replayed events (or a gap) first, then live.
    /// A malformed id, or one newer than the feed, starts live.
    pub fn subscribe(&self, last: LastId) -> Subscription {
        let ring = self.ring();
        let rx = self.tx.subscribe();
        let newest = self.latest_id();
        let (resume, backlog) = match last {
            LastId::None => (Resume::None, Backlog::default()),
            LastId::Malformed => (Resume::Malformed, Backlog::default()),
            LastId::Id(id) if id > newest => (Resume::Future, Backlog::default()),
            LastId::Id(id) => {
                let backlog = ring.after(id, newest);
                let resume = if backlog.gap.is_some() {
                    Resume::Gap
                } else {
                    Resume::Replay
                };
                (resume, backlog)
            }
        };
        drop(ring);
        Subscription {
            rx,
            resume,
            last_id: newest,
            backlog,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use server::event::{encode_tick, Gap};

    fn publish(fanout: &Fanout, ids: std::ops::RangeInclusive<u64>) {
        for id in ids {
            fanout.publish(Arc::new(FeedEvent::new(Arc::new(encode_tick(id, id, 0)))));
        }
    }

    #[test]
    fn resume_replays_then_goes_live_without_a_seam() {
        let fanout = Fanout::new(8, 4);
        publish(&fanout, 1..=10);
        let mut sub = fanout.subscribe(LastId::Id(8));
        assert_eq!(sub.resume, Resume::Replay);
        let ids: Vec<u64> = sub.backlog.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [9, 10]);
        publish(&fanout, 11..=11);
        assert_eq!(sub.rx.try_recv().unwrap().id(), 11);
    }

    #[test]
    fn too_old_gets_a_gap_and_odd_ids_start_live() {
        let fanout = Fanout::new(8, 4);
        publish(&fanout, 1..=10);
        let sub = fanout.subscribe(LastId::Id(2));
        assert_eq!(sub.resume, Resume::Gap);
        assert_eq!(sub.backlog.gap, Some(Gap { from: 3, to: 6 }));
        for (last, resume) in [
            (LastId::Id(99), Resume::Future),
            (LastId::Malformed, Resume::Malformed),
            (LastId::None, Resume::None),
        ] {
            let sub = fanout.subscribe(last);
            assert_eq!(sub.resume, resume);
            assert!(sub.backlog.events.is_empty() && sub.backlog.gap.is_none());
            assert_eq!(sub.last_id, 10);
        }
    }

    #[test]
    fn every_subscriber_shares_one_encoding() {
        let fanout = Fanout::new(8, 4);
        let mut a = fanout.subscribe(LastId::None);
        let mut b = fanout.subscribe(LastId::None);
        publish(&fanout, 1..=1);
        let (ea, eb) = (a.rx.try_recv().unwrap(), b.rx.try_recv().unwrap());
        assert!(Arc::ptr_eq(&ea, &eb));
        assert_eq!(&ea.ws_frame[2..], ea.event.ws.as_bytes());
    }
}
