//! `loadgen compare A B`: the change from run A to run B, wire by wire,
//! with a regression marked wherever B is worse than A by more than a
//! threshold, so a CI job can fail on it.
//!
//! Scenarios are matched by name and wires by wire. For each pair the
//! metrics below are compared; "worse" is lower for events/s, higher for
//! everything else, and any increase at all for lost events (a correct
//! server loses none, so no amount of loss is noise). Latency is the hold's
//! when both runs recorded it apart (see [`latency_of`]).

use std::fmt::Write as _;

use crate::report::{latency_of, Align, Table};
use crate::result::{RunResult, ScenarioResult, WireResult};
use crate::wire::Wire;

/// The default threshold: 10 % worse is a regression.
pub const DEFAULT_THRESHOLD: f64 = 0.10;

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Lower, and any increase is a regression whatever the threshold.
    NoIncrease,
}

/// A metric compared between two runs.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub better: Better,
    /// Its value on a wire; `None` when the run did not measure it.
    pub value: fn(&WireResult) -> Option<f64>,
    /// How to print a value.
    pub show: fn(f64) -> String,
}

fn us(v: f64) -> String {
    crate::report::us(v as u64)
}

/// The metrics compared, in the order printed.
pub const METRICS: [Metric; 10] = [
    Metric {
        name: "events/s",
        better: Better::Higher,
        value: |w| Some(w.events_per_s),
        show: |v| format!("{v:.0}"),
    },
    Metric {
        name: "latency p50",
        better: Better::Lower,
        value: |w| Some(latency_of(w).p50 as f64),
        show: us,
    },
    Metric {
        name: "latency p99",
        better: Better::Lower,
        value: |w| Some(latency_of(w).p99 as f64),
        show: us,
    },
    Metric {
        name: "latency p99.9",
        better: Better::Lower,
        value: |w| Some(latency_of(w).p999 as f64),
        show: us,
    },
    Metric {
        name: "connect p50",
        better: Better::Lower,
        value: |w| Some(w.connect_us.p50 as f64),
        show: us,
    },
    Metric {
        name: "server mem/conn",
        better: Better::Lower,
        value: |w| w.server.as_ref().map(|s| s.rss_per_connection),
        show: crate::report::bytes,
    },
    Metric {
        name: "server CPU/event",
        better: Better::Lower,
        value: |w| w.server.as_ref().map(|s| s.cpu_us_per_event),
        show: |v| format!("{v:.2}µs"),
    },
    Metric {
        name: "loadgen CPU/event",
        better: Better::Lower,
        value: |w| Some(w.loadgen.cpu_us_per_event),
        show: |v| format!("{v:.2}µs"),
    },
    // The load generator's CPU per event over the server's: both move with
    // the machine's load, their ratio much less, and a load generator that
    // costs as much as its target measures itself.
    Metric {
        name: "loadgen÷server CPU",
        better: Better::Lower,
        value: |w| {
            w.server
                .as_ref()
                .filter(|s| s.cpu_us_per_event > 0.0)
                .map(|s| w.loadgen.cpu_us_per_event / s.cpu_us_per_event)
        },
        show: |v| format!("{v:.2}"),
    },
    Metric {
        name: "lost",
        better: Better::NoIncrease,
        value: |w| Some(w.lost as f64),
        show: |v| format!("{v:.0}"),
    },
];

/// One metric of one wire in one scenario, in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub scenario: String,
    pub wire: Wire,
    pub metric: &'static str,
    pub a: f64,
    pub b: f64,
    /// (b - a) / a: positive is an increase. Infinite when a is 0 and b is not.
    pub change: f64,
    /// Worse by more than the threshold (any increase for lost events).
    pub regression: bool,
    /// Better by more than the threshold (any decrease for lost events).
    pub improvement: bool,
    pub shown_a: String,
    pub shown_b: String,
}

/// Everything compared, and what could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub threshold: f64,
    pub deltas: Vec<Delta>,
    /// Scenarios or wires in only one run, settings that differ, metrics
    /// one run lacks: the reader should know what was not compared.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.deltas.iter().filter(|d| d.regression).count()
    }

    /// Something was compared and nothing regressed. A comparison of runs
    /// that share no scenario and wire does not pass: it proved nothing.
    pub fn passes(&self) -> bool {
        !self.deltas.is_empty() && self.regressions() == 0
    }
}

/// Compares run `b` with run `a`; `threshold` is a fraction (0.1 for 10 %).
pub fn compare(a: &RunResult, b: &RunResult, threshold: f64) -> Comparison {
    let mut out = Comparison {
        threshold,
        deltas: Vec::new(),
        notes: Vec::new(),
    };
    let (fa, fb) = (feed(a), feed(b));
    // Two single-scenario runs are compared whatever their names (`loadgen
    // run` names a scenario after the run).
    let single = fa.len() == 1 && fb.len() == 1;
    if single && fa[0].scenario.name != fb[0].scenario.name {
        out.notes.push(format!(
            "scenario `{}` (A) compared with `{}` (B): each run holds only that one",
            fa[0].scenario.name, fb[0].scenario.name
        ));
    }
    for sa in &fa {
        // A scenario run on several stacks is one scenario per stack.
        let name = &match sa.stack {
            Some(stack) => format!("{} on {stack}", sa.scenario.name),
            None => sa.scenario.name.clone(),
        };
        let found = if single {
            fb.first()
        } else {
            fb.iter()
                .find(|s| s.scenario.name == sa.scenario.name && s.stack == sa.stack)
        };
        let Some(sb) = found else {
            out.notes.push(format!("scenario `{name}` is only in A"));
            continue;
        };
        settings_notes(sa, sb, &mut out.notes);
        for wa in &sa.wires {
            let Some(wb) = sb.wires.iter().find(|w| w.wire == wa.wire) else {
                out.notes
                    .push(format!("`{name}`: wire {} is only in A", wa.wire));
                continue;
            };
            let (wa, wb) = same_latency_kind(name, wa, wb, &mut out.notes);
            for m in METRICS {
                match ((m.value)(&wa), (m.value)(&wb)) {
                    (Some(va), Some(vb)) => {
                        out.deltas.push(delta(name, wa.wire, &m, va, vb, threshold))
                    }
                    _ => out.notes.push(format!(
                        "`{name}` {}: {} is not in both runs",
                        wa.wire, m.name
                    )),
                }
            }
        }
        for wb in sb
            .wires
            .iter()
            .filter(|wb| !sa.wires.iter().any(|wa| wa.wire == wb.wire))
        {
            out.notes
                .push(format!("`{name}`: wire {} is only in B", wb.wire));
        }
    }
    for sb in fb.iter().filter(|_| !single) {
        if !fa
            .iter()
            .any(|s| s.scenario.name == sb.scenario.name && s.stack == sb.stack)
        {
            out.notes
                .push(format!("scenario `{}` is only in B", sb.scenario.name));
        }
    }
    out
}

/// Latency of the hold only is compared when both runs have it; otherwise
/// both fall back to every event's, and a note says so.
fn same_latency_kind(
    scenario: &str,
    a: &WireResult,
    b: &WireResult,
    notes: &mut Vec<String>,
) -> (WireResult, WireResult) {
    let (mut a, mut b) = (a.clone(), b.clone());
    if a.latency_hold_us.is_some() != b.latency_hold_us.is_some() {
        notes.push(format!(
            "`{scenario}` {}: latency compared over every event, ramp included: only one run \
             has the hold's own histogram",
            a.wire
        ));
        a.latency_hold_us = None;
        b.latency_hold_us = None;
    }
    (a, b)
}

/// The scenarios with feed results (chat, echo and faults have no wires).
fn feed(r: &RunResult) -> Vec<&ScenarioResult> {
    r.scenarios.iter().filter(|s| !s.wires.is_empty()).collect()
}

fn delta(scenario: &str, wire: Wire, m: &Metric, a: f64, b: f64, threshold: f64) -> Delta {
    let change = if a == b {
        0.0
    } else if a == 0.0 {
        if b > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    } else {
        (b - a) / a
    };
    let (regression, improvement) = match m.better {
        Better::Higher => (change < -threshold, change > threshold),
        Better::Lower => (change > threshold, change < -threshold),
        Better::NoIncrease => (b > a, b < a),
    };
    Delta {
        scenario: scenario.to_string(),
        wire,
        metric: m.name,
        a,
        b,
        change,
        regression,
        improvement,
        shown_a: (m.show)(a),
        shown_b: (m.show)(b),
    }
}

/// A comparison of runs taken with other settings compares other things.
fn settings_notes(a: &ScenarioResult, b: &ScenarioResult, notes: &mut Vec<String>) {
    let (sa, sb) = (&a.scenario, &b.scenario);
    let differ = [
        ("connections", sa.connections as f64, sb.connections as f64),
        ("rate_hz", a.server.rate_hz, b.server.rate_hz),
        (
            "payload_bytes",
            a.server.payload_bytes as f64,
            b.server.payload_bytes as f64,
        ),
        ("duration_s", sa.duration_s, sb.duration_s),
    ];
    for (what, va, vb) in differ {
        if va != vb {
            notes.push(format!(
                "`{}`: {what} differs (A {va}, B {vb}): the runs measured different loads",
                sa.name
            ));
        }
    }
    if a.server.mode != b.server.mode {
        notes.push(format!(
            "`{}`: server mode differs (A {}, B {})",
            sa.name, a.server.mode, b.server.mode
        ));
    }
}

/// The deltas as a table: scenario, wire, metric, A, B, change, verdict.
pub fn table(c: &Comparison) -> Table {
    let mut t = Table::numeric(&["scenario", "wire", "metric", "A", "B", "change", "verdict"]);
    t.align[1] = Align::Left;
    t.align[2] = Align::Left;
    t.align[6] = Align::Left;
    for d in &c.deltas {
        t.rows.push(vec![
            d.scenario.clone(),
            d.wire.to_string(),
            d.metric.to_string(),
            d.shown_a.clone(),
            d.shown_b.clone(),
            crate::report::percent(d.change),
            if d.regression {
                "REGRESSION".into()
            } else if d.improvement {
                "better".into()
            } else {
                String::new()
            },
        ]);
    }
    t
}

/// The headline: how many regressions beyond the threshold.
pub fn verdict(c: &Comparison) -> String {
    match c.regressions() {
        _ if c.deltas.is_empty() => {
            "NOTHING COMPARED: the runs share no scenario and wire (see below).".into()
        }
        0 => format!(
            "No regression: nothing is worse than A by more than {:.0} % (nor lost more events).",
            c.threshold * 100.0
        ),
        n => format!(
            "{n} REGRESSION{} beyond {:.0} % (or more events lost): see the rows marked REGRESSION.",
            if n == 1 { "" } else { "S" },
            c.threshold * 100.0
        ),
    }
}

/// `compare.md`: the verdict, the table, the notes.
pub fn markdown(c: &Comparison, a_label: &str, b_label: &str) -> String {
    let mut out = format!("# Comparison\n\nA: `{a_label}`\n\nB: `{b_label}`\n\n");
    let _ = writeln!(
        out,
        "Change is (B - A) / A. For events/s higher is better; for the rest lower. \
         Regression threshold: {:.0} % (a change beyond it the other way is marked better).\n",
        c.threshold * 100.0
    );
    let _ = writeln!(out, "**{}**\n", verdict(c));
    out.push_str(&crate::report::markdown_table(&table(c)));
    if !c.notes.is_empty() {
        out.push_str("\n## Not compared\n\n");
        for n in &c.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunResult {
        serde_json::from_str(include_str!("../tests/fixtures/two-scenarios/result.json")).unwrap()
    }

    #[test]
    fn directions_and_thresholds() {
        let [events, p50, .., lost] = METRICS;
        // Events/s: 15 % fewer is a regression at 10 %, 15 % more is not.
        assert!(delta("s", Wire::SseH1, &events, 100.0, 85.0, 0.1).regression);
        assert!(!delta("s", Wire::SseH1, &events, 100.0, 115.0, 0.1).regression);
        // Latency: the other way round.
        assert!(delta("s", Wire::SseH1, &p50, 100.0, 115.0, 0.1).regression);
        assert!(!delta("s", Wire::SseH1, &p50, 100.0, 85.0, 0.1).regression);
        assert!(!delta("s", Wire::SseH1, &p50, 100.0, 109.0, 0.1).regression);
        // Lost: any increase, from zero too.
        let d = delta("s", Wire::SseH1, &lost, 0.0, 1.0, 0.5);
        assert!(d.regression && d.change.is_infinite());
        assert!(!delta("s", Wire::SseH1, &lost, 0.0, 0.0, 0.0).regression);
    }

    #[test]
    fn the_load_generators_cost_is_compared_alone_and_against_the_servers() {
        let metric = |name| METRICS.iter().find(|m| m.name == name).expect(name);
        let (cpu, ratio) = (metric("loadgen CPU/event"), metric("loadgen÷server CPU"));
        let a = run();
        let w = &a.scenarios[0].wires[0];
        let server = w
            .server
            .as_ref()
            .expect("the fixture has a server")
            .cpu_us_per_event;
        assert_eq!((cpu.value)(w), Some(w.loadgen.cpu_us_per_event));
        let r = (ratio.value)(w).expect("a ratio");
        assert!((r - w.loadgen.cpu_us_per_event / server).abs() < 1e-12);
        let mut alone = w.clone();
        alone.server = None;
        assert_eq!((ratio.value)(&alone), None, "no server measured, no ratio");
        // A load generator 20 % dearer against the same server regresses both.
        let mut b = run();
        b.scenarios[0].wires[0].loadgen.cpu_us_per_event *= 1.2;
        let c = compare(&a, &b, DEFAULT_THRESHOLD);
        let regressed: Vec<_> = c
            .deltas
            .iter()
            .filter(|d| d.regression)
            .map(|d| d.metric)
            .collect();
        assert_eq!(regressed, ["loadgen CPU/event", "loadgen÷server CPU"]);
    }

    #[test]
    fn equal_runs_pass_and_differing_settings_are_noted() {
        let c = compare(&run(), &run(), DEFAULT_THRESHOLD);
        assert!(c.passes());
        assert_eq!(c.deltas.len(), 2 * 2 * METRICS.len());
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let mut b = run();
        b.scenarios[0].scenario.connections = 99;
        b.scenarios[1].wires.pop();
        let c = compare(&run(), &b, DEFAULT_THRESHOLD);
        let notes = c.notes.join("\n");
        assert!(
            notes.contains("connections differs (A 20, B 99)"),
            "{notes}"
        );
        assert!(notes.contains("wire ws-h1 is only in A"), "{notes}");
    }

    #[test]
    fn single_scenarios_pair_whatever_their_names() {
        let mut a = run();
        a.scenarios.truncate(1);
        let mut b = a.clone();
        b.scenarios[0].scenario.name = "run".into();
        let c = compare(&a, &b, DEFAULT_THRESHOLD);
        assert!(c.passes());
        assert!(c.notes[0].contains("compared with `run`"), "{:?}", c.notes);
        b.scenarios.clear();
        let c = compare(&a, &b, DEFAULT_THRESHOLD);
        assert!(!c.passes());
        assert!(verdict(&c).starts_with("NOTHING COMPARED"));
    }

    #[test]
    fn hold_latency_is_compared_only_when_both_runs_have_it() {
        let mut slow = run().scenarios[0].wires[0].latency_us.clone();
        slow.p99 *= 10;
        let mut b = run();
        b.scenarios[0].wires[0].latency_hold_us = Some(slow.clone());
        // Only B has it: every event's latency on both sides, and a note.
        let c = compare(&run(), &b, DEFAULT_THRESHOLD);
        assert!(c.passes());
        assert!(
            c.notes.iter().any(|n| n.contains("ramp included")),
            "{:?}",
            c.notes
        );
        // Both have it: the hold's is compared.
        let mut a = run();
        a.scenarios[0].wires[0].latency_hold_us =
            Some(run().scenarios[0].wires[0].latency_us.clone());
        let c = compare(&a, &b, DEFAULT_THRESHOLD);
        assert_eq!(c.regressions(), 1);
        assert!(c
            .deltas
            .iter()
            .any(|d| d.regression && d.metric == "latency p99"));
    }
}
