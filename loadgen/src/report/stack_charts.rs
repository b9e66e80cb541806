//! The stacks' charts for one wire, drawn by plotters into SVG: delivered
//! against offered events/s and p99 against offered events/s over the rate
//! sweep (one line per stack), and bars of server memory per connection
//! and server CPU per event. Colours are fixed per stack.

use plotters::prelude::*;

use super::charts::{diagonal, frame, labelled_bars, legend, lines_by, one_two_five, svg, FONT};
use super::document::Chart;
use super::error::ReportError;
use super::format::{bytes, count, cpu_us, us};
use super::latency::latency_of;
use super::stack_runs::{sweep_connections, StackRun, StackSummary};
use crate::result::Stack;
use crate::wire::Wire;

/// The colour of a stack's line, the same in every chart.
pub fn stack_color(s: Stack) -> RGBColor {
    match s {
        Stack::Actix => RGBColor(31, 119, 180),
        Stack::Bare => RGBColor(44, 160, 44),
        Stack::Node => RGBColor(230, 110, 0),
    }
}

/// `(offered, value)` points of each stack over the sweep, by offered load.
fn sweep_points(
    runs: &[StackRun<'_>],
    value: fn(&StackRun<'_>) -> f64,
) -> Vec<(Stack, Vec<(f64, f64)>)> {
    let sweep = sweep_connections(runs);
    lines_by(
        runs.iter()
            .filter(|r| r.wire.connections == sweep)
            .map(|r| (r.stack, (r.offered(), value(r)))),
    )
}

/// Every chart of one wire's stacks, files named `stacks-<wire>-<kind>.svg`.
pub fn for_wire(
    wire: Wire,
    runs: &[StackRun<'_>],
    sums: &[StackSummary<'_>],
) -> Result<Vec<Chart>, ReportError> {
    let chart = |kind: &str, title: String, svg: Result<String, String>| {
        super::error::drawn(format!("stacks-{wire}-{kind}.svg"), title, svg)
    };
    let sweep = sweep_connections(runs);
    let delivered = sweep_points(runs, |r| r.wire.events_per_s);
    let p99 = sweep_points(runs, |r| latency_of(r.wire).p99.max(1) as f64);
    let named = |f: fn(&StackSummary<'_>) -> Option<f64>| -> Vec<(&'static str, Vec<Option<f64>>)> {
        sums.iter().map(|s| (s.stack.name(), vec![f(s)])).collect()
    };
    Ok(vec![
        chart(
            "delivered",
            format!("{wire}: delivered against offered events/s, {sweep} connections"),
            delivered_chart(&delivered),
        )?,
        chart(
            "p99",
            format!(
                "{wire}: p99 latency against offered events/s, {sweep} connections (log scale)"
            ),
            p99_chart(&p99),
        )?,
        chart(
            "memory",
            format!("{wire}: server memory per connection (at the most connections)"),
            labelled_bars(
                &["server RSS per connection"],
                "bytes per connection",
                &named(|s| {
                    s.most_connections
                        .wire
                        .server
                        .as_ref()
                        .map(|c| c.rss_per_connection)
                }),
                bytes,
            ),
        )?,
        chart(
            "cpu",
            format!("{wire}: server CPU per delivered event (at saturation)"),
            labelled_bars(
                &["server CPU per event"],
                "CPU µs per event",
                &named(|s| {
                    s.saturation
                        .wire
                        .server
                        .as_ref()
                        .map(|c| c.cpu_us_per_event)
                }),
                cpu_us,
            ),
        )?,
    ])
}

fn delivered_chart(lines: &[(Stack, Vec<(f64, f64)>)]) -> Result<String, String> {
    let hi = lines
        .iter()
        .flat_map(|(_, p)| p.iter())
        .map(|p| p.0.max(p.1))
        .fold(1.0, f64::max)
        * 1.1;
    svg(|root| {
        let mut chart = frame(root, 80).build_cartesian_2d(0.0..hi, 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("offered events/s (rate × connections)")
            .y_desc("delivered events/s")
            .x_label_formatter(&|x| count(*x))
            .y_label_formatter(&|y| count(*y))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        diagonal(&mut chart, 0.0, hi, "all delivered")?;
        draw_lines(&mut chart, lines)?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

fn p99_chart(lines: &[(Stack, Vec<(f64, f64)>)]) -> Result<String, String> {
    let all = || lines.iter().flat_map(|(_, p)| p.iter());
    let x_hi = all().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let y_lo = (all().map(|p| p.1).fold(f64::INFINITY, f64::min) / 1.5).clamp(1.0, 1e9);
    let y_hi = (all().map(|p| p.1).fold(2.0, f64::max) * 1.5).max(y_lo * 10.0);
    svg(|root| {
        let mut chart = frame(root, 70).build_cartesian_2d(
            0.0..x_hi,
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(one_two_five(y_lo, y_hi)),
        )?;
        chart
            .configure_mesh()
            .x_desc("offered events/s (rate × connections)")
            .y_desc("p99 latency (log scale)")
            .x_label_formatter(&|x| count(*x))
            .y_label_formatter(&|y| us(*y as u64))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        draw_lines(&mut chart, lines)?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// One line with circles per stack, labelled for the legend.
fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[(Stack, Vec<(f64, f64)>)],
) -> super::charts::Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (stack, points) in lines {
        let color = stack_color(*stack);
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(stack.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}
