//! What a load-generator task measures: HDR latency histograms, counters and
//! an events-per-second series, cheap to update per event and mergeable
//! exactly, in memory ([`Recorder::merge`]) and through a result file
//! ([`RecorderSnapshot`]).
//!
//! Latencies are kept in whole microseconds, never rounded to milliseconds:
//! loopback latencies are tens of microseconds and milliseconds would hide
//! them. Each task keeps its own `Recorder` and the driver merges them at the
//! end, so the hot path never takes a lock (hdrhistogram's `SyncHistogram`
//! would make every reader wait for every recorder).
//!
//! Memory: a histogram with 3 significant figures holds 2,048 counters
//! (16 KiB) at least, growing to about 23,500 (184 KiB) for values up to an
//! hour. Histograms here grow only as far as the largest value recorded, so a
//! recorder costs about 50–120 KiB. For tens of thousands of connections,
//! share one recorder between the connections of a task and give each
//! connection its own [`IdTracker`] ([`Recorder::record_event_with`]).
//!
//! Id accounting, with the server's promise that nothing is dropped silently:
//! `lost` counts ids that never arrived and were never announced; `gap_missing`
//! counts ids the server announced as lost with a gap event. A correct server
//! under any load shows `lost == 0`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use hdrhistogram::serialization::{
    DeserializeError, Deserializer, Serializer, V2DeflateSerializeError, V2DeflateSerializer,
};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The finest latency the histograms distinguish, in µs.
pub const LOWEST_US: u64 = 1;
/// The largest latency recorded, in µs (one hour); larger values are clamped to it and counted.
pub const HIGHEST_US: u64 = 3_600 * 1_000_000;
/// Significant decimal figures kept for every value (0.1 % relative precision).
pub const SIGNIFICANT_FIGURES: u8 = 3;
/// Length of the events-per-second series (24 h); later events are counted in `rate_overflow`.
pub const MAX_SECONDS: usize = 24 * 3_600;
/// Holes (ranges of missing ids) an [`IdTracker`] remembers; older ones are
/// forgotten, staying counted as lost (a late arrival then counts as a duplicate).
pub const MAX_HOLES: usize = 1_024;

/// Why a connection or stream failed, for the error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The server answered with this HTTP status instead of a stream.
    Http(u16),
    /// The stream did not follow the wire format (bad frame, bad JSON, line too long).
    Protocol,
    /// The server closed a stream that should have stayed open.
    Closed,
    /// Nothing arrived within the allowed time.
    Timeout,
}

impl fmt::Display for ErrorKind {
    /// The key in [`Counters::errors`]: `connect`, `tls`, `http_503`, `protocol`, `closed`, `timeout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Tls => f.write_str("tls"),
            ErrorKind::Http(status) => write!(f, "http_{status}"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::Closed => f.write_str("closed"),
            ErrorKind::Timeout => f.write_str("timeout"),
        }
    }
}

/// Why a histogram could not be stored or read back.
#[derive(Debug, Error)]
pub enum RecorderError {
    /// hdrhistogram could not serialize a histogram (a count beyond `i64::MAX`).
    #[error("could not serialize a latency histogram")]
    Serialize(#[from] V2DeflateSerializeError),
    /// The `encoded` field is not hex.
    #[error(
        "a histogram's `encoded` field is not hex ({reason} at byte {at}): \
         the result file was truncated or edited; write it again"
    )]
    Hex {
        /// What is wrong.
        reason: &'static str,
        /// The byte offset of the problem.
        at: usize,
    },
    /// The bytes are not an HdrHistogram V2 (or V2 + deflate) histogram.
    #[error("a histogram's `encoded` field is not an HdrHistogram V2 histogram")]
    Deserialize(#[from] DeserializeError),
    /// Holds values beyond an hour: not written by this load generator.
    #[error(
        "a histogram holds values up to {max} µs, beyond the {HIGHEST_US} µs this load \
         generator records: it was not written by this load generator"
    )]
    TooLarge {
        /// Its largest value.
        max: u64,
    },
    /// Recorded with another resolution: merging it would not be exact.
    #[error(
        "a histogram has a resolution of {lowest} µs and {figures} significant figures, \
         not {LOWEST_US} µs and {SIGNIFICANT_FIGURES}: it was not written by this load \
         generator and cannot be merged exactly"
    )]
    Incompatible {
        /// Its lowest discernible value.
        lowest: u64,
        /// Its significant figures.
        figures: u8,
    },
}

/// A new, empty latency histogram with the recorder's precision.
///
/// It resizes itself as larger values arrive (values are clamped to
/// [`HIGHEST_US`] before recording), so an idle one costs 16 KiB, not 184.
pub fn new_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(LOWEST_US, 2 * LOWEST_US, SIGNIFICANT_FIGURES)
        .expect("constant bounds: low >= 1, high >= 2 * low, figures <= 5");
    histogram.auto(true);
    histogram
}

/// Nanoseconds since the Unix epoch now, the clock `record_event`'s times
/// use: the server's, so both sides read one clock the same way.
pub use server::event::unix_now_ns;

/// Every counter of a recorder; all add up under merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Tick events received, duplicates included.
    pub events: u64,
    /// Bytes received, as reported by the caller.
    pub bytes: u64,
    /// Keep-alive comments (SSE) or pings (WS) received.
    pub keepalives: u64,
    /// Reconnections after a stream ended or failed.
    pub reconnects: u64,
    /// Ids skipped and never announced by a gap event (nor received late).
    pub lost: u64,
    /// Ids received after a higher id (they had been counted lost until then).
    pub out_of_order: u64,
    /// Ids received again.
    pub duplicates: u64,
    /// Gap events received.
    pub gap_events: u64,
    /// Ids announced missing by gap events.
    pub gap_missing: u64,
    /// Durations outside `0..=HIGHEST_US` µs (negative latencies included),
    /// clamped into that range before recording.
    pub clamped: u64,
    /// Events received after [`MAX_SECONDS`] into the run, left out of the per-second series.
    pub rate_overflow: u64,
    /// Failures by [`ErrorKind`] key.
    pub errors: BTreeMap<String, u64>,
}

impl Counters {
    fn merge(&mut self, other: &Counters) {
        self.events += other.events;
        self.bytes += other.bytes;
        self.keepalives += other.keepalives;
        self.reconnects += other.reconnects;
        self.lost += other.lost;
        self.out_of_order += other.out_of_order;
        self.duplicates += other.duplicates;
        self.gap_events += other.gap_events;
        self.gap_missing += other.gap_missing;
        self.clamped += other.clamped;
        self.rate_overflow += other.rate_overflow;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
    }
}

/// The measurements of one task: see the module documentation.
#[derive(Debug, Clone)]
pub struct Recorder {
    start_unix_ns: u64,
    ids: IdTracker,
    counters: Counters,
    events_per_second: Vec<u64>,
    latency_us: Histogram<u64>,
    connect_us: Histogram<u64>,
    first_event_us: Histogram<u64>,
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
            ids: IdTracker::new(),
            counters: Counters::default(),
            events_per_second: Vec::new(),
            latency_us: new_histogram(),
            connect_us: new_histogram(),
            first_event_us: new_histogram(),
        }
    }

    /// The run start the per-second series counts from.
    pub fn start_unix_ns(&self) -> u64 {
        self.start_unix_ns
    }

    /// One tick event on this recorder's own connection (its built-in [`IdTracker`]).
    ///
    /// Latency is `recv_unix_ns - sent_unix_ns`, truncated to µs; `sent` is
    /// the tick's scheduled time, so a late server shows as latency. Events
    /// replayed after a reconnection are recorded with their (large) latency
    /// too: that is how late the user sees them.
    pub fn record_event(&mut self, id: u64, sent_unix_ns: u64, recv_unix_ns: u64, bytes: usize) {
        let outcome = self.ids.observe(id);
        self.record_outcome(outcome, sent_unix_ns, recv_unix_ns, bytes);
    }

    /// One tick event on a connection whose ids `ids` tracks, for a recorder
    /// shared by many connections. Use each tracker with one recorder only.
    pub fn record_event_with(
        &mut self,
        ids: &mut IdTracker,
        id: u64,
        sent_unix_ns: u64,
        recv_unix_ns: u64,
        bytes: usize,
    ) {
        let outcome = ids.observe(id);
        self.record_outcome(outcome, sent_unix_ns, recv_unix_ns, bytes);
    }

    fn record_outcome(
        &mut self,
        outcome: IdOutcome,
        sent_unix_ns: u64,
        recv_unix_ns: u64,
        bytes: usize,
    ) {
        let c = &mut self.counters;
        c.events += 1;
        c.bytes += bytes as u64;
        match outcome {
            IdOutcome::First | IdOutcome::InOrder => {}
            IdOutcome::Skipped { missing } => c.lost += missing,
            IdOutcome::Late => {
                c.lost = c.lost.saturating_sub(1);
                c.out_of_order += 1;
            }
            IdOutcome::Duplicate => c.duplicates += 1,
        }
        let latency_us = match recv_unix_ns.checked_sub(sent_unix_ns) {
            Some(ns) => ns / 1_000,
            None => {
                c.clamped += 1;
                0
            }
        };
        record_clamped(&mut self.latency_us, &mut c.clamped, latency_us);
        let second = recv_unix_ns.saturating_sub(self.start_unix_ns) / 1_000_000_000;
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

    /// A gap event announcing ids `from..=to` lost, on this recorder's own connection.
    /// Call this instead of `record_event` for a gap; it is not a tick.
    pub fn record_gap(&mut self, from: u64, to: u64) {
        let outcome = self.ids.gap(from, to);
        self.record_gap_outcome(outcome);
    }

    /// A gap event on a connection whose ids `ids` tracks (see [`record_event_with`](Self::record_event_with)).
    pub fn record_gap_with(&mut self, ids: &mut IdTracker, from: u64, to: u64) {
        let outcome = ids.gap(from, to);
        self.record_gap_outcome(outcome);
    }

    fn record_gap_outcome(&mut self, outcome: GapOutcome) {
        let c = &mut self.counters;
        c.gap_events += 1;
        c.gap_missing += outcome.announced;
        c.lost = (c.lost + outcome.skipped).saturating_sub(outcome.no_longer_lost);
    }

    /// A reconnection of this recorder's own connection. With `resume` (the
    /// client sends `Last-Event-ID`/`lastEventId`) the id tracker carries on,
    /// so replayed events fill holes instead of counting as duplicates;
    /// without, the next id starts a new sequence (see [`IdTracker::reset`]).
    pub fn record_reconnect(&mut self, resume: bool) {
        self.counters.reconnects += 1;
        if !resume {
            self.ids.reset();
        }
    }

    /// The id tracker of this recorder's own connection (for `Last-Event-ID`).
    pub fn ids(&self) -> &IdTracker {
        &self.ids
    }

    /// TCP + TLS + HTTP until response headers or the WebSocket upgrade.
    pub fn record_connect(&mut self, elapsed: Duration) {
        record_duration(&mut self.connect_us, &mut self.counters.clamped, elapsed);
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

    /// Bytes received that no `record_event` call counted (keep-alives, framing).
    pub fn record_bytes(&mut self, bytes: usize) {
        self.counters.bytes += bytes as u64;
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

    /// Adds `other`'s measurements to these, exactly: histograms, counters
    /// and the per-second series (element by element, so both should count
    /// from the same run start; this recorder's start is kept). Id trackers
    /// are per connection and are not merged.
    pub fn merge(&mut self, other: &Recorder) {
        self.counters.merge(&other.counters);
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
        ] {
            mine.add(theirs)
                .expect("auto-resizing histograms take any value up to HIGHEST_US");
        }
    }

    /// Everything measured, in a serializable form that merges exactly later.
    pub fn snapshot(&self) -> Result<RecorderSnapshot, RecorderError> {
        Ok(RecorderSnapshot {
            start_unix_ns: self.start_unix_ns,
            counters: self.counters.clone(),
            events_per_second: self.events_per_second.clone(),
            latency_us: summarize(&self.latency_us)?,
            connect_us: summarize(&self.connect_us)?,
            first_event_us: summarize(&self.first_event_us)?,
        })
    }

    /// A recorder holding a snapshot's measurements, to merge result files.
    /// Its id tracker is fresh.
    pub fn from_snapshot(snapshot: &RecorderSnapshot) -> Result<Self, RecorderError> {
        Ok(Self {
            start_unix_ns: snapshot.start_unix_ns,
            ids: IdTracker::new(),
            counters: snapshot.counters.clone(),
            events_per_second: snapshot.events_per_second.clone(),
            latency_us: snapshot.latency_us.decode_compatible()?,
            connect_us: snapshot.connect_us.decode_compatible()?,
            first_event_us: snapshot.first_event_us.decode_compatible()?,
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

/// All of a [`Recorder`], for `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecorderSnapshot {
    /// The run start the per-second series counts from, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// The counters.
    pub counters: Counters,
    /// Events received in each second since the run start.
    pub events_per_second: Vec<u64>,
    /// Event latency, µs.
    pub latency_us: HistogramSummary,
    /// Connection set-up time, µs.
    pub connect_us: HistogramSummary,
    /// Connect start to first tick event, µs.
    pub first_event_us: HistogramSummary,
}

/// A histogram's headline numbers, in µs, plus the histogram itself.
///
/// `encoded` is the histogram in HdrHistogram's V2 + deflate format (what
/// other HdrHistogram tools read), written as lower-case hex: the workspace
/// has no base64 crate, and hex is twice the bytes where base64 is 4/3, a
/// difference of a few KiB for a latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// The histogram: V2 + deflate, lower-case hex.
    pub encoded: String,
}

/// The summary of `histogram`, with the histogram encoded.
pub fn summarize(histogram: &Histogram<u64>) -> Result<HistogramSummary, RecorderError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(histogram, &mut bytes)?;
    Ok(HistogramSummary {
        count: histogram.len(),
        min: histogram.min(),
        p50: histogram.value_at_quantile(0.5),
        p90: histogram.value_at_quantile(0.9),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
        mean: histogram.mean(),
        encoded: to_hex(&bytes),
    })
}

impl HistogramSummary {
    /// The histogram back from `encoded` (V2 or V2 + deflate, either hex case).
    pub fn decode(&self) -> Result<Histogram<u64>, RecorderError> {
        let bytes = from_hex(&self.encoded)?;
        Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
    }

    /// Decoded into a recorder histogram: checked to have the recorder's
    /// precision, so merging it stays exact, and able to grow.
    fn decode_compatible(&self) -> Result<Histogram<u64>, RecorderError> {
        let decoded = self.decode()?;
        if decoded.low() != LOWEST_US || decoded.sigfig() != SIGNIFICANT_FIGURES {
            return Err(RecorderError::Incompatible {
                lowest: decoded.low(),
                figures: decoded.sigfig(),
            });
        }
        let max = decoded.max();
        let too_large = RecorderError::TooLarge { max };
        if decoded.lowest_equivalent(max) > HIGHEST_US {
            return Err(too_large);
        }
        let mut histogram = new_histogram();
        histogram.add(&decoded).map_err(|_| too_large)?;
        Ok(histogram)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

fn from_hex(hex: &str) -> Result<Vec<u8>, RecorderError> {
    let digit = |at: usize, byte: u8| {
        char::from(byte)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(RecorderError::Hex {
                reason: "not a hex digit",
                at,
            })
    };
    hex.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(n, pair)| match *pair {
            [high, low] => Ok(digit(2 * n, high)? << 4 | digit(2 * n + 1, low)?),
            _ => Err(RecorderError::Hex {
                reason: "odd length",
                at: hex.len(),
            }),
        })
        .collect()
}

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

    const SECOND: u64 = 1_000_000_000;

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

    fn recorder() -> Recorder {
        Recorder::with_start_unix_ns(1_700_000_000 * SECOND)
    }

    /// Records `id` received `latency_us` after it was sent, `at_s` seconds into the run.
    fn tick(r: &mut Recorder, id: u64, at_s: u64, latency_us: u64) {
        let recv = r.start_unix_ns() + at_s * SECOND;
        r.record_event(id, recv - latency_us * 1_000, recv, 100);
    }

    #[test]
    fn reconnect_with_resume_replays_into_holes() {
        let mut r = recorder();
        for id in [1, 2, 5] {
            tick(&mut r, id, 0, 50);
        }
        assert_eq!(r.counters().lost, 2);
        r.record_reconnect(true);
        for id in [3, 4, 5, 6] {
            tick(&mut r, id, 1, 50);
        }
        let c = r.counters();
        assert_eq!((c.lost, c.out_of_order, c.duplicates), (0, 2, 1));
        assert_eq!((c.events, c.reconnects), (7, 1));
    }

    #[test]
    fn reconnect_in_order_replay_counts_nothing() {
        let mut r = recorder();
        for id in 1..=3 {
            tick(&mut r, id, 0, 50);
        }
        r.record_reconnect(true);
        assert_eq!(r.ids().last_seen(), Some(3));
        for id in 4..=6 {
            tick(&mut r, id, 0, 50);
        }
        let c = r.counters();
        assert_eq!((c.lost, c.out_of_order, c.duplicates), (0, 0, 0));
    }

    #[test]
    fn reconnect_without_resume_starts_over() {
        let mut r = recorder();
        tick(&mut r, 1, 0, 50);
        r.record_reconnect(false);
        tick(&mut r, 100, 0, 50);
        assert_eq!(r.counters().lost, 0);
    }

    #[test]
    fn gaps_turn_lost_into_announced() {
        let mut r = recorder();
        tick(&mut r, 1, 0, 50);
        tick(&mut r, 5, 0, 50);
        r.record_gap(2, 4);
        let c = r.counters();
        assert_eq!((c.lost, c.gap_events, c.gap_missing), (0, 1, 3));
    }

    #[test]
    fn out_of_range_values_are_clamped_and_counted() {
        let mut r = recorder();
        let now = r.start_unix_ns() + SECOND;
        r.record_event(1, now + 5_000, now, 10); // received before it was sent
        r.record_event(2, now - 2 * HIGHEST_US * 1_000, now, 10);
        r.record_connect(Duration::from_secs(7_200));
        r.record_first_event(Duration::from_nanos(300));
        assert_eq!(r.counters().clamped, 3);
        assert_eq!(r.latency_us().min(), 0);
        let top = r.latency_us().max();
        assert_eq!(
            r.latency_us().lowest_equivalent(top),
            r.latency_us().lowest_equivalent(HIGHEST_US)
        );
        assert_eq!(r.first_event_us().max(), 0);
    }

    #[test]
    fn events_per_second_is_bounded() {
        let mut r = recorder();
        for (id, at_ns) in [
            (1, SECOND / 2),
            (2, SECOND + 1),
            (3, 2 * SECOND - 1),
            (4, 4 * SECOND),
        ] {
            let recv = r.start_unix_ns() + at_ns;
            r.record_event(id, recv, recv, 1);
        }
        let recv = r.start_unix_ns() + MAX_SECONDS as u64 * SECOND;
        r.record_event(5, recv, recv, 1);
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
            r.record_event_with(ids, event_id, sent, recv, 50 + (next() % 100) as usize);
            match next() % 500 {
                0 => r.record_gap_with(ids, id + 1, id + 1 + next() % 3),
                1 => r.record_keepalive(),
                2 => r.record_error(ErrorKind::Http(500 + (next() % 4) as u16)),
                3 => {
                    r.record_connect(Duration::from_micros(next() % 100_000));
                    r.record_first_event(Duration::from_micros(next() % 200_000));
                }
                _ => {}
            }
            if let Some(last) = ids.last_seen() {
                id = id.max(last);
            }
        }
        r.record_bytes(17);
    }

    fn assert_same(a: &Recorder, b: &Recorder) {
        assert_eq!(a.counters(), b.counters());
        assert_eq!(a.events_per_second(), b.events_per_second());
        assert_eq!(a.latency_us(), b.latency_us());
        assert_eq!(a.connect_us(), b.connect_us());
        assert_eq!(a.first_event_us(), b.first_event_us());
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
    fn summary_numbers() {
        let mut h = new_histogram();
        for us in 1..=1_000 {
            h.record(us).expect("in range");
        }
        let s = summarize(&h).expect("serializable");
        assert_eq!(
            (s.count, s.min, s.p50, s.p90, s.max),
            (1_000, 1, 500, 900, 1_000)
        );
        assert!((s.mean - 500.5).abs() < 0.01);
        assert!(s
            .encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s.decode().expect("decodes"), h);
        let upper = HistogramSummary {
            encoded: s.encoded.to_uppercase(),
            ..s.clone()
        };
        assert_eq!(upper.decode().expect("either case"), h);
        let empty = summarize(&new_histogram()).expect("serializable");
        assert_eq!((empty.count, empty.min, empty.max, empty.p99), (0, 0, 0, 0));
    }

    #[test]
    fn plain_v2_decodes_too() {
        let mut h = new_histogram();
        h.record(42).expect("in range");
        let mut bytes = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut bytes)
            .expect("serializable");
        let s = HistogramSummary {
            encoded: to_hex(&bytes),
            ..summarize(&h).expect("ok")
        };
        assert_eq!(s.decode().expect("decodes"), h);
    }

    #[test]
    fn bad_encodings_are_errors() {
        let s = summarize(&new_histogram()).expect("serializable");
        let with = |encoded: &str| HistogramSummary {
            encoded: encoded.into(),
            ..s.clone()
        };
        assert!(matches!(
            with("abc").decode(),
            Err(RecorderError::Hex { at: 3, .. })
        ));
        assert!(matches!(
            with("zz").decode(),
            Err(RecorderError::Hex { at: 0, .. })
        ));
        assert!(matches!(
            with("0011").decode(),
            Err(RecorderError::Deserialize(_))
        ));
        let mut coarse = Histogram::<u64>::new_with_bounds(1, 1_000, 2).expect("valid");
        coarse.record(5).expect("in range");
        let coarse = summarize(&coarse).expect("serializable");
        let snapshot = RecorderSnapshot {
            latency_us: coarse,
            ..recorder().snapshot().expect("ok")
        };
        assert!(matches!(
            Recorder::from_snapshot(&snapshot),
            Err(RecorderError::Incompatible {
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
            Err(RecorderError::TooLarge { .. })
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
