//! Recovery from the link's outages, per stream: the time from the link
//! coming back to the stream's next event, and whether the stream got it on
//! the connection it had before (TCP retransmissions carried it through)
//! or on one opened since (a reconnection that resumed).
//!
//! A connection can deliver its backlog after the link comes back and then
//! close: the server gave up on it during the outage (actix closes an
//! HTTP/2 connection whose PING is not answered by the next one), and the
//! close reached the client only with the retransmitted data. Such a
//! stream did not survive: a reconnection before the next outage turns its
//! "same connection" into "re-opened" ([`OutageWatch::opened`]).
//!
//! Outages are known relative to the start of the hold; a stream's watch
//! is armed with their absolute times once the hold has started. Per
//! event the cost is one comparison with the end of the next outage.

use super::timing::Timing;
use crate::result::{LinkTiming, OutageRecovery};

/// One stream's view of the outages.
#[derive(Debug, Clone, Default)]
pub struct OutageWatch {
    /// (start, end) of each outage, Unix ns; empty until armed.
    windows: Vec<(u64, u64)>,
    /// The first outage not yet recovered from.
    next: usize,
    armed: bool,
    /// When the stream's current connection was opened, Unix ns.
    opened_ns: u64,
    /// The last outage recovered from on the connection of before it, while
    /// that connection is still the stream's.
    kept: Option<usize>,
}

/// What an event told about one outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub outage: usize,
    pub after_ns: u64,
    /// The stream's connection was opened after the outage began.
    pub reopened: bool,
}

impl OutageWatch {
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Takes the outages' absolute times, the hold having started at
    /// `hold_start_ns`; the caller counts the stream as watched.
    pub fn arm(&mut self, hold_start_ns: u64, timing: &LinkTiming) {
        let at = |us: u64| hold_start_ns.saturating_add(us.saturating_mul(1_000));
        self.windows = timing
            .outages
            .iter()
            .map(|o| (at(o.start_us), at(o.end_us())))
            .collect();
        self.next = 0;
        self.armed = true;
    }

    /// The stream (re)opened at `now_ns`. When this replaces a connection
    /// that had recovered from an outage and the next outage has not begun,
    /// that connection did not survive it after all: its index.
    pub fn opened(&mut self, now_ns: u64) -> Option<usize> {
        self.opened_ns = now_ns;
        let kept = self.kept.take()?;
        let next_start = self.windows.get(kept + 1).map_or(u64::MAX, |w| w.0);
        (now_ns < next_start).then_some(kept)
    }

    /// An event received at `recv_ns`: every outage it is the first event
    /// after, through `on`.
    #[inline]
    pub fn event(&mut self, recv_ns: u64, mut on: impl FnMut(Recovered)) {
        while let Some(&(start, end)) = self.windows.get(self.next) {
            if recv_ns < end {
                return;
            }
            let reopened = self.opened_ns > start;
            self.kept = (!reopened).then_some(self.next);
            on(Recovered {
                outage: self.next,
                after_ns: recv_ns - end,
                reopened,
            });
            self.next += 1;
        }
    }

    /// The stream ended for good at `now_ns`: outages that are over and
    /// were never followed by an event.
    pub fn unrecovered(&self, now_ns: u64) -> impl Iterator<Item = usize> + '_ {
        self.windows
            .iter()
            .enumerate()
            .skip(self.next)
            .take_while(move |(_, &(_, end))| end <= now_ns)
            .map(|(i, _)| i)
    }
}

/// One outage across the streams of a wire run (or of a shard of it).
#[derive(Debug, Clone, Default)]
pub struct OutageTally {
    pub streams: u64,
    pub survived: u64,
    pub reopened: u64,
    /// Of `reopened`: recovered on the old connection, which then closed.
    pub closed_after_recovery: u64,
    pub not_recovered: u64,
    pub recovery: Timing,
}

impl OutageTally {
    pub fn recovered(&mut self, r: &Recovered) {
        self.recovery.record_us(r.after_ns / 1_000);
        if r.reopened {
            self.reopened += 1;
        } else {
            self.survived += 1;
        }
    }

    /// A stream counted as `survived` saw its connection close and opened
    /// another before the next outage: re-opened, not survived.
    pub fn closed_after_recovery(&mut self) {
        self.survived = self.survived.saturating_sub(1);
        self.reopened += 1;
        self.closed_after_recovery += 1;
    }

    pub fn merge(&mut self, other: &OutageTally) {
        self.streams += other.streams;
        self.survived += other.survived;
        self.reopened += other.reopened;
        self.closed_after_recovery += other.closed_after_recovery;
        self.not_recovered += other.not_recovered;
        self.recovery.merge(&other.recovery);
    }

    /// The result's form, for outage `index` of `timing`.
    pub fn result(&self, timing: &LinkTiming, index: usize) -> OutageRecovery {
        let window = timing.outages.get(index).copied().unwrap_or_default();
        OutageRecovery {
            start_s: window.start_us as f64 / 1e6,
            duration_s: window.duration_us as f64 / 1e6,
            streams: self.streams,
            recovered: self.survived + self.reopened,
            survived: self.survived,
            reopened: self.reopened,
            closed_after_recovery: self.closed_after_recovery,
            not_recovered: self.not_recovered,
            recovery_us: self.recovery.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn timing() -> LinkTiming {
        LinkTiming::of(&"delay=25ms,outage=2s@5s,outage=1s@10s".parse().unwrap())
    }

    #[test]
    fn the_first_event_after_each_outage_is_its_recovery() {
        let mut w = OutageWatch::default();
        w.opened(50 * S);
        w.arm(100 * S, &timing());
        let mut seen = Vec::new();
        w.event(104 * S, |r| seen.push(r));
        assert!(seen.is_empty());
        w.event(107 * S + 300, |r| seen.push(r));
        assert_eq!(
            seen,
            [Recovered {
                outage: 0,
                after_ns: 300,
                reopened: false
            }]
        );
        // Re-opened during the second outage; one event after both.
        w.opened(110 * S + 5);
        assert_eq!(w.unrecovered(112 * S).collect::<Vec<_>>(), [1]);
        w.event(111 * S + 7, |r| seen.push(r));
        assert_eq!(seen[1].outage, 1);
        assert!(seen[1].reopened);
        assert_eq!(w.unrecovered(200 * S).count(), 0);
    }

    #[test]
    fn a_connection_that_closes_after_delivering_its_backlog_did_not_survive() {
        let mut w = OutageWatch::default();
        assert_eq!(w.opened(50 * S), None);
        w.arm(100 * S, &timing());
        // The backlog arrives on the old connection after the first outage…
        w.event(107 * S + 300, |r| assert!(!r.reopened));
        // …which then closes: re-opened before the second outage begins.
        assert_eq!(w.opened(108 * S), Some(0));
        assert_eq!(w.opened(109 * S), None, "counted once");
        // Its new connection (opened before the second outage) carries it
        // through the second.
        w.event(111 * S + 1, |r| assert!(!r.reopened));
        // Re-opened during the next outage: that outage's doing.
        let mut v = OutageWatch::default();
        v.opened(50 * S);
        v.arm(100 * S, &timing());
        v.event(107 * S + 300, |r| assert!(!r.reopened));
        assert_eq!(v.opened(110 * S + 1), None, "the second outage's doing");
        // After the last outage any later re-opening counts.
        v.event(111 * S + 1, |r| assert!(r.reopened));
        let mut u = OutageWatch::default();
        u.opened(50 * S);
        u.arm(100 * S, &timing());
        u.event(107 * S, |_| {});
        u.event(111 * S + 1, |r| assert!(!r.reopened));
        assert_eq!(u.opened(300 * S), Some(1));
        let mut t = OutageTally {
            streams: 1,
            ..OutageTally::default()
        };
        t.recovered(&Recovered {
            outage: 0,
            after_ns: 1,
            reopened: false,
        });
        t.closed_after_recovery();
        let r = t.result(&timing(), 0);
        assert_eq!(
            (r.recovered, r.survived, r.reopened, r.closed_after_recovery),
            (1, 0, 1, 1)
        );
    }

    #[test]
    fn tallies_add_up() {
        let mut a = OutageTally {
            streams: 2,
            ..OutageTally::default()
        };
        a.recovered(&Recovered {
            outage: 0,
            after_ns: 5_000_000,
            reopened: false,
        });
        a.not_recovered += 1;
        let mut b = OutageTally {
            streams: 1,
            ..OutageTally::default()
        };
        b.recovered(&Recovered {
            outage: 0,
            after_ns: 9_000_000,
            reopened: true,
        });
        a.merge(&b);
        let r = a.result(&timing(), 0);
        assert_eq!(
            (r.streams, r.recovered, r.survived, r.reopened),
            (3, 2, 1, 1)
        );
        assert_eq!((r.start_s, r.duration_s), (5.0, 2.0));
        assert_eq!(r.recovery_us.count, 2);
    }
}
