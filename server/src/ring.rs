//! The replay ring: the last N events, kept so a client that reconnects with
//! `Last-Event-ID` (or `lastEventId`) gets exactly what it missed.

use std::collections::VecDeque;

use crate::event::{Gap, SharedEvent};

/// What a resuming subscriber must be sent before live events.
#[derive(Debug, Default)]
pub struct Backlog {
    /// Ids the ring no longer holds, announced as a gap event first.
    pub gap: Option<Gap>,
    /// The held events after the client's last id, oldest first.
    pub events: Vec<SharedEvent>,
}

/// A fixed-capacity window over the newest events.
///
/// Ids are consecutive, so the event with id `n` is at `n - first_id`: a
/// lookup is an index, not a search.
#[derive(Debug)]
pub struct ReplayRing {
    events: VecDeque<SharedEvent>,
    capacity: usize,
}

impl ReplayRing {
    pub fn new(capacity: usize) -> Self {
        ReplayRing {
            events: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds the newest event, forgetting the oldest when full.
    pub fn push(&mut self, event: SharedEvent) {
        debug_assert!(self.events.back().is_none_or(|b| b.id + 1 == event.id));
        if self.capacity == 0 {
            return;
        }
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The oldest id still held.
    pub fn first_id(&self) -> Option<u64> {
        self.events.front().map(|e| e.id)
    }

    /// The newest id held.
    pub fn last_id(&self) -> Option<u64> {
        self.events.back().map(|e| e.id)
    }

    /// Everything after `last_seen`, up to and including `newest` (the feed's
    /// newest id when asked). A gap names the ids older than the ring.
    pub fn after(&self, last_seen: u64, newest: u64) -> Backlog {
        let mut backlog = Backlog::default();
        if last_seen >= newest {
            return backlog;
        }
        let Some(first) = self.first_id() else {
            backlog.gap = Some(Gap {
                from: last_seen + 1,
                to: newest,
            });
            return backlog;
        };
        if last_seen + 1 < first {
            backlog.gap = Some(Gap {
                from: last_seen + 1,
                to: first - 1,
            });
        }
        let start = (last_seen + 1).saturating_sub(first) as usize;
        backlog.events = self
            .events
            .iter()
            .skip(start)
            .take_while(|e| e.id <= newest)
            .cloned()
            .collect();
        backlog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::encode_tick;
    use std::sync::Arc;

    fn ring_with(ids: std::ops::RangeInclusive<u64>, cap: usize) -> ReplayRing {
        let mut r = ReplayRing::new(cap);
        for id in ids {
            r.push(Arc::new(encode_tick(id, id, 0)));
        }
        r
    }

    fn ids(b: &Backlog) -> Vec<u64> {
        b.events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let r = ring_with(1..=10, 4);
        assert_eq!(r.first_id(), Some(7));
        let b = r.after(8, 10);
        assert_eq!(b.gap, None);
        assert_eq!(ids(&b), vec![9, 10]);
        let b = r.after(6, 10);
        assert_eq!(b.gap, None);
        assert_eq!(ids(&b), vec![7, 8, 9, 10]);
    }

    #[test]
    fn too_old_gets_a_gap_then_the_whole_ring() {
        let r = ring_with(1..=10, 4);
        let b = r.after(2, 10);
        assert_eq!(b.gap, Some(Gap { from: 3, to: 6 }));
        assert_eq!(ids(&b), vec![7, 8, 9, 10]);
    }

    #[test]
    fn up_to_date_gets_nothing() {
        let r = ring_with(1..=10, 4);
        let b = r.after(10, 10);
        assert!(b.gap.is_none() && b.events.is_empty());
    }

    #[test]
    fn empty_ring_names_everything_missing() {
        let r = ring_with(1..=10, 0);
        let b = r.after(4, 10);
        assert_eq!(b.gap, Some(Gap { from: 5, to: 10 }));
        assert!(b.events.is_empty());
    }

    #[test]
    fn newest_bounds_the_backlog() {
        let r = ring_with(1..=10, 8);
        assert_eq!(ids(&r.after(5, 8)), vec![6, 7, 8]);
    }
}
