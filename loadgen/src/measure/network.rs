//! What a feed connection measures over an emulated link, beside the
//! feed's [`Recorder`](super::Recorder): its stalls and its recovery from
//! outages. A [`LinkWatch`] per stream judges each event without a lock;
//! it hands what it found to a shared [`LinkRecorder`] only when there is
//! something (a stall ended, an outage recovered from, the stream ended),
//! which on a healthy link is almost never.
//!
//! Events count from the start of the hold, as the outages do.

use super::recovery::{OutageTally, OutageWatch, Recovered};
use super::stalls::{add_summaries, Stall, StallLog, StallWatch};
use crate::result::{HistogramError, KeepAliveFigures, LinkTiming, NetworkResult};

/// One stream's judge of its events.
#[derive(Debug, Clone)]
pub struct LinkWatch {
    timing: LinkTiming,
    stalls: StallWatch,
    outages: OutageWatch,
    /// The TCP connection carrying the stream now, and the stream's number.
    carrier: u64,
    stream: u64,
    /// Judged and late since the last hand-over.
    events: u64,
    late: u64,
    ended_stall: Option<Stall>,
    recovered: Vec<Recovered>,

    /// Armed since the last hand-over: count the stream as watched.
    newly_armed: bool,
}

impl LinkWatch {
    pub fn new(timing: &LinkTiming, stream: u64) -> LinkWatch {
        LinkWatch {
            timing: timing.clone(),
            stalls: StallWatch::new(timing),
            outages: OutageWatch::default(),
            carrier: 0,
            stream,
            events: 0,
            late: 0,
            ended_stall: None,
            recovered: Vec::with_capacity(timing.outages.len()),
            newly_armed: false,
        }
    }

    /// The stream opened on TCP connection `carrier` at `now_ns`.
    pub fn opened(&mut self, carrier: u64, now_ns: u64, into: &mut LinkRecorder) {
        self.carrier = carrier;
        if let Some(i) = self.outages.opened(now_ns) {
            // Its recovery was handed over with the event that made it.
            if let Some(t) = into.outages.get_mut(i) {
                t.closed_after_recovery();
            }
        }
        into.stalls.opened(carrier, self.stream);
    }

    /// One event, sent at `sent_ns` and received at `recv_ns`; the hold
    /// started at `hold_start_ns` (0: not yet, the event is not judged).
    /// True when there is something to hand over ([`LinkWatch::hand_over`]).
    #[inline]
    pub fn event(&mut self, hold_start_ns: u64, sent_ns: u64, recv_ns: u64) -> bool {
        if hold_start_ns == 0 || recv_ns < hold_start_ns {
            return false;
        }
        if !self.outages.is_armed() {
            self.outages.arm(hold_start_ns, &self.timing);
            self.newly_armed = true;
        }
        self.events += 1;
        let (late, ended) = self.stalls.event(sent_ns, recv_ns);
        self.late += u64::from(late);
        if let Some(span) = ended {
            self.ended_stall = Some(Stall {
                carrier: self.carrier,
                stream: self.stream,
                span,
            });
        }
        let recovered = &mut self.recovered;
        self.outages.event(recv_ns, |r| recovered.push(r));
        self.ended_stall.is_some() || !self.recovered.is_empty() || self.newly_armed
    }

    /// Hands what was found over to the shared recorder.
    pub fn hand_over(&mut self, into: &mut LinkRecorder) {
        if std::mem::take(&mut self.newly_armed) {
            for t in &mut into.outages {
                t.streams += 1;
            }
        }
        if let Some(stall) = self.ended_stall.take() {
            into.stalls.record(stall);
        }
        for r in self.recovered.drain(..) {
            if let Some(t) = into.outages.get_mut(r.outage) {
                t.recovered(&r);
            }
        }
        into.stalls.count(self.events, self.late);
        (self.events, self.late) = (0, 0);
    }

    /// The stream ended (it may be opened again): a stall in progress ends
    /// with it.
    pub fn stream_ended(&mut self, into: &mut LinkRecorder) {
        if let Some(span) = self.stalls.flush() {
            self.ended_stall = Some(Stall {
                carrier: self.carrier,
                stream: self.stream,
                span,
            });
        }
        self.hand_over(into);
    }

    /// The connection is done for good at `now_ns`: outages that are over
    /// with no event after them count as not recovered.
    pub fn finish(&mut self, now_ns: u64, into: &mut LinkRecorder) {
        self.stream_ended(into);
        for i in self.outages.unrecovered(now_ns) {
            if let Some(t) = into.outages.get_mut(i) {
                t.not_recovered += 1;
            }
        }
    }
}

/// What the streams of a wire run (or of a shard of it) found.
#[derive(Debug, Default)]
pub struct LinkRecorder {
    pub stalls: StallLog,
    /// One per outage of the link.
    pub outages: Vec<OutageTally>,
}

impl LinkRecorder {
    pub fn new(timing: &LinkTiming) -> LinkRecorder {
        LinkRecorder {
            stalls: StallLog::default(),
            outages: vec![OutageTally::default(); timing.outages.len()],
        }
    }

    /// Adds another shard of the same run.
    pub fn merge(&mut self, other: LinkRecorder) {
        self.stalls.merge(other.stalls);
        for (mine, theirs) in self.outages.iter_mut().zip(&other.outages) {
            mine.merge(theirs);
        }
    }

    /// The wire's `network` figures (the emulator's and the server's are
    /// added by the caller, who has them).
    pub fn result(&self, timing: &LinkTiming) -> NetworkResult {
        NetworkResult {
            timing: timing.clone(),
            stall_after_us: timing.stall_after_us(),
            stalls: self.stalls.summary(),
            outages: self
                .outages
                .iter()
                .enumerate()
                .map(|(i, t)| t.result(timing, i))
                .collect(),
            keepalive: KeepAliveFigures::default(),
            emulator: None,
        }
    }
}

/// Two processes' figures for one wire as one.
pub fn add_network(a: &NetworkResult, b: &NetworkResult) -> Result<NetworkResult, HistogramError> {
    let mut outages = Vec::with_capacity(a.outages.len());
    for (x, y) in a.outages.iter().zip(&b.outages) {
        let mut recovery = x.recovery_us.decode_compatible()?;
        recovery
            .add(y.recovery_us.decode_compatible()?)
            .map_err(|_| HistogramError::TooLarge {
                max: y.recovery_us.max,
            })?;
        outages.push(crate::result::OutageRecovery {
            streams: x.streams + y.streams,
            recovered: x.recovered + y.recovered,
            survived: x.survived + y.survived,
            reopened: x.reopened + y.reopened,
            closed_after_recovery: x.closed_after_recovery + y.closed_after_recovery,
            not_recovered: x.not_recovered + y.not_recovered,
            recovery_us: crate::result::summarize(&recovery)?,
            ..x.clone()
        });
    }
    Ok(NetworkResult {
        stalls: add_summaries(&a.stalls, &b.stalls)?,
        outages,
        ..a.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_stream_through_an_outage_on_one_connection() {
        let timing = LinkTiming::of(&"delay=25ms,outage=2s@1s".parse().unwrap());
        let mut rec = LinkRecorder::new(&timing);
        let mut w = LinkWatch::new(&timing, 3);
        let hold = 10_000 * MS;
        w.opened(9, hold - 500 * MS, &mut rec);
        assert!(!w.event(0, 0, 25 * MS), "before the hold nothing is judged");
        // Armed by the first event of the hold.
        assert!(w.event(hold, hold, hold + 25 * MS));
        w.hand_over(&mut rec);
        assert_eq!(rec.outages[0].streams, 1);
        // Events sent during the outage arrive after it: one stall, and
        // the recovery from the link's return (3 s into the hold).
        let back = hold + 3_000 * MS;
        assert!(w.event(hold, hold + 1_000 * MS, back + 200 * MS));
        w.hand_over(&mut rec);
        assert!(
            !w.event(hold, hold + 1_100 * MS, back + 200 * MS),
            "late again: the same stall, nothing new"
        );
        assert!(
            w.event(hold, back + 300 * MS, back + 325 * MS),
            "on time: the stall ends"
        );
        w.finish(back + 10_000 * MS, &mut rec);
        let r = rec.result(&timing);
        assert_eq!(
            (r.stalls.events, r.stalls.late_events, r.stalls.stalls),
            (4, 2, 1)
        );
        assert_eq!(r.stalls.hit_all, 1, "alone on its connection");
        let o = &r.outages[0];
        assert_eq!((o.recovered, o.survived, o.not_recovered), (1, 1, 0));
        assert_eq!(o.recovery_us.max / 1000, 200);
        let twice = add_network(&r, &r).unwrap();
        assert_eq!(twice.outages[0].recovered, 2);
        assert_eq!(twice.stalls.stalls, 2);
    }

    #[test]
    fn a_stream_that_never_hears_again_is_not_recovered() {
        let timing = LinkTiming::of(&"outage=2s@1s".parse().unwrap());
        let mut rec = LinkRecorder::new(&timing);
        let mut w = LinkWatch::new(&timing, 0);
        w.opened(1, 0, &mut rec);
        w.event(MS, MS, 2 * MS);
        w.hand_over(&mut rec);
        w.finish(10_000 * MS, &mut rec);
        assert_eq!(rec.outages[0].not_recovered, 1);
        assert_eq!(rec.outages[0].streams, 1);
    }
}
