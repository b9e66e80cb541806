//! Plain-language findings, generated from the numbers and never written
//! by hand: which wire was fastest at p99, which was cheapest in memory and
//! CPU, whether each delivered the whole feed, which lost events.
//!
//! A single short run on a shared machine varies by a few percent, so a
//! difference under [`NOISE`] is reported as a tie, not a win.

use super::format::{bytes, count, cpu_us, ratio, us};
use crate::result::{ScenarioResult, WireResult};

/// Relative differences below this are not called a win.
pub const NOISE: f64 = 0.05;

/// The findings for one feed scenario, one sentence each.
pub fn findings(s: &ScenarioResult) -> Vec<String> {
    let wires = &s.wires;
    let mut out = Vec::new();
    if wires.is_empty() {
        return out;
    }
    out.push(delivery(s));
    if wires.len() > 1 {
        let timed: Vec<(&WireResult, f64)> = wires
            .iter()
            .filter(|w| w.measured.latency)
            .map(|w| (w, super::latency::latency_of(w).p99 as f64))
            .collect();
        if timed.len() > 1 {
            out.push(lowest("p99 latency", "fastest at p99", timed, |v| {
                us(v as u64)
            }));
        }
        let mem: Vec<(&WireResult, f64)> = wires
            .iter()
            .filter_map(|w| Some((w, w.server.as_ref()?.rss_per_connection)))
            .collect();
        if mem.len() > 1 {
            out.push(lowest(
                "server memory per connection",
                "cheapest in server memory",
                mem,
                bytes,
            ));
        }
        let cpu: Vec<(&WireResult, f64)> = wires
            .iter()
            .filter_map(|w| Some((w, w.server.as_ref()?.cpu_us_per_event)))
            .collect();
        if cpu.len() > 1 {
            out.push(lowest(
                "server CPU per delivered event",
                "cheapest in server CPU",
                cpu,
                cpu_us,
            ));
        }
        out.push(lowest(
            "connect time (p50)",
            "quickest to connect",
            wires.iter().map(|w| (w, w.connect_us.p50 as f64)),
            |v| us(v as u64),
        ));
    } else {
        out.push(format!(
            "Only {} ran: there is nothing to compare it with.",
            wires[0].wire
        ));
    }
    out.extend(unmeasured(s));
    if wires.iter().any(|w| w.server.is_none()) {
        out.push(if s.server.mode == "any-server" {
            "Server memory and CPU: not measured (give the server's process id with --server-pid)."
                .into()
        } else {
            "Some wires have no server memory or CPU figures (the server's /stats was not read)."
                .into()
        });
    } else if s.server.mode == "in-process" {
        out.push(
            "Server and load generator shared one process: the memory and CPU figures are of both."
                .into(),
        );
    }
    out.push(losses(wires));
    for w in wires.iter().filter(|w| w.opened < w.connections) {
        out.push(format!(
            "{} opened only {} of the {} connections asked for: its figures are for fewer streams.",
            w.wire, w.opened, w.connections
        ));
    }
    out
}

/// What any server's events did not carry, and what arrived irregularly:
/// latency or loss not measured, stamps that could not be read, events
/// before their stamp, stalls.
fn unmeasured(s: &ScenarioResult) -> Vec<String> {
    let mut out = Vec::new();
    for w in &s.wires {
        let c = &w.recorder.counters;
        if !w.measured.latency {
            out.push(format!(
                "{}: latency not measured (its events carry no usable send time; give --stamp-field): arrival rate {} events/s, inter-arrival gap p99 {}.",
                w.wire,
                count(w.events_per_s),
                w.recorder
                    .arrival_gap_us
                    .as_ref()
                    .map_or("n/a".into(), |g| us(g.p99))
            ));
        } else if c.unstamped > 0 && s.scenario.any_server.is_some() {
            out.push(format!(
                "{}: {} of {} events had no usable stamp (absent or not a time): no latency for them.",
                w.wire,
                count(c.unstamped as f64),
                count(c.events as f64)
            ));
        }
        if !w.measured.loss {
            out.push(format!(
                "{}: loss not measured (its events carry no ids; give --id-field): `lost` means nothing here.",
                w.wire
            ));
        }
        if c.negative_latency > 0 {
            out.push(format!(
                "{}: CLOCKS DISAGREE: {} events arrived before their send time, up to {} early; they have no latency (not clamped).",
                w.wire,
                count(c.negative_latency as f64),
                us(c.negative_latency_max_us)
            ));
        }
        if c.stalls > 0 {
            out.push(format!(
                "{}: {} stalls (a connection waited longer than the stall threshold between two events).",
                w.wire,
                count(c.stalls as f64)
            ));
        }
    }
    out
}

/// Did every wire deliver what the feed sent to every connection?
fn delivery(s: &ScenarioResult) -> String {
    if s.server.rate_hz <= 0.0 {
        let got: Vec<String> = s
            .wires
            .iter()
            .map(|w| format!("{} {} events/s", w.wire, count(w.events_per_s)))
            .collect();
        return format!(
            "The server's feed rate is not known to the load generator (not the feed server): delivered {}.",
            got.join(", ")
        );
    }
    let expected = |w: &WireResult| s.server.rate_hz * w.connections as f64;
    let short: Vec<String> = s
        .wires
        .iter()
        .filter(|w| expected(w) > 0.0 && w.events_per_s < expected(w) * (1.0 - NOISE))
        .map(|w| {
            format!(
                "{} {} events/s ({:.0} % of {})",
                w.wire,
                count(w.events_per_s),
                100.0 * w.events_per_s / expected(w),
                count(expected(w))
            )
        })
        .collect();
    if short.is_empty() {
        format!(
            "Every wire kept up with the feed ({} events/s per wire): throughput does not \
             separate them at this load.",
            count(s.wires.iter().map(expected).fold(0.0, f64::max))
        )
    } else {
        format!("Fell behind the feed: {}.", short.join("; "))
    }
}

/// `"<Title>: <best>, <what> v; then <other> v (ratio), ..."`. Wires within
/// [`NOISE`] of the best share the title; when all do, there is no winner.
fn lowest<'a>(
    what: &str,
    title: &str,
    values: impl IntoIterator<Item = (&'a WireResult, f64)>,
    show: impl Fn(f64) -> String,
) -> String {
    let mut values: Vec<(&WireResult, f64)> = values.into_iter().collect();
    // Stable sort: equal values keep the result's wire order.
    values.sort_by(|a, b| a.1.total_cmp(&b.1));
    let Some(&(_, best_v)) = values.first() else {
        return format!("No {what} figures.");
    };
    let close = |v: f64| v == best_v || (best_v > 0.0 && v <= best_v * (1.0 + NOISE));
    let tied = values.iter().take_while(|(_, v)| close(*v)).count();
    let listed = |vs: &[(&WireResult, f64)], with_ratio: bool| {
        vs.iter()
            .map(|(w, v)| {
                if with_ratio {
                    format!("{} {} ({})", w.wire, show(*v), ratio(*v, best_v))
                } else {
                    format!("{} {}", w.wire, show(*v))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if tied == values.len() {
        return format!(
            "{}: within 5 % on every wire ({}): no clear winner.",
            capitalize(what),
            listed(&values, false)
        );
    }
    let (best, rest) = values.split_at(tied);
    let lead = if tied == 1 {
        format!("{}, {what} {}", best[0].0.wire, show(best_v))
    } else {
        let names: Vec<&str> = best.iter().map(|(w, _)| w.wire.name()).collect();
        format!(
            "{} tie (within 5 %), {what} {}",
            names.join(" and "),
            listed(best, false)
        )
    };
    format!(
        "{}: {lead}; then {}.",
        capitalize(title),
        listed(rest, true)
    )
}

/// Which wires lost events, and which announced gaps instead.
fn losses(wires: &[WireResult]) -> String {
    let lost: Vec<String> = wires
        .iter()
        .filter(|w| w.measured.loss && w.lost > 0)
        .map(|w| {
            let received = w.recorder.counters.events;
            let share = 100.0 * w.lost as f64 / (received + w.lost).max(1) as f64;
            format!(
                "{} lost {} events ({share:.3} %)",
                w.wire,
                count(w.lost as f64)
            )
        })
        .collect();
    let gaps: Vec<String> = wires
        .iter()
        .filter(|w| w.gap_missing > 0)
        .map(|w| format!("{} {}", w.wire, count(w.gap_missing as f64)))
        .collect();
    let unchecked: Vec<&str> = wires
        .iter()
        .filter(|w| !w.measured.loss)
        .map(|w| w.wire.name())
        .collect();
    let mut s = if unchecked.len() == wires.len() {
        "Loss: not measured (no wire's events carry ids).".to_string()
    } else if lost.is_empty() && unchecked.is_empty() {
        "No wire lost an event: every id up to the last one arrived.".to_string()
    } else if lost.is_empty() {
        format!(
            "No wire lost an event where ids were checked; not measured on {}.",
            unchecked.join(", ")
        )
    } else {
        format!("LOST EVENTS: {}.", lost.join("; "))
    };
    if !gaps.is_empty() {
        s.push_str(&format!(
            " Ids the server announced as missed (gap events, not silent loss): {}.",
            gaps.join(", ")
        ));
    }
    s
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::RunResult;

    fn scenario() -> ScenarioResult {
        let r: RunResult = serde_json::from_str(include_str!(
            "../../tests/fixtures/two-scenarios/result.json"
        ))
        .unwrap();
        r.scenarios[0].clone()
    }

    #[test]
    fn a_clear_difference_names_the_winner() {
        let f = findings(&scenario());
        assert!(
            f.iter()
                .any(|l| l.starts_with("Cheapest in server memory: sse-h1")),
            "{f:?}"
        );
        assert!(f.iter().any(|l| l.starts_with("No wire lost")), "{f:?}");
        assert!(
            f.iter().any(|l| l.starts_with("Every wire kept up")),
            "{f:?}"
        );
    }

    #[test]
    fn differences_within_the_noise_are_ties() {
        let mut s = scenario();
        let p99 = s.wires[0].latency_us.p99;
        s.wires[1].latency_us.p99 = p99 + p99 / 50;
        let f = findings(&s);
        assert!(
            f.iter()
                .any(|l| l.starts_with("P99 latency: within 5 % on every wire")
                    && l.contains("no clear winner")),
            "{f:?}"
        );
    }

    #[test]
    fn losses_shortfalls_and_missing_connections_are_named() {
        let mut s = scenario();
        s.wires[1].lost = 7;
        s.wires[1].gap_missing = 3;
        s.wires[0].events_per_s /= 2.0;
        s.wires[0].opened = 15;
        let f = findings(&s);
        let all = f.join("\n");
        assert!(all.contains("LOST EVENTS: ws-h1 lost 7 events"), "{all}");
        assert!(
            all.contains("announced as missed") && all.contains("ws-h1 3"),
            "{all}"
        );
        assert!(
            all.contains("Fell behind the feed: sse-h1 200 events/s (50 %"),
            "{all}"
        );
        assert!(all.contains("sse-h1 opened only 15 of the 20"), "{all}");
    }

    #[test]
    fn wires_close_to_the_best_share_the_title() {
        let mut s = scenario();
        let mut third = s.wires[0].clone();
        third.wire = crate::wire::Wire::SseH2c;
        s.wires.push(third);
        s.wires[0].latency_us.p99 = 1000;
        s.wires[2].latency_us.p99 = 1030;
        s.wires[1].latency_us.p99 = 2000;
        let f = findings(&s).join("\n");
        assert!(
            f.contains(
                "Fastest at p99: sse-h1 and sse-h2c tie (within 5 %), p99 latency \
                 sse-h1 1.0ms, sse-h2c 1.0ms; then ws-h1 2.0ms (2.00×)."
            ),
            "{f}"
        );
    }

    #[test]
    fn one_wire_is_not_compared() {
        let mut s = scenario();
        s.wires.truncate(1);
        let f = findings(&s);
        assert!(f.iter().any(|l| l.contains("nothing to compare")), "{f:?}");
        assert!(!f.iter().any(|l| l.starts_with("Fastest")), "{f:?}");
    }
}
