//! The emulated links' charts: p99 latency and the stall fraction against
//! the link's loss, one line per wire (the scenarios whose links differ in
//! loss alone: no rate limit, no outage), and the recovery time per outage,
//! per wire.

use plotters::prelude::*;

use super::charts::{bars, frame, legend, lines_by, svg, wire_color, FONT};
use super::document::Chart;
use super::error::ReportError;
use super::format::{num, us};
use super::latency::latency_of;
use crate::result::{ScenarioResult, WireResult};
use crate::wire::Wire;

/// One line per wire: `(loss %, value)` points, in order of loss.
type Lines = Vec<(Wire, Vec<(f64, f64)>)>;
/// Bars grouped by wire, one value per series (missing: `None`).
type Groups = Vec<(Wire, Vec<Option<f64>>)>;

/// Every chart of the section (none when nothing fits a chart).
pub fn charts(links: &[&ScenarioResult]) -> Result<Vec<Chart>, ReportError> {
    let chart = |file: &str, title: &str, svg: Result<String, String>| {
        svg.map(|svg| Chart {
            file: file.to_string(),
            title: title.to_string(),
            svg,
        })
        .map_err(|reason| ReportError::Chart {
            chart: file.to_string(),
            reason,
        })
    };
    let mut out = Vec::new();
    let p99 = against_loss(links, |w| latency_of(w).p99 as f64);
    if !p99.is_empty() {
        out.push(chart(
            "links-p99-by-loss.svg",
            "p99 latency against the link's loss, per wire",
            by_loss(&p99, "p99 latency", |v| us(v as u64)),
        )?);
    }
    let stalls = against_loss(links, |w| {
        w.network.as_ref().map_or(0.0, |n| n.stalls.stall_fraction)
    });
    if !stalls.is_empty() {
        out.push(chart(
            "links-stalls-by-loss.svg",
            "Share of events that stalled (later than delay + 3 RTT) against the link's loss, per wire",
            by_loss(&stalls, "events that stalled", |v| format!("{} %", num(v * 100.0))),
        )?);
    }
    let (series, groups) = recovery(links);
    if !series.is_empty() {
        let names: Vec<&str> = series.iter().map(String::as_str).collect();
        out.push(chart(
            "links-recovery.svg",
            "Recovery per outage, per wire: link back to the next event (median)",
            bars(&names, "median recovery", &groups, |v| us(v as u64)),
        )?);
    }
    Ok(out)
}

/// `value` of each wire in every scenario whose link has loss and neither
/// a rate limit nor outages, against that loss (%).
fn against_loss(links: &[&ScenarioResult], value: fn(&WireResult) -> f64) -> Lines {
    lines_by(links.iter().flat_map(|s| {
        let lossy = s
            .link
            .as_ref()
            .filter(|l| l.loss > 0.0 && l.rate_bps.is_none() && l.outages.is_empty());
        lossy.into_iter().flat_map(move |l| {
            s.wires
                .iter()
                .map(move |w| (w.wire, (l.loss * 100.0, value(w))))
        })
    }))
}

/// Median recovery of each wire from each outage: the series (one per
/// outage) and the bars grouped by wire.
fn recovery(links: &[&ScenarioResult]) -> (Vec<String>, Groups) {
    let mut series = Vec::new();
    let mut groups: Groups = Vec::new();
    for s in links {
        let Some(l) = &s.link else { continue };
        for (i, o) in l.outages.iter().enumerate() {
            series.push(format!("{} s outage", num(o.duration_s)));
            let column = series.len() - 1;
            for w in &s.wires {
                let median = w
                    .network
                    .as_ref()
                    .and_then(|n| n.outages.get(i))
                    .filter(|r| r.recovery_us.count > 0)
                    .map(|r| r.recovery_us.p50 as f64);
                let group = match groups.iter().position(|(wire, _)| *wire == w.wire) {
                    Some(g) => g,
                    None => {
                        groups.push((w.wire, Vec::new()));
                        groups.len() - 1
                    }
                };
                let values = &mut groups[group].1;
                values.resize(column, None);
                values.push(median);
            }
        }
    }
    for (_, values) in &mut groups {
        values.resize(series.len(), None);
    }
    (series, groups)
}

/// Lines against the loss on a linear scale from 0.
fn by_loss(lines: &Lines, y_desc: &str, show: fn(f64) -> String) -> Result<String, String> {
    let points = || lines.iter().flat_map(|(_, p)| p.iter());
    let x_hi = points().map(|p| p.0).fold(0.0, f64::max).max(0.1) * 1.15;
    let y_hi = points().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.2;
    svg(|root| {
        let mut chart = frame(root, 70).build_cartesian_2d(0.0..x_hi, 0.0..y_hi)?;
        chart
            .configure_mesh()
            .x_desc("packet loss per direction (%)")
            .y_desc(y_desc)
            .x_label_formatter(&|x| num(*x))
            .y_label_formatter(&|y| show(*y))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (wire, line) in lines {
            let color = wire_color(*wire);
            chart
                .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
                .label(wire.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}
