//! What a load-generator task measures: HDR latency histograms, counters and
//! an events-per-second series, cheap to update per event and mergeable
//! exactly, in memory ([`Recorder::merge`]) and through a result file
//! ([`RecorderSnapshot`]).
//!
//! Each task keeps its own `Recorder` (or one of a few shards) and the
//! driver merges them at the end, so the hot path never waits for a shared
//! histogram (hdrhistogram's `SyncHistogram` would make every reader wait
//! for every recorder). A recorder costs about 50–120 KiB (its histograms),
//! so connections share one and each keeps only its own [`IdTracker`] and
//! a [`RecordBatch`] of the events not yet handed over
//! ([`Recorder::absorb`]).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use server::event::unix_now_ns;

use super::batch::{Arrival, RecordBatch};
use super::ids::{GapOutcome, IdTracker};
use crate::client::ErrorKind;
use crate::result::{
    new_histogram, summarize, Counters, HistogramError, RecorderSnapshot, HIGHEST_US,
};

/// Length of the events-per-second series (24 h); later events are counted in `rate_overflow`.
pub const MAX_SECONDS: usize = 24 * 3_600;

/// An inter-arrival gap longer than this is a stall unless told otherwise.
pub const DEFAULT_STALL: Duration = Duration::from_secs(1);

/// The measurements of one task: see the module documentation.
#[derive(Debug, Clone)]
pub struct Recorder {
    start_unix_ns: u64,
    counters: Counters,
    events_per_second: Vec<u64>,
    latency_us: Histogram<u64>,
    connect_us: Histogram<u64>,
    first_event_us: Histogram<u64>,
    /// From a stream's break to its resumed stream's response.
    reconnect_us: Histogram<u64>,
    arrival_gap_us: Histogram<u64>,
    stall_after_us: u64,
    /// Lost ids this recorder was told came after all, beyond the lost
    /// ids it counted (see `take_lost`); never in a result file, since
    /// the merge of every recorder of a run leaves none.
    lost_credit: u64,
}

impl Recorder {
    /// A recorder whose per-second series counts from `run_start`.
    ///
    /// Events carry Unix times, so the start is converted to Unix time once
    /// here. Recorders created at different moments may then disagree by a
    /// few microseconds on where a second starts; give them all the same
    /// [`with_start_unix_ns`](Self::with_start_unix_ns) to rule that out.
    pub fn new(run_start: Instant) -> Self {
        let elapsed = u64::try_from(run_start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Self::with_start_unix_ns(unix_now_ns().saturating_sub(elapsed))
    }

    /// A recorder whose per-second series counts from `start_unix_ns`.
    pub fn with_start_unix_ns(start_unix_ns: u64) -> Self {
        Self {
            start_unix_ns,
            counters: Counters::default(),
            events_per_second: Vec::new(),
            latency_us: new_histogram(),
            connect_us: new_histogram(),
            first_event_us: new_histogram(),
            reconnect_us: new_histogram(),
            arrival_gap_us: new_histogram(),
            stall_after_us: DEFAULT_STALL.as_micros() as u64,
            lost_credit: 0,
        }
    }

    /// The run start the per-second series counts from.
    pub fn start_unix_ns(&self) -> u64 {
        self.start_unix_ns
    }

    /// One tick event of the feed server on a connection whose ids `ids`
    /// tracks (a recorder is shared by many connections; each has its own
    /// tracker, used with one recorder only), without inter-arrival gaps:
    /// [`record`](Self::record) with a connection's last arrival does both.
    pub fn record_event(
        &mut self,
        ids: &mut IdTracker,
        id: u64,
        sent_unix_ns: u64,
        recv_unix_ns: u64,
        bytes: usize,
    ) {
        let arrival = Arrival {
            id: Some(id),
            sent_unix_ns: Some(sent_unix_ns),
            recv_unix_ns,
            bytes,
        };
        self.record(ids, &mut None, arrival);
    }

    /// One event on a connection whose ids `ids` tracks and whose previous
    /// event arrived at `last_recv_ns` (updated here).
    ///
    /// Latency is `recv - sent`, truncated to µs; `sent` is the tick's
    /// scheduled time, so a late server shows as latency. Events replayed
    /// after a reconnection are recorded with their (large) latency too:
    /// that is how late the user sees them. An event received before its
    /// send time is counted apart (`negative_latency`), never recorded as 0.
    /// Without an id there is no loss check for it (`no_id`); without a
    /// send time, no latency (`unstamped`).
    pub fn record(&mut self, ids: &mut IdTracker, last_recv_ns: &mut Option<u64>, e: Arrival) {
        let mut batch = RecordBatch::new();
        batch.add(ids, last_recv_ns, e);
        self.absorb(&mut batch);
    }

    /// Adds a connection's batch of events (see [`RecordBatch`]) and empties
    /// it: exactly what recording them one by one gives, under one lock.
    pub fn absorb(&mut self, batch: &mut RecordBatch) {
        let b = &batch.counters;
        let c = &mut self.counters;
        c.events += b.events;
        c.bytes += b.bytes;
        c.no_id += b.no_id;
        c.out_of_order += b.out_of_order;
        c.duplicates += b.duplicates;
        c.unstamped += b.unstamped;
        c.negative_latency += b.negative_latency;
        c.negative_latency_max_us = c.negative_latency_max_us.max(b.negative_latency_max_us);
        self.add_lost(b.lost_added);
        self.take_lost(b.lost_removed);
        let c = &mut self.counters;
        for slot in &batch.slots[..batch.latencies] {
            record_clamped(
                &mut self.latency_us,
                &mut c.clamped,
                slot.latency_ns / 1_000,
            );
        }
        for slot in &batch.slots[..batch.gaps] {
            let gap_us = slot.gap_ns / 1_000;
            if gap_us > self.stall_after_us {
                c.stalls += 1;
            }
            record_clamped(&mut self.arrival_gap_us, &mut c.clamped, gap_us);
        }
        for slot in &batch.slots[..batch.len()] {
            let second = slot.recv_ns.saturating_sub(self.start_unix_ns) / 1_000_000_000;
            match usize::try_from(second) {
                Ok(second) if second < MAX_SECONDS => {
                    if second >= self.events_per_second.len() {
                        self.events_per_second.resize(second + 1, 0);
                    }
                    self.events_per_second[second] += 1;
                }
                _ => c.rate_overflow += 1,
            }
        }
        batch.clear();
    }

    /// Counts `n` ids lost, first paying back any [`lost_credit`](Self::lost_credit).
    fn add_lost(&mut self, n: u64) {
        let paid = n.min(self.lost_credit);
        self.lost_credit -= paid;
        self.counters.lost += n - paid;
    }

    /// Counts `n` ids no longer lost (they came late, or a gap event named
    /// them). Their loss may sit in another recorder (the connection's task
    /// moved to another runtime thread): what this one cannot take off is
    /// kept as credit and taken off at the merge, so the merged count is
    /// exact where clamping at zero would leave it too high.
    fn take_lost(&mut self, n: u64) {
        let taken = n.min(self.counters.lost);
        self.counters.lost -= taken;
        self.lost_credit += n - taken;
    }

    /// Counts an inter-arrival gap longer than `after` as a stall (default
    /// [`DEFAULT_STALL`]).
    pub fn set_stall_after(&mut self, after: Duration) {
        self.stall_after_us = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
    }

    /// A gap event announcing ids `from..=to` lost, on a connection whose ids
    /// `ids` tracks. Call this instead of `record_event` for a gap; it is not a tick.
    pub fn record_gap(&mut self, ids: &mut IdTracker, from: u64, to: u64) {
        let outcome = ids.gap(from, to);
        self.record_gap_outcome(outcome);
    }

    fn record_gap_outcome(&mut self, outcome: GapOutcome) {
        let c = &mut self.counters;
        c.gap_events += 1;
        c.gap_missing += outcome.announced;
        self.add_lost(outcome.skipped);
        self.take_lost(outcome.no_longer_lost);
    }

    /// A reconnection. With resume (the client sends `Last-Event-ID` /
    /// `lastEventId`) the connection's [`IdTracker`] carries on, so replayed
    /// events fill holes instead of counting as duplicates; without, reset
    /// the tracker ([`IdTracker::reset`]).
    pub fn record_reconnect(&mut self) {
        self.counters.reconnects += 1;
    }

    /// TCP + TLS + HTTP until response headers or the WebSocket upgrade.
    pub fn record_connect(&mut self, elapsed: Duration) {
        record_duration(&mut self.connect_us, &mut self.counters.clamped, elapsed);
    }

    /// From the moment a stream broke (closed or failed) to the response of
    /// the stream that resumed it: what a client waits, retry delay included.
    pub fn record_reconnect_time(&mut self, elapsed: Duration) {
        record_duration(&mut self.reconnect_us, &mut self.counters.clamped, elapsed);
    }

    /// From the start of connecting to the first tick event.
    pub fn record_first_event(&mut self, elapsed: Duration) {
        record_duration(
            &mut self.first_event_us,
            &mut self.counters.clamped,
            elapsed,
        );
    }

    /// A keep-alive comment or ping.
    pub fn record_keepalive(&mut self) {
        self.counters.keepalives += 1;
    }

    /// A failure. Off the hot path: formats the kind's key each time.
    pub fn record_error(&mut self, kind: ErrorKind) {
        let key = kind.to_string();
        *self.counters.errors.entry(key).or_default() += 1;
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Events received in each second since the run start.
    pub fn events_per_second(&self) -> &[u64] {
        &self.events_per_second
    }

    /// Event latency (receive time minus scheduled send time), µs.
    pub fn latency_us(&self) -> &Histogram<u64> {
        &self.latency_us
    }

    /// Connection set-up time, µs.
    pub fn connect_us(&self) -> &Histogram<u64> {
        &self.connect_us
    }

    /// Connect start to first tick event, µs.
    pub fn first_event_us(&self) -> &Histogram<u64> {
        &self.first_event_us
    }

    /// Time between consecutive events on one connection, µs.
    pub fn arrival_gap_us(&self) -> &Histogram<u64> {
        &self.arrival_gap_us
    }

    /// Adds `other`'s measurements to these, exactly: histograms, counters
    /// and the per-second series (element by element, so both should count
    /// from the same run start; this recorder's start is kept). Id trackers
    /// are per connection and not part of a recorder.
    pub fn merge(&mut self, other: &Recorder) {
        self.counters.add(&other.counters);
        self.lost_credit += other.lost_credit;
        let settled = self.lost_credit.min(self.counters.lost);
        self.lost_credit -= settled;
        self.counters.lost -= settled;
        if self.events_per_second.len() < other.events_per_second.len() {
            self.events_per_second
                .resize(other.events_per_second.len(), 0);
        }
        for (mine, theirs) in self
            .events_per_second
            .iter_mut()
            .zip(&other.events_per_second)
        {
            *mine += theirs;
        }
        for (mine, theirs) in [
            (&mut self.latency_us, &other.latency_us),
            (&mut self.connect_us, &other.connect_us),
            (&mut self.first_event_us, &other.first_event_us),
            (&mut self.reconnect_us, &other.reconnect_us),
            (&mut self.arrival_gap_us, &other.arrival_gap_us),
        ] {
            mine.add(theirs)
                .expect("auto-resizing histograms take any value up to HIGHEST_US");
        }
    }

    /// Everything measured, in a serializable form that merges exactly later.
    pub fn snapshot(&self) -> Result<RecorderSnapshot, HistogramError> {
        Ok(RecorderSnapshot {
            start_unix_ns: self.start_unix_ns,
            counters: self.counters.clone(),
            events_per_second: self.events_per_second.clone(),
            latency_us: summarize(&self.latency_us)?,
            connect_us: summarize(&self.connect_us)?,
            first_event_us: summarize(&self.first_event_us)?,
            reconnect_us: if self.reconnect_us.is_empty() {
                None
            } else {
                Some(summarize(&self.reconnect_us)?)
            },
            arrival_gap_us: if self.arrival_gap_us.is_empty() {
                None
            } else {
                Some(summarize(&self.arrival_gap_us)?)
            },
        })
    }

    /// A recorder holding a snapshot's measurements, to merge result files.
    pub fn from_snapshot(snapshot: &RecorderSnapshot) -> Result<Self, HistogramError> {
        Ok(Self {
            start_unix_ns: snapshot.start_unix_ns,
            counters: snapshot.counters.clone(),
            events_per_second: snapshot.events_per_second.clone(),
            latency_us: snapshot.latency_us.decode_compatible()?,
            connect_us: snapshot.connect_us.decode_compatible()?,
            first_event_us: snapshot.first_event_us.decode_compatible()?,
            reconnect_us: match &snapshot.reconnect_us {
                Some(h) => h.decode_compatible()?,
                None => new_histogram(),
            },
            arrival_gap_us: match &snapshot.arrival_gap_us {
                Some(h) => h.decode_compatible()?,
                None => new_histogram(),
            },
            stall_after_us: DEFAULT_STALL.as_micros() as u64,
            lost_credit: 0,
        })
    }
}

/// Records `us`, clamped to `0..=HIGHEST_US` (and counted when it was out of range).
fn record_clamped(histogram: &mut Histogram<u64>, clamped: &mut u64, us: u64) {
    let value = if us > HIGHEST_US {
        *clamped += 1;
        HIGHEST_US
    } else {
        us
    };
    if histogram.record(value).is_err() {
        // Only a failed resize (a `usize` too small for ~23,500 counters) gets here.
        *clamped += 1;
        histogram.saturating_record(value);
    }
}

fn record_duration(histogram: &mut Histogram<u64>, clamped: &mut u64, elapsed: Duration) {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    record_clamped(histogram, clamped, us);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn recorder() -> Recorder {
        Recorder::with_start_unix_ns(1_700_000_000 * SECOND)
    }

    /// Records `id` received `latency_us` after it was sent, `at_s` seconds into the run.
    fn tick(r: &mut Recorder, ids: &mut IdTracker, id: u64, at_s: u64, latency_us: u64) {
        let recv = r.start_unix_ns() + at_s * SECOND;
        r.record_event(ids, id, recv - latency_us * 1_000, recv, 100);
    }

    #[test]
    fn reconnect_with_resume_replays_into_holes() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        for id in [1, 2, 5] {
            tick(&mut r, &mut ids, id, 0, 50);
        }
        assert_eq!(r.counters().lost, 2);
        r.record_reconnect();
        for id in [3, 4, 5, 6] {
            tick(&mut r, &mut ids, id, 1, 50);
        }
        let c = r.counters();
        assert_eq!((c.lost, c.out_of_order, c.duplicates), (0, 2, 1));
        assert_eq!((c.events, c.reconnects), (7, 1));
    }

    #[test]
    fn reconnect_in_order_replay_counts_nothing() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        for id in 1..=3 {
            tick(&mut r, &mut ids, id, 0, 50);
        }
        r.record_reconnect();
        assert_eq!(ids.last_seen(), Some(3));
        for id in 4..=6 {
            tick(&mut r, &mut ids, id, 0, 50);
        }
        let c = r.counters();
        assert_eq!((c.lost, c.out_of_order, c.duplicates), (0, 0, 0));
    }

    #[test]
    fn reconnect_without_resume_starts_over() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        tick(&mut r, &mut ids, 1, 0, 50);
        r.record_reconnect();
        ids.reset();
        tick(&mut r, &mut ids, 100, 0, 50);
        assert_eq!(r.counters().lost, 0);
    }

    #[test]
    fn gaps_turn_lost_into_announced() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        tick(&mut r, &mut ids, 1, 0, 50);
        tick(&mut r, &mut ids, 5, 0, 50);
        r.record_gap(&mut ids, 2, 4);
        let c = r.counters();
        assert_eq!((c.lost, c.gap_events, c.gap_missing), (0, 1, 3));
    }

    #[test]
    fn out_of_range_values_are_clamped_and_counted() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        let now = r.start_unix_ns() + SECOND;
        r.record_event(&mut ids, 2, now - 2 * HIGHEST_US * 1_000, now, 10);
        r.record_connect(Duration::from_secs(7_200));
        r.record_first_event(Duration::from_nanos(300));
        assert_eq!(r.counters().clamped, 2);
        let top = r.latency_us().max();
        assert_eq!(
            r.latency_us().lowest_equivalent(top),
            r.latency_us().lowest_equivalent(HIGHEST_US)
        );
        assert_eq!(r.first_event_us().max(), 0);
    }

    #[test]
    fn events_before_their_stamp_are_counted_not_clamped() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        let now = r.start_unix_ns() + SECOND;
        r.record_event(&mut ids, 1, now + 5_000_000, now, 10);
        r.record_event(&mut ids, 2, now + 7_000, now, 10);
        let c = r.counters();
        assert_eq!((c.negative_latency, c.negative_latency_max_us), (2, 5_000));
        assert_eq!((c.clamped, r.latency_us().len()), (0, 0));
    }

    #[test]
    fn events_without_id_or_stamp_and_their_gaps() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        r.set_stall_after(Duration::from_millis(500));
        let mut last = None;
        let t0 = r.start_unix_ns();
        for (at_ms, id, sent) in [
            (0, None, None),
            (100, Some(4), None),
            (1_100, Some(9), Some(t0)),
        ] {
            let recv = t0 + at_ms * 1_000_000;
            let e = Arrival {
                id,
                sent_unix_ns: sent,
                recv_unix_ns: recv,
                bytes: 3,
            };
            r.record(&mut ids, &mut last, e);
        }
        let c = r.counters();
        assert_eq!((c.events, c.no_id, c.unstamped, c.lost), (3, 1, 2, 4));
        assert_eq!(c.stalls, 1, "the 1 s gap is a stall, the 100 ms one is not");
        assert_eq!(r.arrival_gap_us().len(), 2);
        assert_eq!(r.latency_us().len(), 1);
        let back = Recorder::from_snapshot(&r.snapshot().unwrap()).unwrap();
        assert_eq!(back.arrival_gap_us().len(), 2);
    }

    #[test]
    fn events_per_second_is_bounded() {
        let (mut r, mut ids) = (recorder(), IdTracker::new());
        for (id, at_ns) in [
            (1, SECOND / 2),
            (2, SECOND + 1),
            (3, 2 * SECOND - 1),
            (4, 4 * SECOND),
        ] {
            let recv = r.start_unix_ns() + at_ns;
            r.record_event(&mut ids, id, recv, recv, 1);
        }
        let recv = r.start_unix_ns() + MAX_SECONDS as u64 * SECOND;
        r.record_event(&mut ids, 5, recv, recv, 1);
        assert_eq!(r.events_per_second(), &[1, 2, 0, 0, 1]);
        assert_eq!(r.counters().rate_overflow, 1);
    }

    #[test]
    fn error_keys() {
        let mut r = recorder();
        for kind in [
            ErrorKind::Http(503),
            ErrorKind::Timeout,
            ErrorKind::Http(503),
        ] {
            r.record_error(kind);
        }
        let errors: Vec<_> = r
            .counters()
            .errors
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(errors, vec![("http_503", 2), ("timeout", 1)]);
        let keys: Vec<_> = [
            ErrorKind::Connect,
            ErrorKind::Tls,
            ErrorKind::Protocol,
            ErrorKind::Closed,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(keys, ["connect", "tls", "protocol", "closed"]);
    }

    /// A deterministic, varied stream: reordering, duplicates, gaps, errors.
    fn play(r: &mut Recorder, ids: &mut IdTracker, seed: u64) {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        let start = r.start_unix_ns();
        let mut id = 0u64;
        for n in 0..5_000u64 {
            id += 1 + u64::from(next() % 50 == 0);
            let event_id = if next() % 40 == 0 {
                id.saturating_sub(next() % 5)
            } else {
                id
            };
            let recv = start + n * 3_000_000 + next() % 1_000;
            let sent = recv - (next() % 200_000) * (1 + next() % 1_000);
            r.record_event(ids, event_id, sent, recv, 50 + (next() % 100) as usize);
            match next() % 500 {
                0 => r.record_gap(ids, id + 1, id + 1 + next() % 3),
                1 => r.record_keepalive(),
                2 => r.record_error(ErrorKind::Http(500 + (next() % 4) as u16)),
                3 => {
                    r.record_connect(Duration::from_micros(next() % 100_000));
                    r.record_first_event(Duration::from_micros(next() % 200_000));
                    r.record_reconnect_time(Duration::from_micros(next() % 2_000_000));
                }
                _ => {}
            }
            if let Some(last) = ids.last_seen() {
                id = id.max(last);
            }
        }
    }

    fn assert_same(a: &Recorder, b: &Recorder) {
        assert_eq!(a.counters(), b.counters());
        assert_eq!(a.events_per_second(), b.events_per_second());
        assert_eq!(a.latency_us(), b.latency_us());
        assert_eq!(a.connect_us(), b.connect_us());
        assert_eq!(a.first_event_us(), b.first_event_us());
        assert_eq!(a.reconnect_us, b.reconnect_us);
        assert_eq!(a.latency_us().len(), b.latency_us().len());
    }

    #[test]
    fn merge_equals_recording_both_into_one() {
        let (mut a, mut b, mut both) = (recorder(), recorder(), recorder());
        play(&mut a, &mut IdTracker::new(), 1);
        play(&mut b, &mut IdTracker::new(), 2);
        play(&mut both, &mut IdTracker::new(), 1);
        play(&mut both, &mut IdTracker::new(), 2);
        assert!(
            a.counters().lost > 0 && a.counters().duplicates > 0 && a.counters().gap_events > 0
        );
        a.merge(&b);
        assert_same(&a, &both);
        let mut empty = recorder();
        empty.merge(&both);
        assert_same(&empty, &both);
    }

    #[test]
    fn batches_equal_recording_one_by_one() {
        let (mut one_by_one, mut batched) = (recorder(), recorder());
        let (mut ids_a, mut ids_b) = (IdTracker::new(), IdTracker::new());
        let (mut last_a, mut last_b) = (None, None);
        let mut batch = RecordBatch::new();
        let start = one_by_one.start_unix_ns();
        let mut handed = 0;
        for n in 0..3_000u64 {
            // Reordered, repeated and skipped ids, gaps of 0.3 ms to 400 ms.
            let id = match n % 97 {
                0 => n.saturating_sub(3),
                1 => n + 2,
                _ => n,
            };
            let recv = start + n * 300_000 + (n % 13) * 30_000_000;
            let e = Arrival {
                id: (n % 50 != 7).then_some(id),
                sent_unix_ns: (n % 40 != 3).then_some(recv - (n % 7) * 1_000_000),
                recv_unix_ns: recv,
                bytes: 90,
            };
            one_by_one.record(&mut ids_a, &mut last_a, e);
            if batch.add(&mut ids_b, &mut last_b, e) {
                batched.absorb(&mut batch);
                handed += 1;
            }
        }
        batched.absorb(&mut batch);
        assert!(handed > 100 && handed < 2_000, "batched for real: {handed}");
        assert_same(&one_by_one, &batched);
        assert_eq!(one_by_one.arrival_gap_us(), batched.arrival_gap_us());
        let c = one_by_one.counters();
        assert!(
            c.lost > 0 && c.out_of_order > 0 && c.no_id > 0 && c.unstamped > 0 && c.stalls == 0
        );
    }

    #[test]
    fn a_loss_made_good_in_another_shard_merges_exactly() {
        // A task skips ids in one shard, moves to another thread, and the
        // late ids arrive there: the merge must say nothing is lost.
        let (mut a, mut b, mut ids) = (recorder(), recorder(), IdTracker::new());
        tick(&mut a, &mut ids, 1, 0, 50);
        tick(&mut a, &mut ids, 4, 0, 50);
        assert_eq!(a.counters().lost, 2);
        tick(&mut b, &mut ids, 2, 0, 50);
        tick(&mut b, &mut ids, 3, 0, 50);
        assert_eq!(b.counters().lost, 0, "not below zero in a shard");
        let mut merged = recorder();
        merged.merge(&b);
        merged.merge(&a);
        assert_eq!(merged.counters().lost, 0);
        assert_eq!(merged.counters().out_of_order, 2);
        let mut other_order = recorder();
        other_order.merge(&a);
        other_order.merge(&b);
        assert_eq!(other_order.counters().lost, 0);
    }

    #[test]
    fn snapshot_roundtrip_is_exact() {
        let mut r = recorder();
        play(&mut r, &mut IdTracker::new(), 3);
        let json = serde_json::to_string(&r.snapshot().expect("serializable")).expect("json");
        let snapshot: RecorderSnapshot = serde_json::from_str(&json).expect("parses");
        let back = Recorder::from_snapshot(&snapshot).expect("decodes");
        assert_same(&back, &r);
        assert_eq!(back.start_unix_ns(), r.start_unix_ns());
        let again = back.snapshot().expect("serializable");
        assert_eq!(
            (
                again.latency_us.count,
                again.latency_us.p99,
                again.latency_us.max
            ),
            (
                snapshot.latency_us.count,
                snapshot.latency_us.p99,
                snapshot.latency_us.max
            )
        );
    }

    #[test]
    fn merging_snapshots_equals_merging_recorders() {
        let (mut a, mut b) = (recorder(), recorder());
        play(&mut a, &mut IdTracker::new(), 4);
        play(&mut b, &mut IdTracker::new(), 5);
        let mut from_files = Recorder::from_snapshot(&a.snapshot().expect("ok")).expect("ok");
        from_files.merge(&Recorder::from_snapshot(&b.snapshot().expect("ok")).expect("ok"));
        a.merge(&b);
        assert_same(&from_files, &a);
    }

    #[test]
    fn snapshots_of_other_precisions_are_refused() {
        let mut coarse = Histogram::<u64>::new_with_bounds(1, 1_000, 2).expect("valid");
        coarse.record(5).expect("in range");
        let coarse = summarize(&coarse).expect("serializable");
        let snapshot = RecorderSnapshot {
            latency_us: coarse,
            ..recorder().snapshot().expect("ok")
        };
        assert!(matches!(
            Recorder::from_snapshot(&snapshot),
            Err(HistogramError::Incompatible {
                lowest: 1,
                figures: 2
            })
        ));
        let mut huge = new_histogram();
        huge.record(10 * HIGHEST_US).expect("auto-resizes");
        let huge = summarize(&huge).expect("serializable");
        let snapshot = RecorderSnapshot {
            connect_us: huge,
            ..recorder().snapshot().expect("ok")
        };
        assert!(matches!(
            Recorder::from_snapshot(&snapshot),
            Err(HistogramError::TooLarge { .. })
        ));
    }

    #[test]
    fn new_measures_from_the_run_start() {
        let start = Instant::now();
        let r = Recorder::new(start);
        let now = unix_now_ns();
        assert!(r.start_unix_ns() <= now && now - r.start_unix_ns() < 5 * SECOND);
    }
}
