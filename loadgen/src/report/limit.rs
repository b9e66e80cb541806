//! The connection-limit scenario's section: one table row per case of the
//! browser model (streams asked, opened, pending; what the plain GET met
//! while they were held; WebSockets alongside), the chart of streams opened
//! against streams asked, and findings generated from those numbers.
//!
//! The findings group the cases the way the limit works: one profile and
//! one host name per protocol (where the pool limit shows), then the cases
//! that spread the streams (more profiles, more host names) or share one
//! stream between tabs.

use std::collections::{BTreeMap, BTreeSet};

use super::charts::{self, OpenedSeries};
use super::document::{Align, Block, Chart, Table};
use super::error::ReportError;
use super::format::{num, us};
use crate::result::ScenarioResult;
use crate::result::{GetProbe, LimitCaseResult, LimitResult, Protocol};
use crate::wire::Wire;

/// The connection-limit blocks of a scenario (none without a `limit`
/// section); its chart is `<stem>-opened.svg`.
pub fn blocks(s: &ScenarioResult, stem: &str) -> Result<Vec<Block>, ReportError> {
    let Some(l) = s.limit() else {
        return Ok(Vec::new());
    };
    Ok(vec![
        Block::Heading(
            2,
            format!("Scenario {}: connection limits", s.scenario.name),
        ),
        Block::Paragraph(model_line(l)),
        Block::Table(table(l)),
        Block::Chart(chart(l, stem)?),
    ])
}

/// How the browser model was set up, so the table can be read.
fn model_line(l: &LimitResult) -> String {
    let announced = match l.h2_announced_max_streams {
        None => format!(
            "the server announced no SETTINGS_MAX_CONCURRENT_STREAMS, so the browser's default \
             of {} applies",
            l.spec.h2_default_streams
        ),
        Some(v) => format!("the server announced {v}"),
    };
    format!(
        "A browser model opens EventSources against the real server: over HTTP/1.1 at most {} \
         connections per group (profile and host name), shared by the profile's tabs, later \
         streams queued; over HTTP/2 one connection per origin carrying at most {} streams ({announced}). \
         Each case holds its streams (first event awaited up to {} ms, feed at {} events/s), \
         then sends a plain GET /info to the first host name; when it has no answer after {} ms, \
         the oldest open streams are closed to free a slot. WebSockets are opened outside the \
         pools. Cases are named protocol, tabs x streams per tab, then extras.",
        l.spec.h1_per_host,
        l.h2_streams_in_force,
        l.spec.settle_ms,
        num(l.spec.rate_hz),
        l.spec.get_cap_ms,
    )
}

/// One row per case.
fn table(l: &LimitResult) -> Table {
    let mut t = Table::numeric(&[
        "case",
        "streams asked",
        "opened",
        "pending",
        "conns",
        "1st event p50",
        "1st event max",
        "GET while held",
        "WS open/asked",
        "workaround",
    ]);
    t.align[7] = Align::Left;
    t.align[9] = Align::Left;
    for c in &l.cases {
        let first = |v: u64| {
            if c.first_event_us.count == 0 {
                "-".to_string()
            } else {
                us(v)
            }
        };
        let pending = if c.streams_failed > 0 {
            format!("{} (+{} failed)", c.streams_pending, c.streams_failed)
        } else {
            c.streams_pending.to_string()
        };
        t.rows.push(vec![
            c.label.clone(),
            c.streams_asked.to_string(),
            c.streams_opened.to_string(),
            pending,
            c.connections.to_string(),
            first(c.first_event_us.p50),
            first(c.first_event_us.max),
            get_text(&c.get),
            format!("{}/{}", c.ws_opened, c.ws_asked),
            c.workaround.clone(),
        ]);
    }
    t
}

/// What the plain GET met: `0.6 ms`, or `stalled >1000 ms, then 0.9 ms
/// after 3 closed`.
fn get_text(g: &GetProbe) -> String {
    if !g.issued {
        return "-".into();
    }
    let answer = match (&g.error, g.latency_ms) {
        (Some(e), _) => format!("error: {e}"),
        (None, Some(ms)) if !g.stalled => format!("{ms:.1} ms"),
        _ => String::new(),
    };
    if !g.stalled {
        return if answer.is_empty() {
            "no answer".into()
        } else {
            answer
        };
    }
    let stalled = format!("stalled >{} ms", g.cap_ms);
    match (g.after_release_ms, g.released, &g.error) {
        (_, _, Some(e)) => format!("{stalled}, then error: {e}"),
        (Some(after), n, None) => format!("{stalled}, then {after:.1} ms after {n} closed"),
        (None, 0, None) => stalled,
        (None, n, None) => format!("{stalled}, still waiting {} ms after {n} closed", g.cap_ms),
    }
}

/// A case with one profile, one host name and a stream per EventSource:
/// where the pool limit itself shows.
fn plain(c: &LimitCaseResult) -> bool {
    c.case.profiles == 1 && c.case.hosts == 1 && !c.case.shared_stream
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::H1 => "HTTP/1.1",
        Protocol::H2 => "HTTP/2",
    }
}

/// As the case labels name it.
fn short_name(p: Protocol) -> &'static str {
    match p {
        Protocol::H1 => "h1",
        Protocol::H2 => "h2",
    }
}

fn protocol_wire(p: Protocol) -> Wire {
    match p {
        Protocol::H1 => Wire::SseH1,
        Protocol::H2 => Wire::SseH2,
    }
}

fn tabs(n: usize) -> String {
    format!("{n} tab{}", if n == 1 { "" } else { "s" })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Streams opened against streams asked, one line per protocol and tab
/// count, for the plain cases.
fn chart(l: &LimitResult, stem: &str) -> Result<Chart, ReportError> {
    let mut lines: BTreeMap<(Protocol, usize), Vec<(f64, f64)>> = BTreeMap::new();
    for c in l.cases.iter().filter(|c| plain(c)) {
        lines
            .entry((c.case.protocol, c.case.tabs))
            .or_default()
            .push((c.streams_asked as f64, c.streams_opened as f64));
    }
    let mut levels = Vec::new();
    let series: Vec<OpenedSeries> = lines
        .into_iter()
        .map(|((p, t), mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if points.iter().any(|(asked, opened)| opened < asked) {
                levels.push(points.iter().map(|p| p.1).fold(0.0, f64::max));
            }
            let base = charts::wire_color(protocol_wire(p));
            OpenedSeries {
                label: format!("{} {}", short_name(p), tabs(t)),
                color: base,
                dashed: t > 1,
                // HTTP/2 wide and under HTTP/1.1: up to the HTTP/1.1
                // limit their lines coincide.
                width: match p {
                    Protocol::H1 => 2,
                    Protocol::H2 => 5,
                },
                points,
            }
        })
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let file = format!("{stem}-opened.svg");
    let svg = charts::opened(&series, &levels).map_err(|reason| ReportError::Chart {
        chart: file.clone(),
        reason,
    })?;
    Ok(Chart {
        file,
        title: "Streams opened against streams asked (log scales)".into(),
        svg,
    })
}

/// The findings for a connection-limit section, one sentence each.
pub fn findings(l: &LimitResult) -> Vec<String> {
    let mut out = Vec::new();
    for p in [Protocol::H1, Protocol::H2] {
        let cases: Vec<&LimitCaseResult> = l
            .cases
            .iter()
            .filter(|c| c.case.protocol == p && plain(c))
            .collect();
        if !cases.is_empty() {
            out.push(pool_limit(p, &cases, l.spec.get_cap_ms));
        }
    }
    let spread: Vec<String> = l
        .cases
        .iter()
        .filter(|c| !plain(c))
        .map(spread_case)
        .collect();
    if !spread.is_empty() {
        let mut kinds = Vec::new();
        let any = |f: fn(&LimitCaseResult) -> bool| l.cases.iter().any(f);
        if any(|c| c.case.profiles > 1) {
            kinds.push("more profiles");
        }
        if any(|c| c.case.hosts > 1) {
            kinds.push("more host names");
        }
        if any(|c| c.case.shared_stream) {
            kinds.push("one stream shared by the tabs");
        }
        out.push(format!("With {}: {}.", kinds.join(", "), spread.join("; ")));
    }
    if let Some(f) = websockets(l) {
        out.push(f);
    }
    out
}

/// One protocol's plain cases: up to how many streams everything opened,
/// the most ever open past that, and what the GET met.
fn pool_limit(p: Protocol, cases: &[&LimitCaseResult], cap_ms: u64) -> String {
    let tab_counts: BTreeSet<usize> = cases.iter().map(|c| c.case.tabs).collect();
    let tab_counts: Vec<String> = tab_counts.iter().map(|t| t.to_string()).collect();
    let mut s = format!(
        "{} (one profile, one host name, {} tab{}): ",
        protocol_name(p),
        tab_counts.join(" and "),
        if tab_counts == ["1"] { "" } else { "s" }
    );
    let short = |c: &&&LimitCaseResult| c.streams_opened < c.streams_asked;
    let first_short = cases.iter().filter(short).map(|c| c.streams_asked).min();
    let full: Vec<&&LimitCaseResult> = cases
        .iter()
        .filter(|c| first_short.is_none_or(|a| c.streams_asked < a))
        .collect();
    if let Some(up_to) = full.iter().map(|c| c.streams_asked).max() {
        let conns: BTreeSet<usize> = full.iter().map(|c| c.connections).collect();
        let conns = match (conns.first(), conns.last()) {
            (Some(lo), Some(hi)) if lo == hi => {
                format!("each on {}", plural(*lo, "connection", "connections"))
            }
            (_, Some(hi)) => format!("on at most {hi} connections"),
            _ => String::new(),
        };
        s.push_str(&format!("every stream opened up to {up_to} asked, {conns}"));
    }
    let Some(first_short) = first_short else {
        s.push_str(&format!("; the plain GET {}.", get_summary(cases, cap_ms)));
        return s;
    };
    let most = cases.iter().map(|c| c.streams_opened).max().unwrap_or(0);
    let largest = cases
        .iter()
        .filter(|c| c.streams_asked >= first_short)
        .fold(None::<&&LimitCaseResult>, |best, c| match best {
            Some(b) if b.streams_asked >= c.streams_asked => Some(b),
            _ => Some(c),
        });
    if !full.is_empty() {
        s.push_str("; past that ");
    }
    s.push_str(&format!("never more than {most} open"));
    if let Some(c) = largest {
        s.push_str(&format!(
            " ({}: {} of {}, {} pending)",
            c.label, c.streams_opened, c.streams_asked, c.streams_pending
        ));
    }
    let (at, rest): (Vec<&LimitCaseResult>, Vec<&LimitCaseResult>) =
        cases.iter().partition(|c| c.streams_opened == most);
    let stalled: Vec<&&LimitCaseResult> = at.iter().filter(|c| c.get.stalled).collect();
    let which = if stalled.len() == at.len() && at.len() == 1 {
        "the one case".to_string()
    } else if stalled.len() == at.len() {
        format!("all {} cases", at.len())
    } else {
        format!("{} of the {} cases", stalled.len(), at.len())
    };
    s.push_str(&format!(
        ". The plain GET stalled past {cap_ms} ms in {which} with {most} streams open"
    ));
    let after: Vec<f64> = stalled
        .iter()
        .filter_map(|c| c.get.after_release_ms)
        .collect();
    if !after.is_empty() {
        s.push_str(&format!(
            "; it was answered {} ms after the oldest open streams were closed{}",
            range(&after),
            if after.len() == stalled.len() {
                String::new()
            } else {
                format!(" in {} of them", after.len())
            }
        ));
    }
    let waited: Vec<&&&LimitCaseResult> = stalled
        .iter()
        .filter(|c| c.get.after_release_ms.is_none() && c.get.error.is_none())
        .collect();
    if !waited.is_empty() {
        let behind: BTreeSet<usize> = waited.iter().map(|c| c.get.queued_behind).collect();
        let many = behind.iter().any(|n| *n != 1);
        let behind: Vec<String> = behind.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!(
            ", and still waited in {} (with {} {} queued ahead of it)",
            waited.len(),
            behind.join(" or "),
            if many { "streams" } else { "stream" }
        ));
    }
    if !rest.is_empty() {
        let other = if rest.len() == 1 {
            "the other case".to_string()
        } else {
            format!("the other {} cases", rest.len())
        };
        s.push_str(&format!(
            "; in {other} it was {}",
            get_summary(&rest, cap_ms)
        ));
    }
    s.push('.');
    s
}

/// `answered in 0.4–0.7 ms`, `stalled past 1000 ms in 2 of 5, answered in
/// 0.5–0.6 ms in 3`.
fn get_summary(cases: &[&LimitCaseResult], cap_ms: u64) -> String {
    let stalled = cases.iter().filter(|c| c.get.stalled).count();
    let answered: Vec<f64> = cases
        .iter()
        .filter(|c| !c.get.stalled)
        .filter_map(|c| c.get.latency_ms)
        .collect();
    let mut parts = Vec::new();
    if stalled > 0 {
        parts.push(format!(
            "stalled past {cap_ms} ms in {} of {}",
            stalled,
            cases.len()
        ));
    }
    if !answered.is_empty() {
        parts.push(format!(
            "answered in {} ms{}",
            range(&answered),
            if stalled > 0 {
                format!(" in {}", answered.len())
            } else {
                String::new()
            }
        ));
    }
    if parts.is_empty() {
        "not answered".into()
    } else {
        parts.join(", ")
    }
}

/// `0.4–0.7`, or `0.5` when all are equal at this precision.
fn range(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = (format!("{lo:.1}"), format!("{hi:.1}"));
    if lo == hi {
        lo
    } else {
        format!("{lo}–{hi}")
    }
}

/// A case beyond one profile and host name, in a few words.
fn spread_case(c: &LimitCaseResult) -> String {
    let how = if c.case.shared_stream {
        format!(
            "{} streams in {} fed from {} on {}",
            c.streams_opened,
            tabs(c.case.tabs * c.case.profiles),
            plural(c.pools, "shared stream", "shared streams"),
            plural(c.connections, "connection", "connections")
        )
    } else {
        format!(
            "{} of {} open on {} ({})",
            c.streams_opened,
            c.streams_asked,
            plural(c.connections, "connection", "connections"),
            plural(c.pools, "pool", "pools")
        )
    };
    format!("{}: {how}, GET {}", c.label, get_text(&c.get))
}

/// WebSockets opened beside the streams, above all where streams waited.
fn websockets(l: &LimitResult) -> Option<String> {
    let with: Vec<&LimitCaseResult> = l.cases.iter().filter(|c| c.ws_asked > 0).collect();
    if with.is_empty() {
        return None;
    }
    let sum = |cs: &[&LimitCaseResult], f: fn(&LimitCaseResult) -> usize| {
        cs.iter().map(|c| f(c)).sum::<usize>()
    };
    let mut s = format!(
        "WebSockets beside the streams: {} of {} opened in {}",
        sum(&with, |c| c.ws_opened),
        sum(&with, |c| c.ws_asked),
        plural(with.len(), "case", "cases")
    );
    let waiting: Vec<&LimitCaseResult> = with
        .iter()
        .copied()
        .filter(|c| c.streams_pending > 0)
        .collect();
    if !waiting.is_empty() {
        s.push_str(&format!(
            ", {} of {} in the {} where streams were left pending",
            sum(&waiting, |c| c.ws_opened),
            sum(&waiting, |c| c.ws_asked),
            plural(waiting.len(), "case", "cases")
        ));
    }
    let failed = sum(&with, |c| c.ws_failed);
    if failed > 0 {
        s.push_str(&format!("; {failed} failed"));
    }
    s.push('.');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::RunResult;

    fn limit() -> LimitResult {
        let r: RunResult =
            serde_json::from_str(include_str!("../../tests/fixtures/limit/result.json")).unwrap();
        r.scenarios[0].limit().cloned().unwrap()
    }

    #[test]
    fn the_get_reads_as_what_it_met() {
        let l = limit();
        let by = |label: &str| &l.cases.iter().find(|c| c.label == label).unwrap().get;
        assert_eq!(get_text(by("h1 1x2 +1ws")), "0.6 ms");
        assert_eq!(
            get_text(by("h1 1x8 +1ws")),
            "stalled >1000 ms, then 0.9 ms after 3 closed"
        );
        assert_eq!(
            get_text(by("h1 1x12 +1ws")),
            "stalled >1000 ms, still waiting 1000 ms after 6 closed"
        );
    }

    #[test]
    fn findings_follow_the_numbers() {
        let mut l = limit();
        let f = findings(&l).join("\n");
        assert!(
            f.contains("HTTP/1.1 (one profile, one host name, 1 and 2 tabs): every stream opened up to 6 asked"),
            "{f}"
        );
        assert!(
            f.contains("never more than 6 open (h1 1x12 +1ws: 6 of 12, 6 pending)"),
            "{f}"
        );
        assert!(
            f.contains("never more than 100 open (h2 1x120: 100 of 120, 20 pending)"),
            "{f}"
        );
        assert!(f.contains("h1 4x3 shared-stream: 12 streams in 4 tabs fed from 1 shared stream on 1 connection"), "{f}");
        // Other numbers, other findings: a limit of 8 is reported as 8.
        for c in &mut l.cases {
            if c.case.protocol == Protocol::H1 && plain(c) {
                c.streams_opened = c.streams_asked.min(8);
            }
        }
        let f = findings(&l).join("\n");
        assert!(f.contains("every stream opened up to 8 asked"), "{f}");
        assert!(f.contains("never more than 8 open"), "{f}");
    }
}
