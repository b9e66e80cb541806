//! The terminal summary: one row per wire, plain text, fixed columns.

use std::fmt::Write as _;

use crate::result::{RunResult, WireResult};

/// Microseconds as a short human figure: `850µs`, `12.3ms`, `1.20s`.
pub fn us(v: u64) -> String {
    match v {
        0..=999 => format!("{v}µs"),
        1_000..=999_999 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

/// Bytes as KiB/MiB.
pub fn bytes(v: f64) -> String {
    if v.abs() >= 1024.0 * 1024.0 {
        format!("{:.1}MiB", v / 1024.0 / 1024.0)
    } else if v.abs() >= 1024.0 {
        format!("{:.1}KiB", v / 1024.0)
    } else {
        format!("{v:.0}B")
    }
}

const HEADER: [&str; 14] = [
    "wire",
    "conns",
    "events/s",
    "p50",
    "p99",
    "p99.9",
    "max",
    "connect p50",
    "1st event p50",
    "lost",
    "dup",
    "reconn",
    "srv mem/conn",
    "µs/event srv|lg",
];

fn row(w: &WireResult) -> [String; 14] {
    let errors: u64 = w.errors.values().sum();
    // The hold's latency: the ramp's connection storm is not steady state.
    let lat = w.latency_hold_us.as_ref().unwrap_or(&w.latency_us);
    let (mem, srv_cpu) = match &w.server {
        Some(s) => (
            bytes(s.rss_per_connection),
            format!("{:.2}", s.cpu_us_per_event),
        ),
        None => ("?".into(), "?".into()),
    };
    [
        w.wire.to_string(),
        format!("{}/{}", w.opened, w.connections),
        format!("{:.0}", w.events_per_s),
        us(lat.p50),
        us(lat.p99),
        us(lat.p999),
        us(lat.max),
        us(w.connect_us.p50),
        us(w.first_event_us.p50),
        w.lost.to_string(),
        w.duplicates.to_string(),
        if errors > 0 {
            format!("{} ({errors} err)", w.reconnects)
        } else {
            w.reconnects.to_string()
        },
        mem,
        format!("{srv_cpu}|{:.2}", w.loadgen.cpu_us_per_event),
    ]
}

/// One table per scenario, then the problems, if any.
pub fn summary(result: &RunResult) -> String {
    let mut out = String::new();
    // Scenarios beyond the feed (limit, chat, echo, faults) print their own tables.
    for s in result.scenarios.iter().filter(|s| !s.wires.is_empty()) {
        let _ = writeln!(
            out,
            "\n{}: {} connections, {} Hz, {} B payload, held {} s (server: {}; latency during the hold = receive time - scheduled send time, one host clock)",
            s.scenario.name,
            s.scenario.connections,
            s.server.rate_hz,
            s.server.payload_bytes,
            s.scenario.duration_s,
            s.server.mode,
        );
        let rows: Vec<[String; 14]> = s.wires.iter().map(row).collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for r in &rows {
            for (i, cell) in r.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                if i == 0 {
                    l.push_str(c);
                    l.push_str(&" ".repeat(pad));
                } else {
                    l.push_str("  ");
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(HEADER.to_vec()));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    if !result.problems.is_empty() {
        let _ = writeln!(out, "\nproblems ({}):", result.problems.len());
        for p in &result.problems {
            let _ = writeln!(out, "  - {p}");
        }
        for s in &result.scenarios {
            for w in &s.wires {
                for msg in w.first_errors.values() {
                    let _ = writeln!(out, "  - first error: {msg}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(us(850), "850µs");
        assert_eq!(us(12_345), "12.3ms");
        assert_eq!(us(1_200_000), "1.20s");
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(2048.0), "2.0KiB");
    }
}
