//! Per-wire figures: streams open and opened, events and bytes sent, for
//! each transport over each protocol.
//!
//! Hot per-event counts are tallied per connection and flushed in batches
//! (see [`ConnTally`]), so a thousand connections do not all hammer one cache
//! line per event.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::wire::Wire;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WireLabels {
    transport: String,
    protocol: String,
}

/// The metrics of one wire, resolved once so the hot path never looks up a label.
#[derive(Debug, Clone, Default)]
struct WireMetrics {
    open: Gauge,
    opened: Counter,
    events: Counter,
    bytes: Counter,
}

/// Every wire's metrics, in [`Wire::EVERY`] order.
#[derive(Debug)]
pub struct WireTable {
    wires: Vec<WireMetrics>,
}

impl WireTable {
    /// Makes one labelled series per wire and registers the four families.
    pub fn new(registry: &mut Registry) -> Self {
        let open = Family::<WireLabels, Gauge>::default();
        let opened = Family::<WireLabels, Counter>::default();
        let events = Family::<WireLabels, Counter>::default();
        let bytes = Family::<WireLabels, Counter>::default();
        let wires = Wire::EVERY
            .iter()
            .map(|w| {
                let l = WireLabels {
                    transport: w.transport().as_str().into(),
                    protocol: w.protocol().as_str().into(),
                };
                WireMetrics {
                    open: open.get_or_create_owned(&l),
                    opened: opened.get_or_create_owned(&l),
                    events: events.get_or_create_owned(&l),
                    bytes: bytes.get_or_create_owned(&l),
                }
            })
            .collect();
        registry.register("connections_open", "Streams open now", open);
        registry.register("connections", "Streams opened", opened);
        registry.register("events_sent", "Events written to streams", events);
        registry.register("bytes_sent", "Event bytes written to streams", bytes);
        WireTable { wires }
    }

    fn wire(&self, wire: Wire) -> &WireMetrics {
        let i = Wire::EVERY
            .iter()
            .position(|w| *w == wire)
            .expect("Wire::EVERY lists every wire");
        &self.wires[i]
    }

    /// Streams open on `wire` now.
    pub fn open(&self, wire: Wire) -> i64 {
        self.wire(wire).open.get()
    }

    /// Streams open on every wire.
    pub fn open_total(&self) -> i64 {
        self.wires.iter().map(|w| w.open.get()).sum()
    }

    /// Events written on every wire.
    pub fn events_total(&self) -> u64 {
        self.wires.iter().map(|w| w.events.get()).sum()
    }

    /// Starts counting one stream; the tally counts its events and closes it.
    pub fn open_stream(&self, wire: Wire) -> ConnTally {
        let m = self.wire(wire).clone();
        m.open.inc();
        m.opened.inc();
        ConnTally {
            metrics: m,
            events: 0,
            bytes: 0,
        }
    }

    /// Per-wire figures keyed by [`Wire::stats_key`].
    pub fn snapshot(&self) -> Vec<WireSnapshot> {
        Wire::EVERY
            .iter()
            .zip(&self.wires)
            .map(|(w, m)| WireSnapshot {
                wire: w.stats_key().to_string(),
                open: m.open.get(),
                opened: m.opened.get(),
                events: m.events.get(),
                bytes: m.bytes.get(),
            })
            .collect()
    }
}

/// One wire's figures in `/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct WireSnapshot {
    pub wire: String,
    pub open: i64,
    pub opened: u64,
    pub events: u64,
    pub bytes: u64,
}

/// Counts one stream's events locally and adds them to the shared counters in
/// batches of [`TALLY_BATCH`], at every keep-alive tick and when the stream
/// ends; dropping it closes the stream in the stats. So `/stats` may trail a
/// live stream by a few events, and is exact once streams close.
#[derive(Debug)]
pub struct ConnTally {
    metrics: WireMetrics,
    events: u64,
    bytes: u64,
}

/// How many events a tally holds before it adds them to the shared counters.
pub const TALLY_BATCH: u64 = 8;

impl ConnTally {
    pub fn sent(&mut self, bytes: usize) {
        self.events += 1;
        self.bytes += bytes as u64;
        if self.events >= TALLY_BATCH {
            self.flush();
        }
    }

    /// Adds the held counts to the shared counters now.
    pub fn flush(&mut self) {
        if self.events > 0 {
            self.metrics.events.inc_by(self.events);
            self.metrics.bytes.inc_by(self.bytes);
            self.events = 0;
            self.bytes = 0;
        }
    }
}

impl Drop for ConnTally {
    fn drop(&mut self) {
        self.flush();
        self.metrics.open.dec();
    }
}
