//! The report's charts, drawn by plotters into SVG strings.
//!
//! plotters is built without its `ttf` and `ab_glyph` features: its SVG
//! backend writes text as `<text>` elements that the viewer lays out, and
//! without a font backend plotters only estimates text widths for layout.
//! So drawing needs no font file and no system fontconfig at run time.
//!
//! Every chart is a pure function of the result, so reports stay
//! byte-identical when regenerated. Colours are fixed per wire (line charts)
//! and per series (bar charts), the same in every scenario.

use std::error::Error;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::document::Chart;
use super::error::ReportError;
use super::format::{bytes, count, cpu_us, us};
use super::latency::latency_of;
use crate::result::{ScenarioResult, WireResult};
use crate::wire::Wire;

const SIZE: (u32, u32) = (620, 340);
pub const FONT: &str = "sans-serif";
/// Bar colours: first series dark, second light, then more for charts
/// with more series (the proxy section: direct and each edge).
const SERIES: [RGBColor; 5] = [
    RGBColor(52, 84, 140),
    RGBColor(150, 182, 222),
    RGBColor(214, 120, 40),
    RGBColor(90, 160, 90),
    RGBColor(170, 80, 150),
];

pub type Drawn = Result<(), Box<dyn Error>>;

/// Every chart of one feed scenario, files named `<stem>-<kind>.svg`.
pub fn for_scenario(s: &ScenarioResult, stem: &str) -> Result<Vec<Chart>, ReportError> {
    let chart = |kind: &str, title: &str, svg: Result<String, String>| {
        super::error::drawn(format!("{stem}-{kind}.svg"), title.to_string(), svg)
    };
    let mut curves = Vec::new();
    for w in &s.wires {
        let h = latency_of(w)
            .decode()
            .map_err(|source| ReportError::Histogram {
                scenario: s.scenario.name.clone(),
                wire: w.wire,
                source,
            })?;
        if !h.is_empty() {
            curves.push((w.wire, percentile_curve(&h)));
        }
    }
    let pair = |a: fn(&WireResult) -> Option<f64>, b: fn(&WireResult) -> Option<f64>| {
        s.wires
            .iter()
            .map(|w| (w.wire, vec![a(w), b(w)]))
            .collect::<Vec<_>>()
    };
    let server = |w: &WireResult| w.server.clone();
    Ok(vec![
        chart(
            "latency",
            "Event latency by percentile (log scales)",
            latency(&curves),
        )?,
        chart("events", "Delivered events/s over time", events(&s.wires))?,
        chart(
            "connect",
            "Connect time per wire (p50, p99)",
            bars(
                &["p50", "p99"],
                "connect time",
                &pair(
                    |w| Some(w.connect_us.p50 as f64),
                    |w| Some(w.connect_us.p99 as f64),
                ),
                |v| us(v as u64),
            ),
        )?,
        chart(
            "first-event",
            "Time to first event per wire (p50, p99)",
            bars(
                &["p50", "p99"],
                "connect start to first event",
                &pair(
                    |w| Some(w.first_event_us.p50 as f64),
                    |w| Some(w.first_event_us.p99 as f64),
                ),
                |v| us(v as u64),
            ),
        )?,
        chart(
            "memory",
            "Server memory per connection (process RSS)",
            bars(
                &["server RSS per connection"],
                "bytes per connection",
                &s.wires
                    .iter()
                    .map(|w| (w.wire, vec![server(w).map(|c| c.rss_per_connection)]))
                    .collect::<Vec<_>>(),
                bytes,
            ),
        )?,
        chart(
            "cpu",
            "CPU per delivered event (server, load generator)",
            bars(
                &["server", "load generator"],
                "CPU µs per event",
                &pair(
                    |w| w.server.as_ref().map(|c| c.cpu_us_per_event),
                    |w| Some(w.loadgen.cpu_us_per_event),
                ),
                cpu_us,
            ),
        )?,
    ])
}

/// The colour of a wire's line, the same in every chart.
pub fn wire_color(w: Wire) -> RGBColor {
    match w {
        Wire::SseH1 => RGBColor(31, 119, 180),
        Wire::SseH2 => RGBColor(44, 160, 44),
        Wire::SseH2c => RGBColor(148, 103, 189),
        Wire::WsH1 => RGBColor(230, 110, 0),
        Wire::WsH2 => RGBColor(214, 39, 40),
        Wire::WsH2c => RGBColor(140, 86, 75),
    }
}

/// Points of an HDR percentile curve: x is `1 / (1 - q)` (1 at the
/// minimum, 100 at p99, 1,000 at p99.9), ten points a decade, up to where
/// the count still resolves the quantile, then the maximum.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len() as f64;
    let mut points = Vec::new();
    for k in 0..=90u32 {
        let x = 10f64.powf(f64::from(k) / 10.0);
        if x > n {
            break;
        }
        points.push((x, h.value_at_quantile(1.0 - 1.0 / x).max(1) as f64));
    }
    points.push((n.max(1.0), h.max().max(1) as f64));
    points
}

/// `p99.9` for x = 1,000.
fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "min".into();
    }
    let decimals = usize::try_from((x.log10().round() as i64 - 2).max(0)).unwrap_or(0);
    format!("p{:.*}", decimals, 100.0 * (1.0 - 1.0 / x))
}

/// 1, 2, 5, 10, 20, 50, ... within `lo..=hi`.
pub fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 1.0;
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

fn latency(curves: &[(Wire, Vec<(f64, f64)>)]) -> Result<String, String> {
    let all = || curves.iter().flat_map(|(_, c)| c.iter());
    let x_max = all().map(|p| p.0).fold(10.0, f64::max);
    let x_hi = 10f64.powi(x_max.log10().ceil() as i32);
    // No curve at all (nothing received): an empty chart from 1 µs up.
    let y_min = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_lo = if y_min.is_finite() {
        (y_min / 1.5).max(1.0)
    } else {
        1.0
    };
    let y_hi = (all().map(|p| p.1).fold(2.0, f64::max) * 1.5).max(y_lo * 10.0);
    let mut x_keys = vec![1.0, 2.0];
    let mut k = 10.0;
    while k <= x_hi {
        x_keys.push(k);
        k *= 10.0;
    }
    svg(|root| {
        let mut chart = frame(root, 70).build_cartesian_2d(
            (1.0..x_hi).log_scale().with_key_points(x_keys),
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(one_two_five(y_lo, y_hi)),
        )?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale)")
            .y_desc("latency (log scale)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| us(*y as u64))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (wire, curve) in curves {
            let color = wire_color(*wire);
            chart
                .draw_series(LineSeries::new(
                    curve.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(wire.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// A wire's events per second without the last second, which is cut short
/// by the end of the run: drawn, it would read as a drop to nearly zero.
pub fn full_seconds(per_second: &[u64]) -> &[u64] {
    match per_second.split_last() {
        Some((_, full)) if !full.is_empty() => full,
        _ => per_second,
    }
}

fn events(wires: &[WireResult]) -> Result<String, String> {
    let len = wires
        .iter()
        .map(|w| full_seconds(&w.recorder.events_per_second).len())
        .max()
        .unwrap_or(0)
        .max(2);
    let y_max = wires
        .iter()
        .flat_map(|w| full_seconds(&w.recorder.events_per_second).iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0..len as u32 - 1, 0.0..y_max * 1.15)?;
        chart
            .configure_mesh()
            .x_desc(
                "second since the wire started (ramp, settle, hold, drain; the partial last second left out)",
            )
            .y_desc("events/s")
            .y_label_formatter(&|y| count(*y))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for w in wires {
            let color = wire_color(w.wire);
            let points = full_seconds(&w.recorder.events_per_second)
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u32, *v as f64));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(w.wire.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Grouped bars: one group per wire, one bar per series, the value written
/// above each bar (`n/a` where it is missing).
pub(super) fn bars(
    series: &[&str],
    y_desc: &str,
    groups: &[(Wire, Vec<Option<f64>>)],
    show: fn(f64) -> String,
) -> Result<String, String> {
    let named: Vec<(&str, Vec<Option<f64>>)> =
        groups.iter().map(|(w, v)| (w.name(), v.clone())).collect();
    labelled_bars(series, y_desc, &named, show)
}

/// Grouped bars with a name under each group (a wire, a stack).
pub fn labelled_bars(
    series: &[&str],
    y_desc: &str,
    groups: &[(&str, Vec<Option<f64>>)],
    show: fn(f64) -> String,
) -> Result<String, String> {
    labelled_bars_under(series, y_desc, groups, show, 1.2)
}

/// [`labelled_bars`] with the y axis reaching `headroom` times the tallest
/// bar: more room keeps the legend clear of tall bars at the right.
pub fn labelled_bars_under(
    series: &[&str],
    y_desc: &str,
    groups: &[(&str, Vec<Option<f64>>)],
    show: fn(f64) -> String,
    headroom: f64,
) -> Result<String, String> {
    let n = groups.len().max(1);
    let y_max = groups
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let y_hi = if y_max > 0.0 { y_max * headroom } else { 1.0 };
    let width = 0.8 / series.len().max(1) as f64;
    let names: Vec<&str> = groups.iter().map(|(name, _)| *name).collect();
    // Group i is centred on x = i: plotters then puts its "nice" labels on
    // the integers, which name the wires.
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-9 && i >= 0.0 {
            names.get(i as usize).copied().unwrap_or("").to_string()
        } else {
            String::new()
        }
    };
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..y_hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_labels(n)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| show(*y))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        for (j, name) in series.iter().enumerate() {
            let color = SERIES[j % SERIES.len()];
            let bar = |i: usize, v: f64| {
                let x0 = i as f64 - 0.4 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled())
            };
            chart
                .draw_series(groups.iter().enumerate().filter_map(|(i, (_, values))| {
                    values.get(j).copied().flatten().map(|v| bar(i, v))
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
            let style =
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(groups.iter().enumerate().map(|(i, (_, values))| {
                let v = values.get(j).copied().flatten();
                let x = i as f64 - 0.4 + (j as f64 + 0.46) * width;
                let text = v.map_or_else(|| "n/a".to_string(), show);
                Text::new(text, (x, v.unwrap_or(0.0)), style.clone())
            }))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// One line of the limit chart: `(streams asked, streams opened)` points.
pub struct OpenedSeries {
    pub label: String,
    pub color: RGBColor,
    /// Drawn dashed with triangles (more than one tab) instead of solid
    /// with circles.
    pub dashed: bool,
    /// Stroke width: a wider line drawn under a narrower one stays visible
    /// where the two coincide.
    pub width: u32,
    pub points: Vec<(f64, f64)>,
}

/// Streams opened against streams asked, log scales on both axes so the
/// few streams of HTTP/1.1 and the hundred of HTTP/2 both read; the
/// diagonal is "no limit". `levels` (the limits reached) are labelled on
/// both axes.
pub fn opened(series: &[OpenedSeries], levels: &[f64]) -> Result<String, String> {
    let most = series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.0.max(p.1))
        .fold(10.0, f64::max);
    let hi = most * 1.3;
    let mut keys: Vec<f64> = one_two_five(1.0, hi)
        .into_iter()
        .filter(|k| levels.iter().all(|l| k / l > 1.5 || l / k > 1.5))
        .chain(levels.iter().copied())
        .collect();
    keys.sort_by(f64::total_cmp);
    keys.dedup();
    svg(|root| {
        let mut chart = frame(root, 60).build_cartesian_2d(
            (0.8..hi).log_scale().with_key_points(keys.clone()),
            (0.8..hi).log_scale().with_key_points(keys),
        )?;
        chart
            .configure_mesh()
            .x_desc("streams asked (log scale)")
            .y_desc("streams opened (log scale)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()?;
        diagonal(&mut chart, 1.0, hi, "no limit (opened = asked)")?;
        // Lines are drawn last first, so that a wide line listed later lies
        // under a narrow one listed earlier where the two coincide; the
        // legend keeps the given order.
        for s in series.iter().rev() {
            let (line, marker) = opened_styles(s);
            let points = s.points.iter().copied();
            if s.dashed {
                chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, line))?;
                chart.draw_series(points.map(|p| TriangleMarker::new(p, 5, marker)))?;
            } else {
                chart.draw_series(LineSeries::new(points.clone(), line))?;
                chart.draw_series(points.map(|p| Circle::new(p, 3, marker)))?;
            }
        }
        for s in series {
            let ((style, marker), dashed) = (opened_styles(s), s.dashed);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    let line: DynElement<'static, _, _> = if dashed {
                        DashedPathElement::new(vec![(0, 0), (20, 0)], 6, 4, style).into_dyn()
                    } else {
                        PathElement::new(vec![(0, 0), (20, 0)], style).into_dyn()
                    };
                    let marker: DynElement<'static, _, _> = if dashed {
                        TriangleMarker::new((10, 0), 5, marker).into_dyn()
                    } else {
                        Circle::new((10, 0), 3, marker).into_dyn()
                    };
                    EmptyElement::at((x, y)) + line + marker
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// The dashed grey line y = x from `from` to `to`, labelled for the legend:
/// where a measured line would lie if nothing held it back.
pub fn diagonal<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    from: f64,
    to: f64,
    label: &str,
) -> Drawn
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(DashedLineSeries::new(
            [(from, from), (to, to)],
            4,
            4,
            grey.stroke_width(1),
        ))?
        .label(label)
        .legend(move |(x, y)| {
            DashedPathElement::new(vec![(x, y), (x + 20, y)], 4, 4, grey.stroke_width(1))
        });
    Ok(())
}

/// A series' line and marker: a wide line is drawn faded, so what lies on
/// it shows; markers are all alike.
fn opened_styles(s: &OpenedSeries) -> (ShapeStyle, ShapeStyle) {
    let fade = if s.width > 2 { 0.45 } else { 1.0 };
    (
        s.color.mix(fade).stroke_width(s.width),
        s.color.stroke_width(2),
    )
}

pub fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// Points grouped into one line per key (a wire, a stack), in the order
/// the keys first appear, each line sorted by x.
pub fn lines_by<K: PartialEq>(
    points: impl IntoIterator<Item = (K, (f64, f64))>,
) -> Vec<(K, Vec<(f64, f64)>)> {
    let mut lines: Vec<(K, Vec<(f64, f64)>)> = Vec::new();
    for (key, point) in points {
        match lines.iter_mut().find(|(k, _)| *k == key) {
            Some((_, line)) => line.push(point),
            None => lines.push((key, vec![point])),
        }
    }
    for (_, line) in &mut lines {
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// The frame of a chart with axes: its margins and the room for the x
/// labels, with `y_labels` pixels for the y labels (numbers of different
/// widths need different room).
pub fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(y_labels);
    builder
}

/// Runs `draw` on a white SVG canvas and returns the document.
pub fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partial_last_second_is_not_drawn() {
        assert_eq!(full_seconds(&[10, 20, 20, 3]), &[10, 20, 20]);
        assert_eq!(full_seconds(&[7]), &[7]);
        assert!(full_seconds(&[]).is_empty());
    }

    #[test]
    fn percentile_axis_reads_as_percentiles() {
        assert_eq!(percentile_label(1.0), "min");
        assert_eq!(percentile_label(2.0), "p50");
        assert_eq!(percentile_label(100.0), "p99");
        assert_eq!(percentile_label(1000.0), "p99.9");
        assert_eq!(percentile_label(100_000.0), "p99.999");
        assert_eq!(
            one_two_five(3.0, 600.0),
            vec![5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
    }

    #[test]
    fn curves_end_at_the_maximum() {
        let mut h = crate::result::new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let c = percentile_curve(&h);
        assert_eq!(c.first().unwrap().1, 1.0);
        assert_eq!(c.last().unwrap(), &(1000.0, 1000.0));
        assert!(c.windows(2).all(|p| p[0].1 <= p[1].1));
    }

    #[test]
    fn a_wire_that_received_nothing_still_gets_its_charts() {
        let r: crate::result::RunResult = serde_json::from_str(include_str!(
            "../../tests/fixtures/two-scenarios/result.json"
        ))
        .unwrap();
        let mut s = r.scenarios[0].clone();
        let empty = crate::result::summarize(&crate::result::new_histogram()).unwrap();
        for w in &mut s.wires {
            w.latency_us = empty.clone();
            w.connect_us = empty.clone();
            w.first_event_us = empty.clone();
            w.recorder.events_per_second.clear();
            w.server = None;
        }
        let charts = for_scenario(&s, "x").unwrap();
        assert_eq!(charts.len(), 6);
        assert!(charts[4].svg.contains("n/a"), "memory bars say n/a");
    }

    #[test]
    fn text_is_drawn_without_a_font_backend() {
        let s = bars(&["a"], "y", &[(Wire::SseH1, vec![Some(1500.0)])], |v| {
            us(v as u64)
        })
        .unwrap();
        assert!(s.contains("<text"), "{s}");
        assert!(s.contains("sse-h1") && s.contains("1.5ms"), "{s}");
    }
}
