//! The report's first section: SSE or WebSocket, for the reader's case,
//! answered from this run's numbers before any table.
//!
//! Every sentence is built from a measured figure and links to the section
//! it comes from; a sentence whose data the run lacks is left out, so two
//! runs with different numbers read differently, and a run that measured
//! less says less. What a lossy link and an outage do comes from the
//! emulated-link scenarios (run as root), when the run has them.

use super::choose;
use super::document::Block;
use super::format::{bytes, count, cpu_us, us};
use super::run_facts::{p99, server_cost, Facts, FeedRun};
use crate::result::{FaultWire, Protocol, RunResult};
use crate::wire::Wire;

/// `[text](#anchor)`: a link both renderers show as one.
pub fn link(text: &str, anchor: &str) -> String {
    format!("[{text}]({anchor})")
}

/// The Answer heading, its paragraphs and the choose table.
pub fn blocks(result: &RunResult) -> Vec<Block> {
    let facts = Facts::of(result);
    let paragraphs: Vec<String> = [
        browser_h1(&facts),
        http2(&facts),
        cost(&facts),
        latency(&facts),
        outage(&facts),
        lossy_link(&facts),
        link_outage(&facts),
        exchange(&facts),
        stacks(&facts),
        team(&facts),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = vec![Block::Heading(2, "Answer".into())];
    if paragraphs.is_empty() {
        out.push(Block::Paragraph(
            "This run measured nothing the answer draws on (no feed, limit, chat, echo or \
             faults scenario)."
                .into(),
        ));
    }
    out.extend(paragraphs.into_iter().map(Block::Paragraph));
    out.push(Block::Heading(3, "Choose".into()));
    out.push(Block::Paragraph(
        "Each cell is the measured fact that decides the choice in that situation.".into(),
    ));
    out.push(Block::Table(choose::table(&facts)));
    out
}

/// Can a browser hold the streams it needs over HTTP/1.1?
fn browser_h1(f: &Facts) -> Option<String> {
    let (l, anchor) = f.limit.as_ref()?;
    let cases = f.plain_cases(Protocol::H1);
    let worst = cases
        .iter()
        .filter(|c| c.streams_pending > 0)
        .max_by_key(|c| (c.streams_pending, c.streams_asked))?;
    let most_open = cases.iter().map(|c| c.streams_opened).max().unwrap_or(0);
    let mut s = format!(
        "Over HTTP/1.1 a browser holds at most {most_open} event streams per profile and host \
         name: asked for {}, it opened {} and left {} waiting without an error ({}).",
        worst.streams_asked,
        worst.streams_opened,
        worst.streams_pending,
        link(&format!("limit, case {}", worst.label), anchor)
    );
    let stalled: Vec<_> = cases
        .iter()
        .filter(|c| c.get.issued && c.get.stalled)
        .collect();
    if let Some(c) = stalled.first() {
        s.push_str(&format!(
            " Any other request to that host then waits too: with {} streams open a plain GET \
             stalled past {} ms ({} of the {} cases).",
            l.spec.h1_per_host,
            c.get.cap_ms,
            stalled.len(),
            cases.len(),
        ));
    }
    let ws: Vec<_> = l.cases.iter().filter(|c| c.ws_asked > 0).collect();
    let (ws_open, ws_asked) = ws
        .iter()
        .fold((0, 0), |(o, a), c| (o + c.ws_opened, a + c.ws_asked));
    if ws_asked > 0 {
        s.push_str(&format!(
            " WebSockets are outside that pool: {ws_open} of {ws_asked} opened beside the streams."
        ));
    }
    Some(s)
}

/// What HTTP/2 changes: streams per connection, and the edge's limit.
fn http2(f: &Facts) -> Option<String> {
    let mut parts = Vec::new();
    if let Some((l, anchor)) = &f.limit {
        let cases = f.plain_cases(Protocol::H2);
        if let Some(c) = cases.iter().max_by_key(|c| c.streams_asked) {
            let limit = match l.h2_announced_max_streams {
                Some(n) => format!("the server announced {n}"),
                None => format!(
                    "the server announced no limit, so the browser's default of {} applied",
                    l.h2_streams_in_force
                ),
            };
            parts.push(format!(
                "Over HTTP/2 the streams share one connection per origin: asked for {}, the \
                 browser opened {} on {} connection{} ({limit}; {}).",
                c.streams_asked,
                c.streams_opened,
                c.connections,
                if c.connections == 1 { "" } else { "s" },
                link(&format!("limit, case {}", c.label), anchor)
            ));
        }
    }
    let mut edges: Vec<String> = f
        .edge
        .iter()
        .filter_map(|s| {
            let e = s.server.edge.as_ref()?;
            Some(format!(
                "{} {}: {}",
                e.kind,
                e.config,
                e.h2_max_concurrent_streams
                    .map_or("no limit set".into(), |n| format!("{n} streams"))
            ))
        })
        .collect();
    edges.dedup();
    if !edges.is_empty() {
        parts.push(format!(
            "Behind an edge the edge's own limit on streams per HTTP/2 connection applies ({}; {}).",
            edges.join(", "),
            link("through a proxy", &f.proxy_anchor)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The cheapest SSE wire against WebSocket, in memory and CPU, at the most
/// connections this run held.
fn cost(f: &Facts) -> Option<String> {
    let run = f.largest()?;
    let ws = run.wire(Wire::WsH1).and_then(server_cost)?;
    let sse: Vec<(Wire, (f64, f64))> = run
        .scenario
        .wires
        .iter()
        .filter(|w| !w.wire.is_ws())
        .filter_map(|w| Some((w.wire, server_cost(w)?)))
        .collect();
    let (mem_wire, (mem, _)) = sse.iter().min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))?;
    let (cpu_wire, (_, cpu)) = sse.iter().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    Some(format!(
        "At {} connections ({}), server memory per connection was {} on {mem_wire} against {} \
         on ws-h1 ({}), and server CPU per delivered event {} on {cpu_wire} against {} on ws-h1 \
         ({}).",
        count(run.connections() as f64),
        super::answer::link(&run.scenario.scenario.name, &run.anchor),
        bytes(*mem),
        bytes(ws.0),
        compared(*mem, ws.0),
        cpu_us(*cpu),
        cpu_us(ws.1),
        compared(*cpu, ws.1),
    ))
}

/// `"2.81× less for SSE"`, `"1.20× more for SSE"`, or `"within 5 %"`.
pub fn compared(sse: f64, ws: f64) -> String {
    if sse <= 0.0 || ws <= 0.0 {
        return "not comparable".into();
    }
    let r = ws / sse;
    if (r - 1.0).abs() < super::findings::NOISE {
        "within 5 %".into()
    } else if r > 1.0 {
        format!("{r:.2}× less for SSE")
    } else {
        format!("{:.2}× more for SSE", 1.0 / r)
    }
}

/// p99 latency of every wire at each load.
fn latency(f: &Facts) -> Option<String> {
    let loads: Vec<String> = f.feed.iter().filter_map(latency_at).collect();
    if loads.is_empty() {
        return None;
    }
    let lost_in = |saturation: bool| -> u64 {
        f.feed
            .iter()
            .filter(|r| r.scenario.scenario.saturation == saturation)
            .flat_map(|r| &r.scenario.wires)
            .filter(|w| w.measured.loss)
            .map(|w| w.lost)
            .sum()
    };
    let mut s = format!(
        "Latency p99 (receive time minus scheduled send time, one host clock): {}. Events lost \
         across these loads: {}",
        loads.join("; "),
        count(lost_in(false) as f64)
    );
    // A saturation step offers more than a wire may carry: what had not
    // arrived by the end is its measure, said apart from real losses.
    let short: Vec<String> = f
        .feed
        .iter()
        .filter(|r| r.scenario.scenario.saturation)
        .flat_map(|r| r.scenario.wires.iter().map(move |w| (r, w)))
        .filter(|(_, w)| w.measured.loss && w.lost > 0)
        .map(|(r, w)| {
            format!(
                "{} on {} ({})",
                count(w.lost as f64),
                w.wire,
                link(&r.scenario.scenario.name, &r.anchor)
            )
        })
        .collect();
    if short.is_empty() {
        s.push('.');
    } else {
        s.push_str(&format!(
            "; past saturation, events not delivered by the end of the step: {}.",
            short.join(", ")
        ));
    }
    Some(s)
}

fn latency_at(run: &FeedRun) -> Option<String> {
    let wires: Vec<String> = run
        .scenario
        .wires
        .iter()
        .filter_map(|w| Some(format!("{} {}", w.wire, us(p99(w)?))))
        .collect();
    (!wires.is_empty()).then(|| {
        format!(
            "{} at {} connections ({})",
            link(&run.scenario.scenario.name, &run.anchor),
            count(run.connections() as f64),
            wires.join(", ")
        )
    })
}

/// Reconnect within the replay ring, and what an outage past it does.
fn outage(f: &Facts) -> Option<String> {
    let faults = f.faults?;
    let within: Vec<&FaultWire> = faults
        .wires
        .iter()
        .filter(|w| w.phase == "within")
        .collect();
    let beyond: Vec<&FaultWire> = faults
        .wires
        .iter()
        .filter(|w| w.phase == "beyond")
        .collect();
    let mut s = String::new();
    if !within.is_empty() {
        let lost: u64 = within.iter().map(|w| w.lost).sum();
        s.push_str(&format!(
            "After a dropped connection (server retry {} ms) every wire reconnected and resumed \
             from the replay ring of {} events: reconnect p50 {}; {} events lost ({}).",
            faults.spec.retry_ms,
            faults.spec.replay,
            per_wire(&within, |w| us(w.reconnect_us.p50)),
            count(lost as f64),
            link("faults", &f.extras_anchor)
        ));
    }
    if !beyond.is_empty() {
        let silent: u64 = beyond.iter().map(|w| w.lost).sum();
        s.push_str(&format!(
            "{}After an outage longer than the ring the server named the missed ids in gap \
             events instead of dropping them silently ({}; silently lost: {}).",
            if s.is_empty() { "" } else { " " },
            per_wire(&beyond, |w| format!("{} ids", count(w.gap_ids as f64))),
            count(silent as f64)
        ));
    }
    (!s.is_empty()).then_some(s)
}

/// The lossiest emulated link: p99 per wire, and how many streams an
/// HTTP/2 stall held back against one for HTTP/1.1 and WebSocket.
fn lossy_link(f: &Facts) -> Option<String> {
    let (s, loss) = f
        .network
        .iter()
        .filter_map(|s| {
            let l = s.scenario.link.as_ref()?;
            (l.loss_percent > 0.0 && l.rate_bps.is_none() && l.outages.is_empty())
                .then_some((*s, l.loss_percent))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let link_spec = s.scenario.link.as_ref()?;
    let p99s: Vec<String> = s
        .wires
        .iter()
        .filter_map(|w| Some(format!("{} on {}", us(p99(w)?), w.wire)))
        .collect();
    if p99s.is_empty() {
        return None;
    }
    let mut out = format!(
        "On an emulated link with {} % loss and an RTT of {} ms ({}), p99 was {}.",
        loss,
        link_spec.rtt().as_millis(),
        link(&s.scenario.name, &f.network_anchor),
        p99s.join(", ")
    );
    let late: Vec<String> = s
        .wires
        .iter()
        .filter_map(|w| {
            let n = w.network.as_ref()?;
            Some(format!(
                "{} {:.1} %",
                w.wire,
                n.stalls.stall_fraction * 100.0
            ))
        })
        .collect();
    if !late.is_empty() {
        out.push_str(&format!(
            " Events later than the link's delay plus 3 RTT: {}.",
            late.join(", ")
        ));
    }
    // The HTTP/2 wire whose stalls held back the most streams at once.
    let h2 = s
        .wires
        .iter()
        .filter_map(|w| {
            let n = w.network.as_ref()?;
            (w.wire.is_h2() && n.stalls.stalls > 0).then_some((w.wire, &n.stalls))
        })
        .max_by(|a, b| a.1.streams_hit_mean.total_cmp(&b.1.streams_hit_mean));
    if let Some((wire, st)) = h2 {
        out.push_str(&format!(
            " Over HTTP/2 the streams share a TCP connection, so a stall there holds back \
             several at once: on {wire} {:.1} of the {:.0} streams of a connection per stall on \
             average ({:.0} % of its stalls hit every one), where an HTTP/1.1 or WebSocket stall \
             held back only its own stream.",
            st.streams_hit_mean,
            st.streams_per_connection,
            st.hit_all_fraction * 100.0
        ));
    }
    let lost: u64 = s.wires.iter().map(|w| w.lost).sum();
    out.push_str(&format!(" {} events lost.", count(lost as f64)));
    Some(out)
}

/// The longest emulated outage: time from the link's return to the next
/// event, and which wires kept their connections.
fn link_outage(f: &Facts) -> Option<String> {
    let (s, outage_s) = f
        .network
        .iter()
        .filter_map(|s| {
            let o = s
                .scenario
                .link
                .as_ref()?
                .outages
                .iter()
                .map(|o| o.duration.as_secs_f64());
            o.reduce(f64::max).map(|d| (*s, d))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let per: Vec<String> = s
        .wires
        .iter()
        .filter_map(|w| {
            let o = w.network.as_ref()?.outages.last()?;
            let kept = if o.survived == o.streams {
                "kept its connections".to_string()
            } else {
                format!(
                    "{} of {} streams re-opened and resumed",
                    o.reopened, o.streams
                )
            };
            Some(format!(
                "{} {} (next event p50 {})",
                w.wire,
                kept,
                us(o.recovery_us.p50)
            ))
        })
        .collect();
    if per.is_empty() {
        return None;
    }
    let lost: u64 = s.wires.iter().map(|w| w.lost).sum();
    Some(format!(
        "After the link went away for {outage_s:.0} s ({}): {}; {} events lost.",
        link(&s.scenario.name, &f.network_anchor),
        per.join(", "),
        count(lost as f64)
    ))
}

fn per_wire(wires: &[&FaultWire], show: impl Fn(&FaultWire) -> String) -> String {
    wires
        .iter()
        .map(|w| format!("{} {}", w.wire, show(w)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Round trips (echo) and streamed answers (chat).
fn exchange(f: &Facts) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(e) = f.echo {
        let most = e.levels.iter().map(|l| l.clients).max()?;
        let at: Vec<String> = e
            .levels
            .iter()
            .filter(|l| l.clients == most)
            .map(|l| format!("{} {}", l.wire, us(l.rtt_us.p50)))
            .collect();
        parts.push(format!(
            "A round trip (the client sends, the answer comes back on its stream; SSE sends with \
             a POST) took at {} clients p50 {} ({}).",
            count(most as f64),
            at.join(", "),
            link("echo", &f.extras_anchor)
        ));
    }
    if let Some(c) = f.chat {
        let ttft: Vec<String> = c
            .wires
            .iter()
            .map(|w| {
                format!(
                    "{} {} (inter-token p99 {})",
                    w.wire,
                    us(w.ttft_us.p50),
                    us(w.inter_token_us.p99)
                )
            })
            .collect();
        parts.push(format!(
            "Streamed answers ({} users, {} tokens at {} tokens/s): time to first token p50 {} ({}).",
            c.spec.users,
            c.spec.tokens,
            super::format::num(c.spec.token_rate),
            ttft.join(", "),
            link("chat", &f.extras_anchor)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Other stacks, when the run compared them.
fn stacks(f: &Facts) -> Option<String> {
    f.stacks.then(|| {
        format!(
            "Other server stacks ran the same wires: their held loads and memory per connection \
             are compared in {}.",
            link("stacks side by side", &f.stacks_anchor)
        )
    })
}

/// What each choice asks of the team, with the figures that show it.
fn team(f: &Facts) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(faults) = f.faults {
        let of = |sse: bool| {
            faults
                .wires
                .iter()
                .filter(|w| w.phase == "within" && w.wire.is_ws() != sse)
                .map(|w| w.reconnect_us.p50)
                .max()
        };
        if let (Some(sse), Some(ws)) = (of(true), of(false)) {
            parts.push(format!(
                "SSE's EventSource reconnects by itself after the server's retry and resumes with \
                 Last-Event-ID (reconnect p50 up to {} here); a WebSocket client needs its own \
                 reconnect and resume code (this project's sends lastEventId; p50 up to {}) ({}).",
                us(sse),
                us(ws),
                link("faults", &f.extras_anchor)
            ));
        }
    }
    if let Some((_, anchor)) = &f.limit {
        let most_open = f
            .plain_cases(Protocol::H1)
            .iter()
            .map(|c| c.streams_opened)
            .max();
        if let Some(n) = most_open {
            parts.push(format!(
                "SSE over HTTP/1.1 asks the team to keep a browser profile's streams to one host \
                 under {n} (one stream shared by the tabs, another host name, or HTTP/2) ({}).",
                link("limit", anchor)
            ));
        }
    }
    if !f.edge.is_empty() {
        let findings = super::proxy::findings(&f.all_feed);
        parts.push(format!(
            "Behind a proxy, its config matters: {} ({}).",
            if findings.is_empty() {
                "the configs that ran delivered alike".to_string()
            } else {
                format!(
                    "{} finding{} name the config line that fixes a naive setup",
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" }
                )
            },
            link("through a proxy", &f.proxy_anchor)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}
