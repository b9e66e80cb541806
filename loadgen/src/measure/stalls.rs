//! Stalls: events later than the link's base delay plus three round trips,
//! grouped per stream, and compared across the streams that share one TCP
//! connection (head-of-line blocking).
//!
//! The per-event cost is one subtraction and one comparison
//! ([`StallWatch::event`]); only stalls are stored, one record per run of
//! late events, so a healthy link costs nothing but the comparison. The
//! comparison across streams happens once, at the end of the run
//! ([`StallLog::summary`]).

use std::collections::{BTreeMap, HashSet};

use super::timing::Timing;
use crate::result::{summarize, HistogramError, LinkTiming, StallSummary};

/// Stalls kept per wire run for the analysis across streams; beyond this
/// they are counted and timed but not compared (a run this bad says
/// enough already).
pub const MAX_KEPT_STALLS: usize = 200_000;

/// A run of late events on one stream: from when its first late event was
/// due to when its last late event arrived, and the worst lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallSpan {
    /// When the first late event was due (sent + base delay), Unix ns.
    pub from_ns: u64,
    /// When the last late event arrived, Unix ns.
    pub until_ns: u64,
    /// The worst lateness (latency minus the base delay), ns.
    pub worst_ns: u64,
}

/// One stall of one stream, with the TCP connection that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub carrier: u64,
    pub stream: u64,
    pub span: StallSpan,
}

/// Turns one stream's events into stalls.
#[derive(Debug, Clone)]
pub struct StallWatch {
    base_ns: u64,
    threshold_ns: u64,
    open: Option<StallSpan>,
}

impl StallWatch {
    pub fn new(timing: &LinkTiming) -> StallWatch {
        StallWatch {
            base_ns: timing.base_delay_us.saturating_mul(1_000),
            threshold_ns: timing.stall_after_us().saturating_mul(1_000),
            open: None,
        }
    }

    /// One event: whether it was late, and the stall it ended, if it was
    /// on time after late ones.
    #[inline]
    pub fn event(&mut self, sent_ns: u64, recv_ns: u64) -> (bool, Option<StallSpan>) {
        let latency = recv_ns.saturating_sub(sent_ns);
        if latency <= self.threshold_ns {
            return (false, self.open.take());
        }
        let lateness = latency - self.base_ns.min(latency);
        match &mut self.open {
            Some(span) => {
                span.until_ns = span.until_ns.max(recv_ns);
                span.worst_ns = span.worst_ns.max(lateness);
            }
            None => {
                self.open = Some(StallSpan {
                    from_ns: sent_ns.saturating_add(self.base_ns),
                    until_ns: recv_ns,
                    worst_ns: lateness,
                })
            }
        }
        (true, None)
    }

    /// The stall in progress, if any (the stream ended while late).
    pub fn flush(&mut self) -> Option<StallSpan> {
        self.open.take()
    }
}

/// The stalls of a wire run (or of a shard of it), and which streams each
/// TCP connection carried.
#[derive(Debug, Default)]
pub struct StallLog {
    kept: Vec<Stall>,
    unanalysed: u64,
    durations: Timing,
    events: u64,
    late_events: u64,
    /// (connection, stream) pairs seen opened.
    carried: HashSet<(u64, u64)>,
}

impl StallLog {
    /// Events judged and how many of them were late.
    pub fn count(&mut self, events: u64, late_events: u64) {
        self.events += events;
        self.late_events += late_events;
    }

    /// Stream `stream` opened on TCP connection `carrier`.
    pub fn opened(&mut self, carrier: u64, stream: u64) {
        self.carried.insert((carrier, stream));
    }

    pub fn record(&mut self, stall: Stall) {
        self.durations.record_us(stall.span.worst_ns / 1_000);
        if self.kept.len() < MAX_KEPT_STALLS {
            self.kept.push(stall);
        } else {
            self.unanalysed += 1;
        }
    }

    /// Adds another log of the same run (another shard).
    pub fn merge(&mut self, other: StallLog) {
        let room = MAX_KEPT_STALLS.saturating_sub(self.kept.len());
        let extra = other.kept.len().saturating_sub(room) as u64;
        self.kept.extend(other.kept.into_iter().take(room));
        self.unanalysed += other.unanalysed + extra;
        self.durations.merge(&other.durations);
        self.events += other.events;
        self.late_events += other.late_events;
        self.carried.extend(other.carried);
    }

    /// Every stall compared with the stalls of the other streams of its
    /// connection: how many of them stalled at the same time (their spans
    /// overlap), out of how many the connection carried.
    pub fn summary(&self) -> StallSummary {
        let mut streams_on: BTreeMap<u64, u64> = BTreeMap::new();
        for (carrier, _) in &self.carried {
            *streams_on.entry(*carrier).or_default() += 1;
        }
        let mut by_carrier: BTreeMap<u64, Vec<&Stall>> = BTreeMap::new();
        for s in &self.kept {
            by_carrier.entry(s.carrier).or_default().push(s);
        }
        let mut summary = StallSummary {
            events: self.events,
            late_events: self.late_events,
            stalls: self.kept.len() as u64 + self.unanalysed,
            unanalysed: self.unanalysed,
            connections: streams_on.len() as u64,
            streams_per_connection: if streams_on.is_empty() {
                0.0
            } else {
                self.carried.len() as f64 / streams_on.len() as f64
            },
            duration_us: self.durations.summary(),
            ..StallSummary::default()
        };
        let mut together: Vec<u64> = Vec::new();
        for (carrier, mut stalls) in by_carrier {
            stalls.sort_by_key(|s| (s.span.from_ns, s.stream));
            let longest = stalls
                .iter()
                .map(|s| s.span.until_ns.saturating_sub(s.span.from_ns))
                .max()
                .unwrap_or(0);
            // A stall that ended before `s.from` began at most `longest`
            // earlier: only those after `s.from - longest` can overlap.
            for s in &stalls {
                let earliest = s.span.from_ns.saturating_sub(longest);
                let first = stalls.partition_point(|o| o.span.from_ns < earliest);
                together.clear();
                together.extend(
                    stalls[first..]
                        .iter()
                        .take_while(|o| o.span.from_ns <= s.span.until_ns)
                        .filter(|o| o.span.until_ns >= s.span.from_ns)
                        .map(|o| o.stream),
                );
                together.sort_unstable();
                together.dedup();
                let hit = together.len().max(1) as u64;
                let on = streams_on.get(&carrier).copied().unwrap_or(1).max(hit);
                summary.streams_hit_total += hit;
                summary.share_hit_total += hit as f64 / on as f64;
                summary.hit_all += u64::from(hit == on);
                summary.hit_one += u64::from(hit == 1);
            }
        }
        summary.with_ratios()
    }
}

/// Two summaries of disjoint connections (two processes' shares of a wire)
/// as one: counts and totals added, duration histograms merged.
pub fn add_summaries(a: &StallSummary, b: &StallSummary) -> Result<StallSummary, HistogramError> {
    let mut durations = a.duration_us.decode_compatible()?;
    durations
        .add(b.duration_us.decode_compatible()?)
        .map_err(|_| HistogramError::TooLarge {
            max: b.duration_us.max,
        })?;
    let streams = a.streams_per_connection * a.connections as f64
        + b.streams_per_connection * b.connections as f64;
    let connections = a.connections + b.connections;
    Ok(StallSummary {
        events: a.events + b.events,
        late_events: a.late_events + b.late_events,
        stalls: a.stalls + b.stalls,
        unanalysed: a.unanalysed + b.unanalysed,
        connections,
        streams_per_connection: if connections == 0 {
            0.0
        } else {
            streams / connections as f64
        },
        streams_hit_total: a.streams_hit_total + b.streams_hit_total,
        share_hit_total: a.share_hit_total + b.share_hit_total,
        hit_all: a.hit_all + b.hit_all,
        hit_one: a.hit_one + b.hit_one,
        duration_us: summarize(&durations)?,
        ..StallSummary::default()
    }
    .with_ratios())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn timing() -> LinkTiming {
        // Base 25 ms, RTT 50 ms: a stall is later than 175 ms.
        LinkTiming::of(&"delay=25ms".parse().unwrap())
    }

    #[test]
    fn consecutive_late_events_are_one_stall() {
        let mut w = StallWatch::new(&timing());
        assert_eq!(w.event(0, 30 * MS), (false, None));
        assert_eq!(w.event(100 * MS, 400 * MS), (true, None));
        assert_eq!(w.event(200 * MS, 400 * MS), (true, None));
        let (late, ended) = w.event(300 * MS, 330 * MS);
        assert!(!late);
        assert_eq!(
            ended,
            Some(StallSpan {
                from_ns: 125 * MS,
                until_ns: 400 * MS,
                worst_ns: 275 * MS,
            })
        );
        assert_eq!(w.flush(), None);
        w.event(400 * MS, 1_000 * MS);
        assert_eq!(w.flush().map(|s| s.worst_ns), Some(575 * MS));
    }

    fn stall(carrier: u64, stream: u64, from_ms: u64, until_ms: u64) -> Stall {
        Stall {
            carrier,
            stream,
            span: StallSpan {
                from_ns: from_ms * MS,
                until_ns: until_ms * MS,
                worst_ns: (until_ms - from_ms) * MS,
            },
        }
    }

    #[test]
    fn a_stall_shared_by_every_stream_of_a_connection_is_told_from_a_lone_one() {
        let mut log = StallLog::default();
        // Connection 1 carries streams 0..4, all stalled together once;
        // connection 2 carries streams 4..8, one of them stalled alone.
        for s in 0..8 {
            log.opened(if s < 4 { 1 } else { 2 }, s);
        }
        for s in 0..4 {
            log.record(stall(1, s, 100 + s, 400));
        }
        log.record(stall(2, 5, 100, 400));
        log.count(1_000, 20);
        let sum = log.summary();
        assert_eq!((sum.stalls, sum.connections), (5, 2));
        assert_eq!(sum.streams_per_connection, 4.0);
        assert_eq!((sum.hit_all, sum.hit_one), (4, 1));
        assert_eq!(sum.streams_hit_total, 4 * 4 + 1);
        assert!((sum.share_hit_mean - (4.0 + 0.25) / 5.0).abs() < 1e-9);
        assert_eq!(sum.stall_fraction, 0.02);
        assert_eq!(sum.duration_us.count, 5);
    }

    #[test]
    fn stalls_at_other_times_do_not_count_as_together() {
        let mut log = StallLog::default();
        for s in 0..2 {
            log.opened(7, s);
        }
        log.record(stall(7, 0, 100, 200));
        // A long stall first, on stream 1: overlaps the one at 5 s only.
        log.record(stall(7, 1, 0, 50));
        log.record(stall(7, 1, 4_000, 6_000));
        log.record(stall(7, 0, 5_000, 5_500));
        let sum = log.summary();
        assert_eq!((sum.hit_all, sum.hit_one), (2, 2), "{sum:?}");
    }

    #[test]
    fn shards_and_processes_add_up() {
        let (mut a, mut b) = (StallLog::default(), StallLog::default());
        a.opened(1, 0);
        b.opened(2, 1);
        a.record(stall(1, 0, 0, 300));
        b.record(stall(2, 1, 0, 300));
        a.count(10, 1);
        b.count(10, 1);
        let (sa, sb) = (a.summary(), b.summary());
        a.merge(b);
        let merged = a.summary();
        let added = add_summaries(&sa, &sb).unwrap();
        // The encodings may differ in the histograms' inner sizes; their
        // contents may not.
        assert_eq!(
            merged.duration_us.decode().unwrap(),
            added.duration_us.decode().unwrap()
        );
        let without = |s: &StallSummary| StallSummary {
            duration_us: StallSummary::default().duration_us,
            ..s.clone()
        };
        assert_eq!(without(&merged), without(&added));
        assert_eq!((added.events, added.stalls, added.connections), (20, 2, 2));
    }
}
