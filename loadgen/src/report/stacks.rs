//! The stacks side by side (`--stacks`): per wire, one summary table
//! (events/s at saturation, the highest load held with p99 under 50 ms,
//! server memory per connection, server CPU per event, connect rate, each
//! with its ratio against actix), one table per load (p50 and p99 at equal
//! load), charts, and findings generated from the numbers.

use super::document::{Block, Table};
use super::error::ReportError;
use super::format::{bytes, count, cpu_us, ratio, us, with_ratio};
use super::latency::latency_of;
use super::stack_charts;
use super::stack_runs::{
    runs_of, summaries, wires_of, StackRun, StackSummary, HELD_P99_US, HELD_SHARE,
};
use super::text::lost_shown;
use crate::result::{RunResult, Stack, WireResult};
use crate::wire::Wire;

/// `shown (ratio against base)`, the base itself bare; `n/a` without a value.
fn against(v: Option<f64>, base: Option<f64>, is_base: bool, show: fn(f64) -> String) -> String {
    match (v, base) {
        (Some(v), Some(b)) => with_ratio(show(v), v, b, is_base),
        (Some(v), None) => show(v),
        (None, _) => "n/a".into(),
    }
}

fn per_s(v: f64) -> String {
    format!("{}/s", count(v))
}

fn summary_table(sums: &[StackSummary<'_>], base: Stack) -> Table {
    let mut t = Table::numeric(&[
        "stack",
        "events/s at saturation",
        "held p99 < 50 ms up to",
        "srv mem/conn (most conns)",
        "srv CPU/event (at saturation)",
        "connect rate",
    ]);
    let b = sums.iter().find(|s| s.stack == base);
    for s in sums {
        let is_base = s.stack == base;
        let mem = |x: &StackSummary<'_>| {
            x.most_connections
                .wire
                .server
                .as_ref()
                .map(|c| c.rss_per_connection)
        };
        let cpu = |x: &StackSummary<'_>| {
            x.saturation
                .wire
                .server
                .as_ref()
                .map(|c| c.cpu_us_per_event)
        };
        t.rows.push(vec![
            format!("{} ({})", s.stack, s.stack.serving(s.saturation.wire.wire)),
            against(
                Some(s.saturation.wire.events_per_s),
                b.map(|b| b.saturation.wire.events_per_s),
                is_base,
                per_s,
            ),
            against(s.held, b.and_then(|b| b.held), is_base, per_s),
            against(mem(s), b.and_then(mem), is_base, bytes),
            against(cpu(s), b.and_then(cpu), is_base, cpu_us),
            against(
                s.connect_rate,
                b.and_then(|b| b.connect_rate),
                is_base,
                per_s,
            ),
        ]);
    }
    t
}

/// One table per load: every stack at the same connections and rate.
fn load_table(runs: &[StackRun<'_>], base: Stack) -> Table {
    let mut t = Table::numeric(&[
        "stack",
        "open/asked",
        "events/s",
        "p50",
        "p99",
        "lost",
        "srv mem/conn",
        "srv CPU/event",
        "connect rate",
        "loadgen CPU/event",
    ]);
    let b = runs.iter().find(|r| r.stack == base);
    for r in runs {
        let (w, is_base) = (r.wire, r.stack == base);
        let bw = b.map(|b| b.wire);
        let lat = |f: fn(&WireResult) -> u64| {
            against(Some(f(w) as f64), bw.map(|b| f(b) as f64), is_base, |v| {
                us(v as u64)
            })
        };
        let srv = |f: fn(&crate::result::ServerCost) -> f64, show: fn(f64) -> String| {
            against(
                w.server.as_ref().map(f),
                bw.and_then(|b| b.server.as_ref().map(f)),
                is_base,
                show,
            )
        };
        t.rows.push(vec![
            r.stack.to_string(),
            format!("{}/{}", w.opened, w.connections),
            against(
                Some(w.events_per_s),
                bw.map(|b| b.events_per_s),
                is_base,
                count,
            ),
            lat(|w| latency_of(w).p50),
            lat(|w| latency_of(w).p99),
            lost_shown(w),
            srv(|c| c.rss_per_connection, bytes),
            srv(|c| c.cpu_us_per_event, cpu_us),
            against(
                r.connect_rate(),
                b.and_then(|b| b.connect_rate()),
                is_base,
                per_s,
            ),
            cpu_us(w.loadgen.cpu_us_per_event),
        ]);
    }
    t
}

/// Findings for one wire, one sentence each.
pub fn findings(wire: Wire, sums: &[StackSummary<'_>], base: Stack) -> Vec<String> {
    let mut out = Vec::new();
    let Some(b) = sums.iter().find(|s| s.stack == base) else {
        return out;
    };
    let base_name = base.serving(wire);
    for s in sums.iter().filter(|s| s.stack != base) {
        let name = s.stack.serving(wire);
        out.push(format!(
            "{name}: at most {} events/s on {wire} ({}, p99 {}); {base_name} {} events/s, {} as many.",
            count(s.saturation.wire.events_per_s),
            s.saturation.scenario.scenario.name,
            us(latency_of(s.saturation.wire).p99),
            count(b.saturation.wire.events_per_s),
            ratio(b.saturation.wire.events_per_s, s.saturation.wire.events_per_s),
        ));
    }
    let held: Vec<String> = sums
        .iter()
        .map(|s| match s.held {
            Some(v) => format!("{} {} events/s", s.stack.serving(wire), count(v)),
            None => format!("{} none of the loads tried", s.stack.serving(wire)),
        })
        .collect();
    out.push(format!(
        "Highest load held with p99 under {} and nothing lost: {}.",
        us(HELD_P99_US),
        held.join(", ")
    ));
    let mem: Vec<(Stack, f64, usize)> = sums
        .iter()
        .filter_map(|s| {
            let w = s.most_connections.wire;
            Some((
                s.stack,
                w.server.as_ref()?.rss_per_connection,
                w.connections,
            ))
        })
        .collect();
    if let Some(&(_, base_mem, _)) = mem.iter().find(|m| m.0 == base) {
        let parts: Vec<String> = mem
            .iter()
            .map(|&(k, v, n)| {
                let r = if k == base {
                    String::new()
                } else {
                    format!(" ({})", ratio(v, base_mem))
                };
                format!(
                    "{} {} at {} connections{r}",
                    k.serving(wire),
                    bytes(v),
                    count(n as f64)
                )
            })
            .collect();
        out.push(format!(
            "Server memory per connection: {}.",
            parts.join(", ")
        ));
    }
    for s in sums {
        for r in [s.saturation, s.most_connections] {
            if r.wire.measured.loss && r.wire.lost > 0 {
                out.push(format!(
                    "LOST EVENTS: {} lost {} events in {}.",
                    s.stack.serving(wire),
                    count(r.wire.lost as f64),
                    r.scenario.scenario.name
                ));
                break;
            }
        }
    }
    out
}

/// The report's stacks section: per wire, tables, charts and findings.
pub fn blocks(result: &RunResult) -> Result<Vec<Block>, ReportError> {
    let mut out = Vec::new();
    let wires = wires_of(result);
    if wires.is_empty() {
        return Ok(out);
    }
    out.push(Block::Heading(2, "Stacks side by side".into()));
    out.push(Block::Paragraph(format!(
        "Every stack in its own child process, loaded by the same client with the same \
         connections and rate, and measured the same way: memory (RSS) and CPU from /proc of its \
         process, loss from holes in each connection's ids. Ratios (×) are against actix when it \
         ran. A load is held when at least {:.0} % of the offered events arrived, p99 stayed under \
         {} and nothing was lost; the connect rate is taken where all connections opened at once.",
        HELD_SHARE * 100.0,
        us(HELD_P99_US)
    )));
    for wire in wires {
        let runs = runs_of(result, wire);
        let sums = summaries(&runs);
        let base = if sums.iter().any(|s| s.stack == Stack::Actix) {
            Stack::Actix
        } else {
            sums.first().map_or(Stack::Actix, |s| s.stack)
        };
        out.push(Block::Heading(3, format!("{wire}: stacks compared")));
        out.push(Block::List(findings(wire, &sums, base)));
        out.push(Block::Table(summary_table(&sums, base)));
        let mut loads: Vec<&str> = Vec::new();
        for r in &runs {
            if !loads.contains(&r.scenario.scenario.name.as_str()) {
                loads.push(&r.scenario.scenario.name);
            }
        }
        for load in loads {
            let at: Vec<StackRun<'_>> = runs
                .iter()
                .copied()
                .filter(|r| r.scenario.scenario.name == load)
                .collect();
            let first = at[0];
            out.push(Block::Paragraph(format!(
                "{wire}, {load}: {} connections at {} events/s each ({} events/s offered), held {} s.",
                count(first.wire.connections as f64),
                super::format::num(first.scenario.server.rate_hz),
                count(first.offered()),
                super::format::num(first.scenario.scenario.duration_s)
            )));
            out.push(Block::Table(load_table(&at, base)));
        }
        for chart in stack_charts::for_wire(wire, &runs, &sums)? {
            out.push(Block::Chart(chart));
        }
    }
    Ok(out)
}
