//! [`RecordBatch`]: what one connection received since it last handed its
//! events to a shared [`Recorder`](super::Recorder), kept without a lock.
//!
//! Connections share a few recorders (a recorder's histograms cost
//! 50–120 KiB, too much per connection), one per runtime thread, behind a
//! mutex because the live view and the hold read them while the run goes
//! on. Taking that mutex at every event costs an atomic read-modify-write
//! per lock and per unlock, on the path every event takes. A batch instead
//! does, per event, what needs only the connection's own state (its id
//! tracker, its last arrival, the counters), keeps the few values a
//! histogram needs in a fixed array (no heap, so nothing grows per event),
//! and is added to a recorder ([`Recorder::absorb`](super::Recorder::absorb))
//! under one lock when [`add`](RecordBatch::add) says so: when it is full,
//! when its oldest event is [`FLUSH_AFTER_NS`] old, or when the event came
//! [`FLUSH_AFTER_NS`] after the one before (a slow stream gains nothing from
//! batching, and its events would wait for the next one). Its owner also
//! hands it over when a stream ends and when it is dropped, so every event
//! reaches a recorder, and readers see the figures at most about
//! [`FLUSH_AFTER_NS`] plus one event period late.
//!
//! What it leaves to the recorder is order-independent (histograms, sums,
//! the per-second series), so adding a batch gives exactly what recording
//! its events one by one gives.

use super::ids::{IdOutcome, IdTracker};

/// One event as a connection received it: what could be read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub id: Option<u64>,
    /// When the server sent it (scheduled), ns since the Unix epoch.
    pub sent_unix_ns: Option<u64>,
    pub recv_unix_ns: u64,
    pub bytes: usize,
}

/// Events a batch holds at most.
pub const BATCH_EVENTS: usize = 16;
/// How long an event may wait in a batch (see the module documentation):
/// a live view refreshing every 250–500 ms then lags by well under one refresh.
pub const FLUSH_AFTER_NS: u64 = 100_000_000;

/// The counters a batch adds to a recorder's (its fields are the
/// `result::Counters` ones an event can change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct BatchCounters {
    pub events: u64,
    pub bytes: u64,
    pub no_id: u64,
    /// Ids skipped, and ids that came late after being counted skipped:
    /// kept apart because the late one may be handed to another recorder
    /// than the skip was (a task moves between runtime threads).
    pub lost_added: u64,
    pub lost_removed: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub unstamped: u64,
    pub negative_latency: u64,
    pub negative_latency_max_us: u64,
}

/// Events of one connection not yet in a recorder; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub(super) counters: BatchCounters,
    /// The three values an event leaves, interleaved: see [`Slot`].
    pub(super) slots: [Slot; BATCH_EVENTS],
    /// Slots whose `latency_ns` is set (the first ones).
    pub(super) latencies: usize,
    /// Slots whose `gap_ns` is set (the first ones).
    pub(super) gaps: usize,
}

/// What an event leaves in a batch, side by side: an event writes its three
/// values into one slot (24 bytes, within one or two cache lines), where
/// three arrays of [`BATCH_EVENTS`] took one line each. The batch lives in
/// the connection's task, and with thousands of connections that task's
/// lines are out of the cache when its next event comes: cachegrind counted
/// about 38 first-level data-cache misses per event on sse-h1, three of them
/// here. A latency or a gap is written at the next slot of its own count, so
/// an event with no stamp, or a stream's first event (no gap), leaves the
/// slot's other field for the next event; in the steady state every event
/// fills one slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot {
    /// Receive time (for the per-second series): one per event.
    pub recv_ns: u64,
    /// Latency (ns) of a stamped event that came after its stamp.
    pub latency_ns: u64,
    /// Time since the connection's previous event (ns).
    pub gap_ns: u64,
}

impl RecordBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.counters.events as usize
    }

    pub fn is_empty(&self) -> bool {
        self.counters.events == 0
    }

    /// Adds one event of a connection whose ids `ids` tracks and whose
    /// previous event arrived at `last_recv_ns` (updated here), with the
    /// rules of [`Recorder::record`](super::Recorder::record). Returns true
    /// when the batch must now be handed to a recorder (it cannot take
    /// another event before that).
    #[inline]
    pub fn add(&mut self, ids: &mut IdTracker, last_recv_ns: &mut Option<u64>, e: Arrival) -> bool {
        let n = self.len();
        debug_assert!(n < BATCH_EVENTS, "a full batch is handed over first");
        let c = &mut self.counters;
        c.events += 1;
        c.bytes += e.bytes as u64;
        match e.id.map(|id| ids.observe(id)) {
            None => c.no_id += 1,
            Some(IdOutcome::First | IdOutcome::InOrder) => {}
            Some(IdOutcome::Skipped { missing }) => c.lost_added += missing,
            Some(IdOutcome::Late) => {
                c.lost_removed += 1;
                c.out_of_order += 1;
            }
            Some(IdOutcome::Duplicate) => c.duplicates += 1,
        }
        match e.sent_unix_ns {
            None => c.unstamped += 1,
            Some(sent) => match e.recv_unix_ns.checked_sub(sent) {
                Some(ns) => {
                    self.slots[self.latencies].latency_ns = ns;
                    self.latencies += 1;
                }
                None => {
                    c.negative_latency += 1;
                    let early_us = (sent - e.recv_unix_ns) / 1_000;
                    c.negative_latency_max_us = c.negative_latency_max_us.max(early_us);
                }
            },
        }
        let gap_ns = last_recv_ns
            .replace(e.recv_unix_ns)
            .map(|previous| e.recv_unix_ns.saturating_sub(previous));
        if let Some(gap) = gap_ns {
            self.slots[self.gaps].gap_ns = gap;
            self.gaps += 1;
        }
        self.slots[n].recv_ns = e.recv_unix_ns;
        n + 1 == BATCH_EVENTS
            || e.recv_unix_ns.saturating_sub(self.slots[0].recv_ns) >= FLUSH_AFTER_NS
            || gap_ns.is_none_or(|gap| gap >= FLUSH_AFTER_NS)
    }

    /// Empties the batch (after a recorder took it).
    pub(super) fn clear(&mut self) {
        self.counters = BatchCounters::default();
        self.latencies = 0;
        self.gaps = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_800_000_000_000_000_000;

    fn tick(id: u64, at_ms: u64) -> Arrival {
        Arrival {
            id: Some(id),
            sent_unix_ns: Some(T0 + at_ms * MS - MS),
            recv_unix_ns: T0 + at_ms * MS,
            bytes: 100,
        }
    }

    #[test]
    fn asks_to_be_handed_over_when_full_old_or_slow() {
        let (mut ids, mut last) = (IdTracker::new(), None);
        let mut b = RecordBatch::new();
        assert!(
            b.add(&mut ids, &mut last, tick(1, 0)),
            "a first event has no pace yet"
        );
        b.clear();
        // 10 ms apart: held until 100 ms after the batch's first event.
        let mut handed = Vec::new();
        for i in 1..=12 {
            if b.add(&mut ids, &mut last, tick(1 + i, 10 * i)) {
                handed.push((i, b.len()));
                b.clear();
            }
        }
        assert_eq!(handed, [(11, 11)]);
        // 1 ms apart: held until full.
        let mut sizes = Vec::new();
        for i in 0..40 {
            if b.add(&mut ids, &mut last, tick(20 + i, 200 + i)) {
                sizes.push(b.len());
                b.clear();
            }
        }
        assert!(sizes.iter().all(|&n| n <= BATCH_EVENTS) && sizes.contains(&BATCH_EVENTS));
        // After a pause of 100 ms or more: handed over at once.
        b.clear();
        assert!(b.add(&mut ids, &mut last, tick(60, 1_000)));
    }
}
