//! The ids of one connection's stream, checked: which arrived in order,
//! which are missing, which came twice, which a gap event announced.

/// Holes (ranges of missing ids) an [`IdTracker`] remembers; older ones are
/// forgotten, staying counted as lost (a late arrival then counts as a duplicate).
pub const MAX_HOLES: usize = 1_024;

/// What [`IdTracker::observe`] made of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdOutcome {
    /// The first id of the stream: nothing to compare with.
    First,
    /// The id after the highest so far.
    InOrder,
    /// Higher than expected: the `missing` ids in between are now lost
    /// (until they arrive late or a gap event names them).
    Skipped {
        /// How many ids were skipped.
        missing: u64,
    },
    /// An id counted lost arrived after all (reordered, or replayed after a
    /// reconnection): it is no longer lost.
    Late,
    /// Received before, or announced lost by a gap event.
    Duplicate,
}

/// What [`IdTracker::gap`] made of a gap event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapOutcome {
    /// Ids the gap names (`to - from + 1`).
    pub announced: u64,
    /// Of those, ids already counted lost: announced now, so no longer silently lost.
    pub no_longer_lost: u64,
    /// Ids between the highest seen and the gap's `from`: skipped without a word, lost.
    pub skipped: u64,
}

/// The ids of one connection's stream: which arrived in order, which are
/// missing, which came twice.
///
/// It remembers the highest id seen and the holes below it, as inclusive
/// ranges in ascending order; the in-order path is one comparison. A hole is
/// counted lost as soon as it opens, and un-counted if its ids turn up later,
/// which is what a reconnection with resume does: the tracker carries on from
/// the highest id, the server replays what came after it, and the replay
/// fills holes (`Late`) instead of counting as lost or duplicated.
#[derive(Debug, Clone, Default)]
pub struct IdTracker {
    /// The highest id seen, or covered by a gap event.
    last: Option<u64>,
    /// Missing ids below `last`: sorted, disjoint, inclusive ranges.
    holes: Vec<(u64, u64)>,
}

impl IdTracker {
    /// A tracker for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything: the next id starts a new sequence. For a stream
    /// opened without resume, where the ids in between were never asked for.
    pub fn reset(&mut self) {
        self.last = None;
        self.holes.clear();
    }

    /// The highest id seen (or covered by a gap event): the id to resume after.
    pub fn last_seen(&self) -> Option<u64> {
        self.last
    }

    /// How many ids are missing below [`last_seen`](Self::last_seen) (those still remembered).
    pub fn missing(&self) -> u64 {
        self.holes.iter().fold(0u64, |sum, &(lo, hi)| {
            sum.saturating_add((hi - lo).saturating_add(1))
        })
    }

    /// Classifies the next id received.
    pub fn observe(&mut self, id: u64) -> IdOutcome {
        let Some(last) = self.last else {
            self.last = Some(id);
            return IdOutcome::First;
        };
        if id > last {
            self.last = Some(id);
            let missing = id - last - 1;
            if missing == 0 {
                return IdOutcome::InOrder;
            }
            self.open_hole(last + 1, id - 1);
            return IdOutcome::Skipped { missing };
        }
        if self.fill(id, id) == 1 {
            IdOutcome::Late
        } else {
            IdOutcome::Duplicate
        }
    }

    /// A gap event: the server says ids `from..=to` will never come.
    pub fn gap(&mut self, from: u64, to: u64) -> GapOutcome {
        let (from, to) = (from.min(to), from.max(to));
        let announced = (to - from).saturating_add(1);
        let no_longer_lost = self.fill(from, to);
        let mut skipped = 0;
        match self.last {
            None => self.last = Some(to),
            Some(last) if to > last => {
                if from > last.saturating_add(1) {
                    skipped = from - last - 1;
                    self.open_hole(last + 1, from - 1);
                }
                self.last = Some(to);
            }
            Some(_) => {}
        }
        GapOutcome {
            announced,
            no_longer_lost,
            skipped,
        }
    }

    fn open_hole(&mut self, lo: u64, hi: u64) {
        self.holes.push((lo, hi));
        if self.holes.len() > MAX_HOLES {
            self.holes.remove(0);
        }
    }

    /// Removes `lo..=hi` from the holes; returns how many ids were missing in it.
    fn fill(&mut self, lo: u64, hi: u64) -> u64 {
        let mut filled = 0;
        // The first hole that ends at or after `lo`; holes are sorted and disjoint.
        let mut i = self.holes.partition_point(|&(_, end)| end < lo);
        while let Some(&(start, end)) = self.holes.get(i) {
            if start > hi {
                break;
            }
            filled += (end.min(hi) - start.max(lo)).saturating_add(1);
            match (start < lo, end > hi) {
                (false, false) => {
                    self.holes.remove(i);
                    continue;
                }
                (true, false) => self.holes[i].1 = lo - 1,
                (false, true) => self.holes[i].0 = hi + 1,
                (true, true) => {
                    self.holes[i].1 = lo - 1;
                    self.holes.insert(i + 1, (hi + 1, end));
                    if self.holes.len() > MAX_HOLES {
                        self.holes.remove(0);
                    }
                    break;
                }
            }
            i += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_order() {
        let mut ids = IdTracker::new();
        assert_eq!(ids.observe(7), IdOutcome::First);
        assert_eq!(ids.observe(8), IdOutcome::InOrder);
        assert_eq!(ids.observe(9), IdOutcome::InOrder);
        assert_eq!((ids.last_seen(), ids.missing()), (Some(9), 0));
    }

    #[test]
    fn ids_hole_then_duplicates() {
        let mut ids = IdTracker::new();
        ids.observe(1);
        assert_eq!(ids.observe(5), IdOutcome::Skipped { missing: 3 });
        assert_eq!(ids.missing(), 3);
        assert_eq!(ids.observe(5), IdOutcome::Duplicate);
        assert_eq!(ids.observe(1), IdOutcome::Duplicate);
        assert_eq!(ids.observe(6), IdOutcome::InOrder);
    }

    #[test]
    fn ids_out_of_order_fill_holes_once() {
        let mut ids = IdTracker::new();
        ids.observe(1);
        assert_eq!(ids.observe(10), IdOutcome::Skipped { missing: 8 });
        assert_eq!(ids.observe(5), IdOutcome::Late);
        assert_eq!(ids.holes, vec![(2, 4), (6, 9)]);
        assert_eq!(ids.observe(5), IdOutcome::Duplicate);
        for id in [2, 9, 3, 4, 6, 8, 7] {
            assert_eq!(ids.observe(id), IdOutcome::Late, "id {id}");
        }
        assert_eq!((ids.missing(), ids.holes.len()), (0, 0));
    }

    #[test]
    fn gap_after_the_last_id() {
        let mut ids = IdTracker::new();
        ids.observe(5);
        let outcome = ids.gap(6, 9);
        assert_eq!(
            outcome,
            GapOutcome {
                announced: 4,
                no_longer_lost: 0,
                skipped: 0
            }
        );
        assert_eq!(ids.observe(10), IdOutcome::InOrder);
        assert_eq!(
            ids.observe(7),
            IdOutcome::Duplicate,
            "announced lost, then sent"
        );
    }

    #[test]
    fn gap_over_holes_and_beyond() {
        let mut ids = IdTracker::new();
        ids.observe(1);
        ids.observe(4); // 2 and 3 missing
        let outcome = ids.gap(3, 6);
        assert_eq!(
            outcome,
            GapOutcome {
                announced: 4,
                no_longer_lost: 1,
                skipped: 0
            }
        );
        assert_eq!(ids.holes, vec![(2, 2)]);
        let outcome = ids.gap(9, 10); // 7 and 8 skipped without a word
        assert_eq!(
            outcome,
            GapOutcome {
                announced: 2,
                no_longer_lost: 0,
                skipped: 2
            }
        );
        assert_eq!(ids.holes, vec![(2, 2), (7, 8)]);
        assert_eq!(ids.observe(11), IdOutcome::InOrder);
    }

    #[test]
    fn gap_on_a_fresh_tracker_sets_the_start() {
        let mut ids = IdTracker::new();
        assert_eq!(ids.gap(1, 3).announced, 3);
        assert_eq!(ids.observe(4), IdOutcome::InOrder);
    }

    #[test]
    fn holes_are_bounded() {
        let mut ids = IdTracker::new();
        for id in 0..(MAX_HOLES as u64 + 10) {
            ids.observe(id * 2);
        }
        assert_eq!(ids.holes.len(), MAX_HOLES);
        assert_eq!(
            ids.observe(1),
            IdOutcome::Duplicate,
            "forgotten, still counted lost"
        );
        assert_eq!(ids.observe(id_in_last_hole()), IdOutcome::Late);
    }

    fn id_in_last_hole() -> u64 {
        (MAX_HOLES as u64 + 9) * 2 - 1
    }

    #[test]
    fn extreme_ids_do_not_overflow() {
        let mut ids = IdTracker::new();
        ids.observe(0);
        assert_eq!(
            ids.observe(u64::MAX),
            IdOutcome::Skipped {
                missing: u64::MAX - 1
            }
        );
        assert_eq!(ids.gap(0, u64::MAX).no_longer_lost, u64::MAX - 1);
        assert_eq!(ids.missing(), 0);
    }
}
