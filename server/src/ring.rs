//! The replay ring: the last N events, kept so a client that reconnects with
//! `Last-Event-ID` (or `lastEventId`) gets exactly what it missed.

use std::collections::VecDeque;

use crate::event::{Gap, Item, SharedEvent};

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
/// Ids increase; in one process they are consecutive. A server that relays
/// a shared feed (`--feed-redis`) may miss ids the feed's stream no longer
/// held when it read it: the ring then has a hole there, and a subscriber
/// is told exactly which ids are missing ([`items_after`](Self::items_after)).
/// Lookups are a binary search over ids.
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
        debug_assert!(self.events.back().is_none_or(|b| b.id < event.id));
        if self.capacity == 0 {
            return;
        }
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// How many events it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The oldest id still held.
    pub fn first_id(&self) -> Option<u64> {
        self.events.front().map(|e| e.id)
    }

    /// The newest id held.
    pub fn last_id(&self) -> Option<u64> {
        self.events.back().map(|e| e.id)
    }

    /// Every event held, oldest first (a new leader of a shared feed puts
    /// them back into an emptied stream).
    pub fn events(&self) -> impl Iterator<Item = &SharedEvent> {
        self.events.iter()
    }

    /// Everything after `last_seen`, up to and including `newest` (the feed's
    /// newest id when asked), for a ring without holes: a gap names the ids
    /// older than the ring.
    pub fn after(&self, last_seen: u64, newest: u64) -> Backlog {
        let mut items = VecDeque::new();
        self.items_after(last_seen, newest, &mut items);
        let mut backlog = Backlog::default();
        for item in items {
            match item {
                Item::Gap(g) if backlog.gap.is_none() && backlog.events.is_empty() => {
                    backlog.gap = Some(g)
                }
                Item::Gap(_) => {}
                Item::Event(e) => backlog.events.push(e),
            }
        }
        backlog
    }

    /// Appends to `out`, in id order, every event after `last_seen` up to
    /// `newest`, with a gap item for each run of ids the ring does not hold
    /// (older than the ring, or a hole in it). Returns how many gap items
    /// were added.
    pub fn items_after(&self, last_seen: u64, newest: u64, out: &mut VecDeque<Item>) -> usize {
        let mut gaps = 0;
        if last_seen >= newest {
            return gaps;
        }
        let start = self.events.partition_point(|e| e.id <= last_seen);
        let mut expected = last_seen + 1;
        for e in self.events.range(start..) {
            if e.id > newest {
                break;
            }
            if e.id > expected {
                out.push_back(Item::Gap(Gap {
                    from: expected,
                    to: e.id - 1,
                }));
                gaps += 1;
            }
            out.push_back(Item::Event(e.clone()));
            expected = e.id + 1;
        }
        if expected <= newest {
            out.push_back(Item::Gap(Gap {
                from: expected,
                to: newest,
            }));
            gaps += 1;
        }
        gaps
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
    fn holes_are_named_exactly() {
        let mut r = ReplayRing::new(8);
        for id in [3, 4, 7, 8, 10] {
            r.push(Arc::new(encode_tick(id, id, 0)));
        }
        let mut out = VecDeque::new();
        assert_eq!(r.items_after(1, 11, &mut out), 4);
        let shown: Vec<String> = out
            .iter()
            .map(|i| match i {
                Item::Event(e) => e.id.to_string(),
                Item::Gap(g) => format!("gap {}-{}", g.from, g.to),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "gap 2-2",
                "3",
                "4",
                "gap 5-6",
                "7",
                "8",
                "gap 9-9",
                "10",
                "gap 11-11"
            ]
        );
        out.clear();
        assert_eq!(r.items_after(7, 8, &mut out), 0);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn newest_bounds_the_backlog() {
        let r = ring_with(1..=10, 8);
        assert_eq!(ids(&r.after(5, 8)), vec![6, 7, 8]);
    }
}
