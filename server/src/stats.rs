//! Counters for `/stats` (JSON) and `/metrics` (Prometheus text).
//!
//! The counters are prometheus-client metrics, so `/metrics` encodes the very
//! atomics that `/stats` reads: one source of truth. Hot per-event counts are
//! tallied per connection and flushed in batches (see [`ConnTally`]), so a
//! thousand connections do not all hammer one cache line per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

pub use crate::wire::{Protocol, Transport, Wire};

/// A wire's slot in the per-wire metrics.
fn index(wire: Wire) -> usize {
    Wire::EVERY
        .iter()
        .position(|w| *w == wire)
        .expect("Wire::EVERY lists every wire")
}

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

/// Server-wide counters.
#[derive(Debug)]
pub struct Stats {
    registry: Registry,
    wires: Vec<WireMetrics>,
    pub resumes: Counter,
    pub gaps: Counter,
    pub gap_ids: Counter,
    pub malformed_resumes: Counter,
    pub future_resumes: Counter,
    pub refused: Counter,
    pub lagged: Counter,
    pub slow_gaps: Counter,
    pub slow_disconnects: Counter,
    pub ws_protocol_errors: Counter,
    pub ws_timeouts: Counter,
    pub admin_drops: Counter,
    /// Fraction drops (chaos timer or `/admin/drop?fraction=`).
    pub chaos_drops: Counter,
    /// `/admin/restart`: streams closed and new ones refused for a while.
    pub restarts: Counter,
    /// Requests refused with 503 while "restarting".
    pub restart_refusals: Counter,
    pub echo_replies: Counter,
    /// `POST /echo` for an unknown client or a full queue.
    pub echo_rejected: Counter,
    pub chat_answers: Counter,
    pub feed_last_id: Gauge,
    process_rss: Gauge,
    process_cpu_us: Counter,
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
        let mut registry = Registry::with_prefix("workbench");
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
        let s = Stats {
            registry,
            wires,
            resumes: Counter::default(),
            gaps: Counter::default(),
            gap_ids: Counter::default(),
            malformed_resumes: Counter::default(),
            future_resumes: Counter::default(),
            refused: Counter::default(),
            lagged: Counter::default(),
            slow_gaps: Counter::default(),
            slow_disconnects: Counter::default(),
            ws_protocol_errors: Counter::default(),
            ws_timeouts: Counter::default(),
            admin_drops: Counter::default(),
            chaos_drops: Counter::default(),
            restarts: Counter::default(),
            restart_refusals: Counter::default(),
            echo_replies: Counter::default(),
            echo_rejected: Counter::default(),
            chat_answers: Counter::default(),
            feed_last_id: Gauge::default(),
            process_rss: Gauge::default(),
            process_cpu_us: Counter::default(),
            started: Instant::now(),
            last_cpu_us: AtomicU64::new(0),
        };
        let mut s = s;
        let r = &mut s.registry;
        r.register("resumes", "Streams that asked to resume", s.resumes.clone());
        r.register("gaps", "Gap events sent", s.gaps.clone());
        r.register(
            "gap_ids",
            "Ids announced lost by gap events",
            s.gap_ids.clone(),
        );
        r.register(
            "malformed_resumes",
            "Resume ids that were not numbers",
            s.malformed_resumes.clone(),
        );
        r.register(
            "future_resumes",
            "Resume ids newer than the feed",
            s.future_resumes.clone(),
        );
        r.register(
            "refused",
            "Streams refused with 503 (max connections)",
            s.refused.clone(),
        );
        r.register(
            "lagged",
            "Times a subscriber fell behind the fan-out buffer",
            s.lagged.clone(),
        );
        r.register(
            "slow_gaps",
            "Slow subscribers that fell behind the replay ring and got a gap",
            s.slow_gaps.clone(),
        );
        r.register(
            "slow_disconnects",
            "WebSockets closed because they accepted nothing for the client timeout",
            s.slow_disconnects.clone(),
        );
        r.register(
            "ws_protocol_errors",
            "WebSockets closed for a protocol error",
            s.ws_protocol_errors.clone(),
        );
        r.register(
            "ws_timeouts",
            "WebSockets closed because pongs stopped",
            s.ws_timeouts.clone(),
        );
        r.register("admin_drops", "Drop-all requests", s.admin_drops.clone());
        r.register(
            "chaos_drops",
            "Drops of a fraction of the streams",
            s.chaos_drops.clone(),
        );
        r.register(
            "restarts",
            "Simulated listener restarts",
            s.restarts.clone(),
        );
        r.register(
            "restart_refusals",
            "Requests refused with 503 during a simulated restart",
            s.restart_refusals.clone(),
        );
        r.register("echo_replies", "Echo replies sent", s.echo_replies.clone());
        r.register(
            "echo_rejected",
            "POST /echo for an unknown client or a full queue",
            s.echo_rejected.clone(),
        );
        r.register(
            "chat_answers",
            "Chat answers completed",
            s.chat_answers.clone(),
        );
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
        s
    }

    fn wire(&self, wire: Wire) -> &WireMetrics {
        &self.wires[index(wire)]
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

    /// Refreshes the process gauges and returns the process figures.
    pub fn process(&self) -> ProcessStats {
        let p = ProcessStats::now();
        self.process_rss.set(p.rss_bytes as i64);
        let cpu = p.cpu_us();
        let before = self.last_cpu_us.swap(cpu, Ordering::Relaxed);
        self.process_cpu_us.inc_by(cpu.saturating_sub(before));
        p
    }

    /// The Prometheus text exposition of every counter.
    pub fn prometheus(&self) -> String {
        self.process();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Per-wire figures keyed by [`Wire::stats_key`].
    pub fn by_wire(&self) -> Vec<WireSnapshot> {
        Wire::EVERY
            .iter()
            .map(|&w| {
                let m = self.wire(w);
                WireSnapshot {
                    wire: w.stats_key().to_string(),
                    open: m.open.get(),
                    opened: m.opened.get(),
                    events: m.events.get(),
                    bytes: m.bytes.get(),
                }
            })
            .collect()
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
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
const TALLY_BATCH: u64 = 8;

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

/// The process's own memory and CPU, read from the kernel.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
}

impl ProcessStats {
    /// Reads `/proc/self/statm` and `getrusage`: two cheap calls, so no crate.
    /// Figures that cannot be read (not Linux) are 0.
    pub fn now() -> Self {
        let page = page_size();
        let rss_bytes = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * page)
            .unwrap_or(0);
        let (cpu_user_us, cpu_system_us) = rusage_self();
        ProcessStats {
            rss_bytes,
            cpu_user_us,
            cpu_system_us,
        }
    }

    pub fn cpu_us(&self) -> u64 {
        self.cpu_user_us + self.cpu_system_us
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

fn rusage_self() -> (u64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0, 0);
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
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
                43 - 43 % TALLY_BATCH,
                "whole batches flushed"
            );
        }
        assert_eq!(s.open(w), 0);
        assert_eq!(s.events_total(), 43);
        let text = s.prometheus();
        assert!(text.contains("workbench_events_sent_total{transport=\"sse\",protocol=\"h2c\"} 43"));
    }

    #[test]
    fn process_figures_are_read() {
        let p = ProcessStats::now();
        assert!(p.rss_bytes > 0);
    }

    #[test]
    fn wire_keys_match_the_load_generator() {
        let keys: Vec<&str> = Wire::EVERY.iter().map(|w| w.stats_key()).collect();
        assert_eq!(keys[..4], ["sse_h1", "sse_h2", "sse_h2c", "ws_h1"]);
    }
}
