//! The plain-text tables the terminal prints after a run (one row per wire,
//! fixed columns), also shown in the reports for the scenarios beyond the
//! feed, so the two never disagree.

use std::fmt::Write as _;

use super::format::{bytes, us};
use crate::result::{RunResult, WireResult};

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

/// What a figure shows when the server's events do not carry what it needs.
pub const NOT_MEASURED: &str = "n/m";

/// `lost`, or "n/m" when the events carried no ids.
pub fn lost_shown(w: &WireResult) -> String {
    if w.measured.loss {
        w.lost.to_string()
    } else {
        NOT_MEASURED.into()
    }
}

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
    let latency = |v: u64| {
        if w.measured.latency {
            us(v)
        } else {
            NOT_MEASURED.into()
        }
    };
    [
        w.wire.to_string(),
        format!("{}/{}", w.opened, w.connections),
        format!("{:.0}", w.events_per_s),
        latency(lat.p50),
        latency(lat.p99),
        latency(lat.p999),
        latency(lat.max),
        us(w.connect_us.p50),
        us(w.first_event_us.p50),
        lost_shown(w),
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
pub fn feed_summary(result: &RunResult) -> String {
    let mut out = String::new();
    // Scenarios beyond the feed (limit, chat, echo, faults) print their own tables.
    for s in result.scenarios.iter().filter(|s| !s.wires.is_empty()) {
        let _ = writeln!(
            out,
            "\n{}{}: {} connections, {} Hz, {} B payload, held {} s (server: {}; latency during the hold = receive time - scheduled send time, one host clock; n/m: not measured)",
            s.scenario.name,
            s.stack.map(|k| format!(" [{k}]")).unwrap_or_default(),
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

/// A plain-text table of the chat, echo and faults sections, for the terminal.
pub fn extras_summary(result: &RunResult) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = String::new();
    for r in &result.scenarios {
        if let Some(f) = r.faults() {
            let _ = writeln!(
                out,
                "faults (replay {} events at {} ev/s)",
                f.spec.replay, f.spec.rate_hz
            );
            let _ = writeln!(
                out,
                "  wire     phase   reconnect p50/p99 ms   lost  dup  gap ids  true gap"
            );
            for w in &f.wires {
                let _ = writeln!(
                    out,
                    "  {:<8} {:<7} {:>9.1} / {:<9.1} {:>6} {:>4} {:>8} {:>9}",
                    w.wire.name(),
                    w.phase,
                    ms(w.reconnect_us.p50),
                    ms(w.reconnect_us.p99),
                    w.lost,
                    w.duplicates,
                    w.gap_ids,
                    w.true_gap
                );
            }
        }
        if let Some(e) = r.echo() {
            let _ = writeln!(out, "echo (closed loop, {} s per level)", e.spec.duration_s);
            let _ = writeln!(
                out,
                "  wire     clients   rtt p50/p99 ms        round trips/s"
            );
            for l in &e.levels {
                let _ = writeln!(
                    out,
                    "  {:<8} {:>7} {:>9.3} / {:<9.3} {:>12.0}",
                    l.wire.name(),
                    l.clients,
                    ms(l.rtt_us.p50),
                    ms(l.rtt_us.p99),
                    l.round_trips_per_s
                );
            }
        }
        if let Some(c) = r.chat() {
            let _ = writeln!(
                out,
                "chat ({} users x {} questions, {} tokens at {}/s)",
                c.spec.users, c.spec.questions, c.spec.tokens, c.spec.token_rate
            );
            let _ = writeln!(
                out,
                "  wire     setup p50 ms  ttft p50/p99 ms     inter-token p99 ms  total p50 ms"
            );
            for w in &c.wires {
                let _ = writeln!(
                    out,
                    "  {:<8} {:>12.2} {:>7.2} / {:<9.2} {:>17.2} {:>13.1}",
                    w.wire.name(),
                    ms(w.setup_us.p50),
                    ms(w.ttft_us.p50),
                    ms(w.ttft_us.p99),
                    ms(w.inter_token_us.p99),
                    ms(w.total_us.p50)
                );
            }
        }
    }
    out
}

/// A plain-text table of the limit sections, for the terminal.
pub fn limit_summary(result: &RunResult) -> String {
    let mut out = String::new();
    for l in result.scenarios.iter().filter_map(|r| r.limit()) {
        let _ = writeln!(
            out,
            "limit (browser model: {} connections per host on HTTP/1.1, {} streams per h2 connection; server announced {})",
            l.spec.h1_per_host,
            l.h2_streams_in_force,
            l.h2_announced_max_streams
                .map_or("no SETTINGS_MAX_CONCURRENT_STREAMS".into(), |v| v.to_string())
        );
        let _ = writeln!(
            out,
            "  case                      asked  open  pending  conns  first event p50/max ms  GET ms (stalled: after release)  ws open"
        );
        for c in &l.cases {
            let get = match (c.get.stalled, c.get.latency_ms, c.get.after_release_ms) {
                (false, Some(ms), _) => format!("{ms:.1}"),
                (true, _, Some(after)) => format!(
                    ">{} (stalled; {after:.1} after {} closed)",
                    c.get.cap_ms, c.get.released
                ),
                (true, _, None) => format!(">{} (stalled)", c.get.cap_ms),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<25} {:>5} {:>5} {:>8} {:>6} {:>11.1} / {:<9.1} {:<32} {:>3}/{}",
                c.label,
                c.streams_asked,
                c.streams_opened,
                c.streams_pending,
                c.connections,
                c.first_event_us.p50 as f64 / 1000.0,
                c.first_event_us.max as f64 / 1000.0,
                get,
                c.ws_opened,
                c.ws_asked
            );
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
