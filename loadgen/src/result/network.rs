//! A feed scenario over an emulated link (the `netlab` crate): the link's
//! timing as connections judge their events by it, and what each wire
//! measured there: stalls (head-of-line blocking), recovery from outages,
//! what the keep-alive timeouts did, and the emulator's own figures.
//!
//! A *stall* is an event later than the link's one-way delay plus three
//! round trips: later than any retransmission a healthy TCP connection
//! needs. Consecutive late events of one stream are one stall; its duration
//! is the worst event's lateness. For each stall the connection's other
//! streams are checked for a stall at the same time: over HTTP/2 one lost
//! packet holds back every stream of the TCP connection, over HTTP/1.1 and
//! WebSocket a connection carries one stream.

use netlab::{EmulatorReport, LinkSpec, Outage};
use serde::{Deserialize, Serialize};

use super::histogram::{new_histogram, summarize, HistogramSummary};
use super::scenario::Scenario;
use crate::wire::Wire;

/// The round trip a stall is judged by is at least this (µs), so that a
/// link without delay does not call every event a stall.
pub const MIN_RTT_US: u64 = 1_000;

/// What a connection needs to know of the link to judge its events; sent
/// to worker processes with the rest of a wire's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkTiming {
    /// One-way delay: an event on time arrives this long after it was sent.
    pub base_delay_us: u64,
    /// Round-trip time (2 × the delay, at least [`MIN_RTT_US`]).
    pub rtt_us: u64,
    /// The link's outages, counted from the start of the hold.
    pub outages: Vec<OutageWindow>,
}

/// An outage, relative to the start of the hold.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct OutageWindow {
    pub start_us: u64,
    pub duration_us: u64,
}

impl OutageWindow {
    /// When the link comes back, from the start of the hold.
    pub fn end_us(&self) -> u64 {
        self.start_us.saturating_add(self.duration_us)
    }
}

impl LinkTiming {
    pub fn of(spec: &LinkSpec) -> LinkTiming {
        let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        LinkTiming {
            base_delay_us: us(spec.delay),
            rtt_us: us(spec.rtt()).max(MIN_RTT_US),
            outages: spec
                .outages
                .iter()
                .map(|o: &Outage| OutageWindow {
                    start_us: us(o.start),
                    duration_us: us(o.duration),
                })
                .collect(),
        }
    }

    /// Latency beyond which an event is a stall: base delay + 3 × RTT.
    pub fn stall_after_us(&self) -> u64 {
        self.base_delay_us
            .saturating_add(self.rtt_us.saturating_mul(3))
    }
}

/// How one wire fared over the link (a wire result's `network`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetworkResult {
    pub timing: LinkTiming,
    /// [`LinkTiming::stall_after_us`], for readers of the file.
    pub stall_after_us: u64,
    pub stalls: StallSummary,
    /// One per outage of the link, in order.
    pub outages: Vec<OutageRecovery>,
    pub keepalive: KeepAliveFigures,
    /// The emulator's figures for this wire's hold.
    pub emulator: Option<EmulatorReport>,
}

/// Late events and stalls, from the start of the hold to the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StallSummary {
    /// Events received from the start of the hold on (the ones judged).
    pub events: u64,
    /// Of those, later than the stall threshold.
    pub late_events: u64,
    /// `late_events / events`.
    pub stall_fraction: f64,
    /// Stalls: runs of consecutive late events on one stream.
    pub stalls: u64,
    /// Stalls beyond what is kept for the overlap analysis: counted, and
    /// their durations recorded, but not compared with other streams.
    pub unanalysed: u64,
    /// TCP connections that carried the streams during the hold.
    pub connections: u64,
    /// Streams per TCP connection, on average (1 for HTTP/1.1 and WebSocket).
    pub streams_per_connection: f64,
    /// Per analysed stall, the streams of its TCP connection that stalled
    /// at the same time, itself included: summed here, averaged below.
    pub streams_hit_total: u64,
    pub streams_hit_mean: f64,
    /// Per analysed stall, the share of its connection's streams that
    /// stalled at the same time: summed here, averaged below.
    pub share_hit_total: f64,
    pub share_hit_mean: f64,
    /// Stalls that hit every stream of their connection at once (on a
    /// connection of one stream, every stall).
    pub hit_all: u64,
    /// Stalls that hit their own stream only.
    pub hit_one: u64,
    pub hit_all_fraction: f64,
    pub hit_one_fraction: f64,
    /// How long streams stalled: each stall's worst lateness (latency minus
    /// the base delay), µs.
    pub duration_us: HistogramSummary,
}

impl Default for StallSummary {
    /// No event, no stall.
    fn default() -> Self {
        StallSummary {
            events: 0,
            late_events: 0,
            stall_fraction: 0.0,
            stalls: 0,
            unanalysed: 0,
            connections: 0,
            streams_per_connection: 0.0,
            streams_hit_total: 0,
            streams_hit_mean: 0.0,
            share_hit_total: 0.0,
            share_hit_mean: 0.0,
            hit_all: 0,
            hit_one: 0,
            hit_all_fraction: 0.0,
            hit_one_fraction: 0.0,
            duration_us: summarize(&new_histogram()).expect("an empty histogram always encodes"),
        }
    }
}

impl StallSummary {
    /// Sets the fractions and means from the counts and totals.
    pub fn with_ratios(mut self) -> StallSummary {
        let analysed = self.stalls.saturating_sub(self.unanalysed);
        self.stall_fraction = ratio(self.late_events as f64, self.events);
        self.streams_hit_mean = ratio(self.streams_hit_total as f64, analysed);
        self.share_hit_mean = ratio(self.share_hit_total, analysed);
        self.hit_all_fraction = ratio(self.hit_all as f64, analysed);
        self.hit_one_fraction = ratio(self.hit_one as f64, analysed);
        self
    }
}

fn ratio(x: f64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        x / n as f64
    }
}

/// One outage as the streams of a wire lived through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutageRecovery {
    pub start_s: f64,
    pub duration_s: f64,
    /// Streams that were watched through it (open at the start of the hold).
    pub streams: u64,
    /// Streams that received an event after the link came back.
    pub recovered: u64,
    /// Of those, on the connection they had before the outage: TCP
    /// retransmissions carried it through.
    pub survived: u64,
    /// Of those, on a connection opened after the outage began (resumed
    /// with `Last-Event-ID` / `lastEventId`), or on the old connection
    /// that then closed and was opened again before the next outage.
    pub reopened: u64,
    /// Of `reopened`: the old connection delivered what it held after the
    /// link came back, then closed (the server had given up on it during
    /// the outage, e.g. actix's HTTP/2 PING timeout).
    #[serde(default)]
    pub closed_after_recovery: u64,
    /// Streams with no event after the link came back, by the end of the run.
    pub not_recovered: u64,
    /// From the link coming back to the stream's next event, µs.
    pub recovery_us: HistogramSummary,
}

/// What keep-alive timeouts did during the hold, as the server counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeepAliveFigures {
    /// WebSockets the server closed because no pong came within twice its
    /// keep-alive period.
    pub server_ws_timeouts: u64,
    /// Streams the server resumed from an event id (a reconnection).
    pub server_resumes: u64,
    /// HTTP/2 connections the load generator had to open again after one
    /// ended (beyond the pool's size); none for other wires.
    pub h2_reopened: Option<u64>,
}

/// The network scenarios of `loadgen suite`: every wire at 100 connections
/// and 10 events/s over a lossy link (RTT 50 ms; 0.5, 1 and 3 % loss), a
/// mobile link (RTT 150 ms, 1.5 Mbit/s, 1 % loss) and a link with an
/// outage of 2 s, then of 20 s (RTT 50 ms), each held long enough to
/// recover.
pub fn network_suite(duration_s: f64) -> Vec<Scenario> {
    let link = |text: &str| -> LinkSpec {
        text.parse()
            .expect("the suite's link descriptions are valid")
    };
    let scenario = |name: &str, link: LinkSpec, duration_s: f64| Scenario {
        link: Some(link),
        ..Scenario::network(name, duration_s)
    };
    let mut out: Vec<Scenario> = ["0.5%", "1%", "3%"]
        .into_iter()
        .map(|loss| {
            scenario(
                &format!("lossy-{loss}"),
                link(&format!("delay=25ms,loss={loss}")),
                duration_s,
            )
        })
        .collect();
    out.push(scenario(
        "mobile",
        link("delay=75ms,rate=1.5mbit,loss=1%"),
        duration_s,
    ));
    for (outage_s, recover_s) in [(2.0, 10.0), (20.0, 17.0)] {
        let start_s = 3.0;
        let mut spec = link("delay=25ms");
        spec.outages.push(
            format!("{outage_s}s@{start_s}s")
                .parse()
                .expect("a valid outage"),
        );
        out.push(scenario(
            &format!("outage-{outage_s}s"),
            spec,
            duration_s.max(start_s + outage_s + recover_s),
        ));
    }
    out
}

/// The wires a network scenario runs: every one this load generator has.
pub fn network_wires() -> Vec<Wire> {
    Wire::ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_and_threshold() {
        let t = LinkTiming::of(&"delay=25ms,outage=2s@5s".parse().unwrap());
        assert_eq!((t.base_delay_us, t.rtt_us), (25_000, 50_000));
        assert_eq!(t.stall_after_us(), 175_000);
        assert_eq!(t.outages[0].end_us(), 7_000_000);
        let none = LinkTiming::of(&LinkSpec::default());
        assert_eq!(none.stall_after_us(), 3 * MIN_RTT_US);
    }

    #[test]
    fn the_suite_is_valid_and_holds_outages_long_enough() {
        let s = network_suite(10.0);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "lossy-0.5%",
                "lossy-1%",
                "lossy-3%",
                "mobile",
                "outage-2s",
                "outage-20s"
            ]
        );
        for sc in &s {
            sc.validate().unwrap();
            assert_eq!((sc.connections, sc.rate_hz, sc.wires.len()), (100, 10.0, 4));
        }
        assert_eq!(s[5].duration_s, 40.0);
        let mobile = s[3].link.as_ref().unwrap();
        assert_eq!(mobile.rtt().as_millis(), 150);
        assert_eq!(mobile.rate_bps, Some(1_500_000));
    }

    #[test]
    fn ratios_come_from_the_totals() {
        let s = StallSummary {
            events: 1000,
            late_events: 50,
            stalls: 10,
            unanalysed: 2,
            streams_hit_total: 40,
            share_hit_total: 4.0,
            hit_all: 4,
            hit_one: 2,
            ..StallSummary::default()
        }
        .with_ratios();
        assert_eq!(s.stall_fraction, 0.05);
        assert_eq!(s.streams_hit_mean, 5.0);
        assert_eq!(s.share_hit_mean, 0.5);
        assert_eq!((s.hit_all_fraction, s.hit_one_fraction), (0.5, 0.25));
    }
}
