//! Counters for `/stats` (JSON) and `/metrics` (Prometheus text), one
//! module per kind of figure:
//!
//! - [`counters`]: events the server counts (resumes, gaps, refusals, …),
//!   named once in a table;
//! - [`wires`]: streams, events and bytes per wire, tallied per connection;
//! - [`process`]: the process's memory, CPU and descriptors;
//! - [`broker`]: the shared feed's (`--feed-redis`), only when there is one.
//!
//! Every figure is a prometheus-client metric, so `/metrics` encodes the very
//! atomics that `/stats` reads: one source of truth.

pub mod broker;
pub mod counters;
pub mod process;
pub mod wires;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use crate::wire::{Protocol, Transport, Wire};
pub use broker::{BrokerStats, BrokerValues};
pub use counters::{CounterValues, Counters};
pub use process::ProcessStats;
pub use wires::{ConnTally, WireSnapshot};

/// Every figure of the server.
#[derive(Debug)]
pub struct Stats {
    registry: Registry,
    wires: wires::WireTable,
    pub counters: Counters,
    /// The shared feed's figures; `None` for a feed of its own.
    pub broker: Option<BrokerStats>,
    pub feed_last_id: Gauge,
    process_rss: Gauge,
    process_cpu_us: Counter,
    process_open_fds: Gauge,
    started: Instant,
    last_cpu_us: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Self::build(None)
    }

    /// The figures of a server that relays a shared feed: the broker's too.
    pub fn with_broker() -> Self {
        Self::build(Some(BrokerStats::default()))
    }

    fn build(broker: Option<BrokerStats>) -> Self {
        let mut registry = Registry::with_prefix("workbench");
        if let Some(b) = &broker {
            b.register(&mut registry);
        }
        let wires = wires::WireTable::new(&mut registry);
        let counters = Counters::default();
        counters.register(&mut registry);
        let s = Stats {
            wires,
            counters,
            broker,
            feed_last_id: Gauge::default(),
            process_rss: Gauge::default(),
            process_cpu_us: Counter::default(),
            process_open_fds: Gauge::default(),
            started: Instant::now(),
            last_cpu_us: AtomicU64::new(0),
            registry,
        };
        let mut s = s;
        let r = &mut s.registry;
        r.register("feed_last_id", "Newest event id", s.feed_last_id.clone());
        r.register(
            "process_resident_memory_bytes",
            "Resident set size",
            s.process_rss.clone(),
        );
        r.register(
            "process_cpu_microseconds",
            "User + system CPU time",
            s.process_cpu_us.clone(),
        );
        r.register(
            "process_open_fds",
            "Descriptors the process holds",
            s.process_open_fds.clone(),
        );
        s
    }

    /// Streams open on `wire` now.
    pub fn open(&self, wire: Wire) -> i64 {
        self.wires.open(wire)
    }

    /// Streams open on every wire.
    pub fn open_total(&self) -> i64 {
        self.wires.open_total()
    }

    /// Events written on every wire.
    pub fn events_total(&self) -> u64 {
        self.wires.events_total()
    }

    /// Starts counting one stream; the tally counts its events and closes it.
    pub fn open_stream(&self, wire: Wire) -> ConnTally {
        self.wires.open_stream(wire)
    }

    /// Per-wire figures keyed by [`Wire::stats_key`].
    pub fn by_wire(&self) -> Vec<WireSnapshot> {
        self.wires.snapshot()
    }

    /// Refreshes the process gauges and returns the process figures.
    pub fn process(&self) -> ProcessStats {
        let p = ProcessStats::now();
        self.process_rss.set(p.rss_bytes as i64);
        let cpu = p.cpu_us();
        let before = self.last_cpu_us.swap(cpu, Ordering::Relaxed);
        self.process_cpu_us.inc_by(cpu.saturating_sub(before));
        p
    }

    /// Refreshes and returns the descriptor count.
    pub fn open_fds(&self) -> u64 {
        let n = process::open_fds();
        self.process_open_fds.set(n as i64);
        n
    }

    /// The Prometheus text exposition of every figure.
    pub fn prometheus(&self) -> String {
        self.process();
        self.open_fds();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_flushes_on_drop_and_closes_the_stream() {
        let s = Stats::new();
        let w = Wire::new(Transport::Sse, Protocol::H2c);
        {
            let mut t = s.open_stream(w);
            assert_eq!(s.open(w), 1);
            for _ in 0..43 {
                t.sent(10);
            }
            assert_eq!(
                s.events_total(),
                43 - 43 % wires::TALLY_BATCH,
                "whole batches flushed"
            );
        }
        assert_eq!(s.open(w), 0);
        assert_eq!(s.events_total(), 43);
        let text = s.prometheus();
        assert!(text.contains("workbench_events_sent_total{transport=\"sse\",protocol=\"h2c\"} 43"));
        assert!(text.contains("workbench_process_open_fds "));
    }

    #[test]
    fn wire_keys_match_the_load_generator() {
        let keys: Vec<&str> = Wire::EVERY.iter().map(|w| w.stats_key()).collect();
        assert_eq!(keys[..4], ["sse_h1", "sse_h2", "sse_h2c", "ws_h1"]);
    }
}
