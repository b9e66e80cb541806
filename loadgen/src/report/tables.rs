//! The per-scenario tables: the comparison (one row per wire, ratios
//! against a baseline wire) and the details that explain a figure.

use super::document::Table;
use super::format::{bytes, count, cpu_us, num, us, with_ratio};
use super::latency::latency_of;
use super::text::{lost_shown, NOT_MEASURED};
use crate::result::{ScenarioResult, WireResult};
use crate::wire::Wire;

/// `wanted` when the scenario ran it, else the scenario's first wire.
pub fn baseline(s: &ScenarioResult, wanted: Wire) -> Wire {
    if s.wires.iter().any(|w| w.wire == wanted) {
        wanted
    } else {
        s.wires.first().map_or(wanted, |w| w.wire)
    }
}

/// One row per wire: throughput, latency, set-up, loss and cost, each with
/// its ratio to the baseline wire.
pub fn comparison(s: &ScenarioResult, baseline: Wire) -> Table {
    let mut t = Table::numeric(&[
        "wire",
        "open/asked",
        "events/s",
        "p50",
        "p99",
        "p99.9",
        "connect p50",
        "1st event p50",
        "lost",
        "srv mem/conn",
        "srv CPU/event",
        "loadgen CPU/event",
    ]);
    let Some(base) = s.wires.iter().find(|w| w.wire == baseline) else {
        return t;
    };
    for w in &s.wires {
        let is_base = w.wire == baseline;
        let lat = |f: fn(&WireResult) -> u64| {
            if !w.measured.latency {
                NOT_MEASURED.to_string()
            } else {
                with_ratio(us(f(w)), f(w) as f64, f(base) as f64, is_base)
            }
        };
        let delay =
            |f: fn(&WireResult) -> u64| with_ratio(us(f(w)), f(w) as f64, f(base) as f64, is_base);
        let (mem, cpu) = match (&w.server, &base.server) {
            (Some(ws), Some(bs)) => (
                with_ratio(
                    bytes(ws.rss_per_connection),
                    ws.rss_per_connection,
                    bs.rss_per_connection,
                    is_base,
                ),
                with_ratio(
                    cpu_us(ws.cpu_us_per_event),
                    ws.cpu_us_per_event,
                    bs.cpu_us_per_event,
                    is_base,
                ),
            ),
            (Some(ws), None) => (bytes(ws.rss_per_connection), cpu_us(ws.cpu_us_per_event)),
            (None, _) => ("n/a".into(), "n/a".into()),
        };
        let name = if is_base {
            format!("{} (baseline)", w.wire)
        } else {
            w.wire.to_string()
        };
        t.rows.push(vec![
            name,
            format!("{}/{}", w.opened, w.connections),
            with_ratio(
                count(w.events_per_s),
                w.events_per_s,
                base.events_per_s,
                is_base,
            ),
            lat(|w| latency_of(w).p50),
            lat(|w| latency_of(w).p99),
            lat(|w| latency_of(w).p999),
            delay(|w| w.connect_us.p50),
            delay(|w| w.first_event_us.p50),
            lost_shown(w),
            mem,
            cpu,
            cpu_us(w.loadgen.cpu_us_per_event),
        ]);
    }
    t
}

/// What explains a figure: negotiated protocols, how many HTTP/2
/// connections carried the streams, processes, event accounting.
pub fn details(s: &ScenarioResult) -> Table {
    let mut t = Table::numeric(&[
        "wire",
        "protocols seen",
        "h2 conns",
        "processes",
        "hold",
        "events in hold",
        "final id",
        "dup",
        "gap events/ids",
        "reconnects",
        "errors",
        "max latency",
        "srv RSS held",
        "loadgen RSS",
    ]);
    for w in &s.wires {
        let protocols = w
            .protocols_seen
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let errors = if w.errors.is_empty() {
            "0".to_string()
        } else {
            w.errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.rows.push(vec![
            w.wire.to_string(),
            if protocols.is_empty() {
                "none".into()
            } else {
                protocols
            },
            w.h2_connections.map_or("-".into(), |n| n.to_string()),
            w.processes.to_string(),
            format!("{} s", num(w.hold_s)),
            count(w.events_in_hold as f64),
            w.final_id.to_string(),
            w.duplicates.to_string(),
            format!("{}/{}", w.gap_events, w.gap_missing),
            w.reconnects.to_string(),
            errors,
            if w.measured.latency {
                us(latency_of(w).max)
            } else {
                NOT_MEASURED.into()
            },
            w.server
                .as_ref()
                .map_or("n/a".into(), |s| bytes(s.rss_held as f64)),
            bytes(w.loadgen.rss_bytes as f64),
        ]);
    }
    t
}
