//! The report's section on emulated links: per wire under each link, the
//! latency and delivery, the stalls (head-of-line blocking), the recovery
//! from outages and what the emulator itself cost; charts of p99 and of
//! the stall fraction against loss, and of the recovery time per outage.
//!
//! Every scenario that ran over a link also has its own feed section; this
//! one puts the links side by side.

use std::fmt::Write as _;

use super::document::{Block, Chart, Table};
use super::error::ReportError;
use super::format::{count, num, us};
use super::latency::latency_of;
use super::markdown::table as markdown_table;
use super::network_charts;
use crate::result::{NetworkResult, RunResult, ScenarioResult, WireResult};

/// The scenarios that ran over a link, in order.
fn over_links(r: &RunResult) -> Vec<&ScenarioResult> {
    r.scenarios.iter().filter(|s| s.link.is_some()).collect()
}

/// A link as the tables name it: `lossy-1% (RTT 50ms, loss 1 %)`.
pub fn link_label(s: &ScenarioResult) -> String {
    let Some(l) = &s.link else {
        return s.scenario.name.clone();
    };
    let mut parts = vec![format!("RTT {}", us((l.delay_ms * 2_000.0) as u64))];
    if l.jitter_ms > 0.0 {
        parts.push(format!("jitter ±{}", us((l.jitter_ms * 1_000.0) as u64)));
    }
    if l.loss > 0.0 {
        parts.push(format!("loss {} %", num(l.loss * 100.0)));
    }
    if let Some(bps) = l.rate_bps {
        parts.push(format!("{} Mbit/s", num(bps as f64 / 1e6)));
    }
    for o in &l.outages {
        parts.push(format!(
            "outage {} s at {} s",
            num(o.duration_s),
            num(o.start_s)
        ));
    }
    format!("{} ({})", s.scenario.name, parts.join(", "))
}

fn pct(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

/// Each wire of each scenario over a link, with its network figures.
fn rows(r: &RunResult) -> Vec<(&ScenarioResult, &WireResult, &NetworkResult)> {
    over_links(r)
        .into_iter()
        .flat_map(|s| {
            s.wires
                .iter()
                .filter_map(move |w| w.network.as_ref().map(|n| (s, w, n)))
        })
        .collect()
}

/// Latency and delivery per wire and link.
pub fn delivery_table(r: &RunResult) -> Table {
    let mut t = Table::numeric(&[
        "link",
        "wire",
        "events/s",
        "p50",
        "p99",
        "p99.9",
        "max",
        "reconnects",
        "lost",
        "dups",
        "gaps",
    ]);
    for (s, w, _) in rows(r) {
        let lat = latency_of(w);
        t.rows.push(vec![
            s.scenario.name.clone(),
            w.wire.to_string(),
            count(w.events_per_s),
            us(lat.p50),
            us(lat.p99),
            us(lat.p999),
            us(lat.max),
            count(w.reconnects as f64),
            count(w.lost as f64),
            count(w.duplicates as f64),
            count(w.gap_events as f64),
        ]);
    }
    t
}

/// Stalls per wire and link: how often, how long, how many streams at once.
pub fn stall_table(r: &RunResult) -> Table {
    let mut t = Table::numeric(&[
        "link",
        "wire",
        "stall after",
        "late events",
        "stalls",
        "streams/TCP conn",
        "streams stalled together",
        "hit every stream",
        "hit one stream",
        "stall p50",
        "stall max",
    ]);
    for (s, w, n) in rows(r) {
        let st = &n.stalls;
        t.rows.push(vec![
            s.scenario.name.clone(),
            w.wire.to_string(),
            us(n.stall_after_us),
            pct(st.stall_fraction),
            count(st.stalls as f64),
            format!("{:.1}", st.streams_per_connection),
            format!("{:.1}", st.streams_hit_mean),
            pct(st.hit_all_fraction),
            pct(st.hit_one_fraction),
            us(st.duration_us.p50),
            us(st.duration_us.max),
        ]);
    }
    t
}

/// Recovery per outage and wire, and what the keep-alive timeouts did.
pub fn outage_table(r: &RunResult) -> Table {
    let mut t = Table::numeric(&[
        "link",
        "outage",
        "wire",
        "streams",
        "recovered",
        "same TCP conn",
        "re-opened",
        "of which closed after",
        "not recovered",
        "recovery p50",
        "recovery p99",
        "recovery max",
        "server WS timeouts",
        "h2 conns re-made",
    ]);
    for (s, w, n) in rows(r) {
        for o in &n.outages {
            t.rows.push(vec![
                s.scenario.name.clone(),
                format!("{} s at {} s", num(o.duration_s), num(o.start_s)),
                w.wire.to_string(),
                count(o.streams as f64),
                count(o.recovered as f64),
                count(o.survived as f64),
                count(o.reopened as f64),
                count(o.closed_after_recovery as f64),
                count(o.not_recovered as f64),
                us(o.recovery_us.p50),
                us(o.recovery_us.p99),
                us(o.recovery_us.max),
                count(n.keepalive.server_ws_timeouts as f64),
                n.keepalive
                    .h2_reopened
                    .map_or_else(|| "–".into(), |v| count(v as f64)),
            ]);
        }
    }
    t
}

/// The emulator's own figures over each link's holds.
pub fn emulator_table(r: &RunResult) -> Table {
    let mut t = Table::numeric(&[
        "link",
        "packets/s",
        "CPU/packet",
        "CPU (of one core)",
        "forwarded",
        "lost (loss)",
        "lost (outage)",
        "lost (queue)",
        "kernel drops",
    ]);
    for s in over_links(r) {
        let Some(l) = &s.link else { continue };
        let e = &l.emulator;
        let core = if e.elapsed_s > 0.0 {
            e.total.cpu_us as f64 / 1e6 / e.elapsed_s
        } else {
            0.0
        };
        t.rows.push(vec![
            link_label(s),
            count(e.packets_per_s),
            format!("{:.1}µs", e.cpu_us_per_packet),
            pct(core),
            count(e.total.packets_forwarded as f64),
            count(e.total.dropped_loss as f64),
            count(e.total.dropped_outage as f64),
            count(e.total.dropped_queue as f64),
            count(e.total.dropped_overflow as f64),
        ]);
    }
    t
}

/// The section, or nothing when no scenario ran over a link.
pub fn blocks(r: &RunResult) -> Result<Vec<Block>, ReportError> {
    let links = over_links(r);
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![
        Block::Heading(2, "Emulated links".into()),
        Block::Paragraph(
            "Each scenario below ran over an emulated link between two network namespaces: \
             the server's kernel and the load generator's each run their own TCP (real \
             retransmissions, congestion control, RTO); delay, loss, rate and outages apply \
             per direction. Latency is of the events received during the hold."
                .into(),
        ),
        Block::List(links.iter().map(|s| link_label(s)).collect()),
        Block::Heading(3, "What the links did".into()),
        Block::List(findings(&links)),
        Block::Heading(3, "Latency and delivery".into()),
        Block::Table(delivery_table(r)),
        Block::Heading(3, "Stalls: head-of-line blocking".into()),
        Block::Paragraph(
            "A stall is a run of events of one stream that arrived later than the link's \
             one-way delay plus three round trips (`stall after`); its duration is its worst \
             event's lateness. For each stall, the other streams of the same TCP connection \
             that stalled at the same time are counted: over HTTP/2 every stream of a \
             connection waits behind one lost packet, over HTTP/1.1 and WebSocket a \
             connection carries one stream, so there every stall both hits every stream \
             of its connection and only one."
                .into(),
        ),
        Block::Table(stall_table(r)),
    ];
    let outages = outage_table(r);
    if !outages.rows.is_empty() {
        out.push(Block::Heading(3, "Outages".into()));
        out.push(Block::Paragraph(
            "Recovery is the time from the link coming back to each stream's next event. \
             `same TCP conn`: the stream kept its connection (TCP retransmitted what the \
             outage dropped, after its backed-off retransmission timer fired); `re-opened`: \
             the stream was opened again and resumed from its last id. Keep-alive timeouts \
             at play: the server pings each HTTP/2 connection every 5 s and closes it when \
             the pong is not back by the next ping; it pings each WebSocket every \
             keep-alive period (15 s) and closes it after twice that without a pong; SSE \
             over HTTP/1.1 has no timeout. The load generator, like EventSource, has none."
                .into(),
        ));
        out.push(Block::Table(outages));
    }
    out.push(Block::Heading(3, "The emulator".into()));
    out.push(Block::Paragraph(
        "The forwarder's own figures over the holds: `kernel drops` (packets the kernel \
         dropped before the emulator read them) must stay 0, or the emulator, not the \
         emulated link, limited the run."
            .into(),
    ));
    out.push(Block::Table(emulator_table(r)));
    let charts: Vec<Chart> = network_charts::charts(&links)?;
    if !charts.is_empty() {
        out.push(Block::Heading(3, "Charts".into()));
        out.extend(charts.into_iter().map(Block::Chart));
    }
    Ok(out)
}

/// Plain sentences from the numbers: per link, the spread of p99 across
/// the wires and how many streams a stall held at once; per outage, how
/// each wire came back.
pub fn findings(links: &[&ScenarioResult]) -> Vec<String> {
    let mut out = Vec::new();
    for s in links {
        let nets: Vec<(&WireResult, &NetworkResult)> = s
            .wires
            .iter()
            .filter_map(|w| w.network.as_ref().map(|n| (w, n)))
            .collect();
        let p99 = |w: &WireResult| latency_of(w).p99;
        let (Some(worst), Some(best)) = (
            nets.iter().max_by_key(|(w, _)| p99(w)),
            nets.iter().min_by_key(|(w, _)| p99(w)),
        ) else {
            continue;
        };
        let stalled: Vec<String> = nets
            .iter()
            .filter(|(_, n)| n.stalls.stalls > 0)
            .map(|(w, n)| {
                format!(
                    "{} {:.1} of {:.1}",
                    w.wire, n.stalls.streams_hit_mean, n.stalls.streams_per_connection
                )
            })
            .collect();
        let mut line = format!(
            "{}: p99 from {} ({}) to {} ({});",
            s.scenario.name,
            us(p99(best.0)),
            best.0.wire,
            us(p99(worst.0)),
            worst.0.wire
        );
        if stalled.is_empty() {
            line.push_str(" no stream stalled.");
        } else {
            let _ = write!(
                line,
                " streams stalled together per stall, of those on the TCP connection: {}.",
                stalled.join(", ")
            );
        }
        out.push(line);
        if let Some(bps) = s.link.as_ref().and_then(|l| l.rate_bps) {
            out.push(rate_finding(s, &nets, bps));
        }
        let outages = nets.first().map_or(0, |(_, n)| n.outages.len());
        for i in 0..outages {
            let each: Vec<String> = nets
                .iter()
                .filter_map(|(w, n)| n.outages.get(i).map(|o| (w, o)))
                .map(|(w, o)| {
                    let closed = match o.closed_after_recovery {
                        0 => String::new(),
                        n => format!(", {n} of them after their old connection delivered its backlog and closed"),
                    };
                    format!(
                        "{} after {} median ({} kept their connection, {} re-opened{closed}, {} not back)",
                        w.wire,
                        us(o.recovery_us.p50),
                        o.survived,
                        o.reopened,
                        o.not_recovered
                    )
                })
                .collect();
            if let Some(o) = nets.first().and_then(|(_, n)| n.outages.get(i)) {
                out.push(format!(
                    "{}: after the {} s outage: {}.",
                    s.scenario.name,
                    num(o.duration_s),
                    each.join("; ")
                ));
            }
        }
    }
    out
}

/// How much of a rate-limited link each wire filled during its hold: the
/// bytes the emulator forwarded from the server (every header included:
/// SSE or WebSocket framing, HTTP/2, TLS, TCP, IP) against the link's rate,
/// beside the events' JSON alone, so a link the feed saturates is said, not
/// left to be guessed from the latency.
fn rate_finding(s: &ScenarioResult, nets: &[(&WireResult, &NetworkResult)], bps: u64) -> String {
    let each: Vec<String> = nets
        .iter()
        .map(|(w, n)| {
            let json = w.bytes_per_s * 8.0 / 1e3;
            let sent = n
                .emulator
                .as_ref()
                .filter(|e| e.elapsed_s > 0.0)
                .map(|e| e.server_to_client.bytes_forwarded as f64 * 8.0 / e.elapsed_s);
            let link = match sent {
                Some(b) => format!(
                    "{:.0} kbit/s on the link ({:.0} % of it)",
                    b / 1e3,
                    b / bps as f64 * 100.0
                ),
                None => "n/m on the link".into(),
            };
            format!(
                "{} {link}, {json:.0} kbit/s of it the events' JSON, p99 {}",
                w.wire,
                us(latency_of(w).p99)
            )
        })
        .collect();
    format!(
        "{}: server to client over the link's {} Mbit/s during the hold: {}.",
        s.scenario.name,
        num(bps as f64 / 1e6),
        each.join("; ")
    )
}

/// The stall and outage tables as text, for the terminal.
pub fn summary(r: &RunResult) -> String {
    if over_links(r).is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(out, "\nstalls over the emulated links:");
    out.push_str(&markdown_table(&stall_table(r)));
    let outages = outage_table(r);
    if !outages.rows.is_empty() {
        let _ = writeln!(out, "\nrecovery from the links' outages:");
        out.push_str(&markdown_table(&outages));
    }
    let _ = writeln!(out, "\nthe link emulator:");
    out.push_str(&markdown_table(&emulator_table(r)));
    out
}

#[cfg(test)]
mod tests {
    use super::super::document::Document;
    use super::super::markdown;
    use super::*;
    use crate::measure::{LinkRecorder, LinkWatch};
    use crate::result::LinkTiming;

    const MS: u64 = 1_000_000;

    /// The two-scenario fixture, its scenarios turned into runs over a
    /// lossy link and an interrupted one, with figures made by the real
    /// recorders.
    fn over_links() -> RunResult {
        let mut r: RunResult = serde_json::from_str(include_str!(
            "../../tests/fixtures/two-scenarios/result.json"
        ))
        .unwrap();
        for (s, link) in r
            .scenarios
            .iter_mut()
            .zip(["delay=25ms,loss=1%", "delay=25ms,outage=2s@3s"])
        {
            let spec: netlab::LinkSpec = link.parse().unwrap();
            let timing = LinkTiming::of(&spec);
            let stats = netlab::EmulatorStats {
                taken_at: std::time::Instant::now(),
                elapsed: std::time::Duration::from_secs(10),
                client_to_server: netlab::DirectionStats {
                    packets_forwarded: 1_000,
                    cpu_us: 20_000,
                    ..Default::default()
                },
                server_to_client: netlab::DirectionStats {
                    packets_forwarded: 3_000,
                    dropped_loss: 30,
                    cpu_us: 60_000,
                    ..Default::default()
                },
            };
            s.link = Some(netlab::LinkReport::new(&spec, stats.report()));
            for w in &mut s.wires {
                let mut rec = LinkRecorder::new(&timing);
                let hold = 1_000 * MS;
                for stream in 0..4u64 {
                    let mut watch = LinkWatch::new(&timing, stream);
                    // HTTP/1.1 and WebSocket: a connection per stream.
                    watch.opened(stream, hold - MS, &mut rec);
                    watch.event(hold, hold, hold + 25 * MS);
                    watch.hand_over(&mut rec);
                    if stream < 2 {
                        watch.event(hold, hold + 100 * MS, hold + 5_500 * MS);
                        watch.event(hold, hold + 5_600 * MS, hold + 5_625 * MS);
                        watch.hand_over(&mut rec);
                    }
                    watch.finish(hold + 10_000 * MS, &mut rec);
                }
                w.network = Some(rec.result(&timing));
            }
        }
        r
    }

    #[test]
    fn the_section_shows_every_link_wire_and_outage() {
        let r = over_links();
        let render = |r: &RunResult| {
            let mut doc = Document::new("links".into());
            for block in blocks(r).unwrap() {
                doc.push(block);
            }
            (
                markdown::render(&doc),
                doc.charts().cloned().collect::<Vec<_>>(),
            )
        };
        let (md, charts) = render(&r);
        let md = &md;
        assert!(md.contains("## Emulated links"), "{md}");
        assert!(md.contains("- feed-20 (RTT 50.0ms, loss 1 %)"), "{md}");
        assert!(md.contains("outage 2 s at 3 s"), "{md}");
        assert!(md.contains("### Stalls: head-of-line blocking"));
        assert!(md.contains("| feed-50 | 2 s at 3 s |"), "{md}");
        assert!(
            md.contains("feed-50: after the 2 s outage: sse-h1 after"),
            "{md}"
        );
        for file in [
            "links-p99-by-loss.svg",
            "links-stalls-by-loss.svg",
            "links-recovery.svg",
        ] {
            let chart = charts.iter().find(|c| c.file == file);
            let chart = chart.unwrap_or_else(|| panic!("{file} is drawn"));
            roxmltree::Document::parse(&chart.svg).expect("well-formed SVG");
        }
        // A pure function of the result: the same bytes again.
        assert_eq!(render(&r).0, *md);
        let text = summary(&r);
        assert!(text.contains("stalls over the emulated links"), "{text}");
        assert!(text.contains("recovery from the links' outages"), "{text}");
    }

    #[test]
    fn a_rate_limited_link_says_how_much_of_it_the_feed_filled() {
        let mut r = over_links();
        let s = &mut r.scenarios[0];
        s.link.as_mut().unwrap().rate_bps = Some(1_500_000);
        let stats = netlab::EmulatorStats {
            taken_at: std::time::Instant::now(),
            elapsed: std::time::Duration::from_secs(10),
            client_to_server: netlab::DirectionStats::default(),
            server_to_client: netlab::DirectionStats {
                packets_forwarded: 30_000,
                bytes_forwarded: 9_000_000,
                ..Default::default()
            },
        };
        for w in &mut s.wires {
            w.bytes_per_s = 150_000.0;
            w.network.as_mut().unwrap().emulator = Some(stats.report());
        }
        let links: Vec<&ScenarioResult> = r.scenarios.iter().take(1).collect();
        let said = findings(&links);
        let line = said
            .iter()
            .find(|l| l.contains("over the link's 1.5 Mbit/s"))
            .unwrap_or_else(|| panic!("{said:?}"));
        // 30,000 packets and 9 MB from the server over 10 s (the fixture).
        assert!(
            line.contains(
                "sse-h1 7200 kbit/s on the link (480 % of it), 1200 kbit/s of it the events' JSON"
            ),
            "{line}"
        );
    }

    #[test]
    fn without_links_there_is_no_section() {
        let mut r = over_links();
        for s in &mut r.scenarios {
            s.link = None;
        }
        assert!(blocks(&r).unwrap().is_empty());
        assert!(summary(&r).is_empty());
    }
}
