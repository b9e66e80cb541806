//! "Through a proxy": the same wires direct and through nginx or HAProxy,
//! in one run: what the edge costs (its own memory and CPU, one upstream
//! connection per stream), what it adds to latency, and what a naive
//! config breaks compared with a tuned one, each finding naming the config
//! line that fixes it.
//!
//! Scenarios are matched by their wires: a scenario without an edge is the
//! direct reference; each scenario with one is a target, labelled
//! `<kind> <config>`.

use super::charts;
use super::document::{Block, Chart, Table};
use super::error::ReportError;
use super::format::{bytes, count, cpu_us, us};
use super::latency::latency_of;
use crate::result::{RunResult, ScenarioResult, WireResult};
use crate::wire::Wire;

/// A median latency at least this many times the other's (and
/// [`HELD_BACK_MIN_US`] more) is called held back, not noise: on a busy
/// machine two runs of one config differ by 2 to 3 times.
const HELD_BACK: f64 = 4.0;
const HELD_BACK_MIN_US: u64 = 50_000;
/// A median latency above this (µs) means the run was saturated.
const SATURATED_US: u64 = 250_000;

/// The section's blocks, when the run holds a scenario through an edge.
pub fn blocks(result: &RunResult) -> Result<Vec<Block>, ReportError> {
    let feed: Vec<&ScenarioResult> = result
        .scenarios
        .iter()
        .filter(|s| !s.wires.is_empty())
        .collect();
    if !feed.iter().any(|s| s.server.edge.is_some()) {
        return Ok(Vec::new());
    }
    let mut out = vec![
        Block::Heading(2, "Through a proxy".into()),
        Block::Paragraph(
            "The edge (nginx or HAProxy, started for the run with a generated config) \
             terminates TLS with ALPN h2 and http/1.1 and speaks HTTP/1.1 to the server: the \
             server's hello names only that upstream hop, so `client` is what the load \
             generator's own connections negotiated. Proxy memory and CPU are its processes \
             (master and workers) summed from /proc; upstream/stream is the proxy's TCP \
             connections to the server per open stream."
                .into(),
        ),
        Block::Table(edges(&feed)),
        Block::Table(per_wire(&feed)),
    ];
    let findings = findings(&feed);
    if !findings.is_empty() {
        out.push(Block::Heading(3, "Naive and tuned configs".into()));
        out.push(Block::List(findings));
    }
    out.push(Block::Heading(3, "Charts".into()));
    for chart in charts_of(&feed)? {
        out.push(Block::Chart(chart));
    }
    out.push(Block::Heading(3, "The configs as they ran".into()));
    let mut shown = std::collections::BTreeSet::new();
    for s in &feed {
        let Some(e) = &s.server.edge else {
            continue;
        };
        if shown.insert((e.kind.clone(), e.config.clone())) {
            out.push(Block::Paragraph(format!("{} {}:", e.kind, e.config)));
            out.push(Block::Preformatted(e.config_text.trim_end().to_string()));
        }
    }
    Ok(out)
}

/// `direct`, or `nginx tuned`, `haproxy naive`, `nginx my.conf`.
fn label(s: &ScenarioResult) -> String {
    match &s.server.edge {
        Some(e) => format!("{} {}", e.kind, e.config),
        None => "direct".into(),
    }
}

fn edges(feed: &[&ScenarioResult]) -> Table {
    let mut t = Table::numeric(&[
        "scenario",
        "edge",
        "version",
        "h2 max streams",
        "WebSocket over h2",
    ]);
    for s in feed {
        let Some(e) = &s.server.edge else {
            continue;
        };
        t.rows.push(vec![
            s.scenario.name.clone(),
            format!("{} {}", e.kind, e.config),
            e.version.clone(),
            e.h2_max_concurrent_streams
                .map_or("unlimited".into(), |n| n.to_string()),
            if e.enable_connect_protocol {
                "yes (RFC 8441)".into()
            } else {
                "no".into()
            },
        ]);
    }
    t
}

/// Every wire any scenario ran, in report order.
fn wires_of(feed: &[&ScenarioResult]) -> Vec<Wire> {
    let mut wires: Vec<Wire> = feed
        .iter()
        .flat_map(|s| s.wires.iter().map(|w| w.wire))
        .collect();
    wires.sort();
    wires.dedup();
    wires
}

fn protocols(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn per_wire(feed: &[&ScenarioResult]) -> Table {
    let mut t = Table::numeric(&[
        "wire",
        "through",
        "client",
        "server saw",
        "open/asked",
        "events/s",
        "p50",
        "p99",
        "lost",
        "errors",
        "proxy mem/conn",
        "proxy CPU/event",
        "upstream/stream",
    ]);
    let wires = wires_of(feed);
    for wire in wires {
        for s in feed {
            let Some(w) = s.wires.iter().find(|w| w.wire == wire) else {
                continue;
            };
            let proxy = w.proxy.as_ref();
            t.rows.push(vec![
                wire.to_string(),
                label(s),
                protocols(&w.client_protocols),
                protocols(&w.protocols_seen),
                format!("{}/{}", w.opened, w.connections),
                count(w.events_per_s),
                us(latency_of(w).p50),
                us(latency_of(w).p99),
                w.lost.to_string(),
                w.errors.values().sum::<u64>().to_string(),
                proxy.map_or("-".into(), |p| bytes(p.rss_per_connection)),
                proxy.map_or("-".into(), |p| cpu_us(p.cpu_us_per_event)),
                proxy.map_or("-".into(), |p| format!("{:.2}", p.upstream_per_stream)),
            ]);
        }
    }
    t
}

/// For each edge run with both a naive and a tuned config: what the naive
/// one broke, wire by wire, and the line that fixes it.
pub fn findings(feed: &[&ScenarioResult]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["nginx", "haproxy"] {
        let with = |config: &str| {
            feed.iter().find(|s| {
                s.server
                    .edge
                    .as_ref()
                    .is_some_and(|e| e.kind == kind && e.config == config)
            })
        };
        let (Some(naive), Some(tuned)) = (with("naive"), with("tuned")) else {
            continue;
        };
        let mut said = false;
        for n in &naive.wires {
            let Some(t) = tuned.wires.iter().find(|t| t.wire == n.wire) else {
                continue;
            };
            for finding in compare(kind, n, t) {
                out.push(finding);
                said = true;
            }
        }
        if !said {
            out.push(format!(
                "{kind}: naive and tuned delivered alike on every wire that ran in both \
                 (no upgrade refused, no stream cut or held back)."
            ));
        }
    }
    out
}

fn compare(kind: &str, naive: &WireResult, tuned: &WireResult) -> Vec<String> {
    let wire = naive.wire;
    let mut out = Vec::new();
    let refused: u64 = naive
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("http_4"))
        .map(|(_, v)| v)
        .sum();
    if wire.is_ws() && naive.opened == 0 && refused > 0 && tuned.opened > 0 {
        let fix = match kind {
            "nginx" => "`proxy_http_version 1.1;` with `proxy_set_header Upgrade $http_upgrade;` and `proxy_set_header Connection $connection_upgrade;`",
            _ => "`mode http` (HAProxy then forwards the upgrade itself)",
        };
        out.push(format!(
            "{kind} naive, {wire}: the WebSocket never upgraded ({refused} handshakes refused with \
             4xx; tuned opened {}/{}). Without the upgrade lines nginx speaks HTTP/1.0 upstream and \
             drops `Upgrade`. Fix: {fix}.",
            tuned.opened, tuned.connections
        ));
        return out;
    }
    if naive.opened < naive.connections && tuned.opened > naive.opened {
        let fix = match kind {
            "nginx" => "`worker_processes auto;` and `worker_connections 10000;` (the default is one worker of 512 connections, and each proxied stream takes two)",
            _ => "`maxconn` in `global` and `defaults`",
        };
        out.push(format!(
            "{kind} naive, {wire}: only {}/{} streams opened (tuned {}/{}). Fix: {fix}.",
            naive.opened, naive.connections, tuned.opened, tuned.connections
        ));
    }
    let (np50, tp50) = (latency_of(naive).p50, latency_of(tuned).p50);
    // A tuned run already seconds late was saturated (the machine, or the
    // server): lateness then says nothing about the config.
    let tuned_healthy = tp50 < SATURATED_US;
    if tuned_healthy && np50 as f64 > tp50 as f64 * HELD_BACK && np50 > tp50 + HELD_BACK_MIN_US {
        let fix = match kind {
            "nginx" => "`proxy_buffering off;` (or the response header `X-Accel-Buffering: no`)",
            _ => "HAProxy passes a response on as it comes: look for `compression` on text/event-stream, else rerun on a quieter machine",
        };
        out.push(format!(
            "{kind} naive, {wire}: events held back: p50 {} against {} tuned. Fix: {fix}.",
            us(np50),
            us(tp50)
        ));
    }
    let cut = naive.reconnects + naive.errors.get("closed").copied().unwrap_or(0);
    let cut_tuned = tuned.reconnects + tuned.errors.get("closed").copied().unwrap_or(0);
    // Only with every stream open: refused connections also reconnect.
    if cut > cut_tuned && naive.opened == naive.connections {
        let fix = match kind {
            "nginx" => "`proxy_read_timeout 1h;` (default 60 s), or keep-alives more often than it",
            _ => "`timeout server 1h` and `timeout tunnel 1h` (Debian's sample has 50 s)",
        };
        out.push(format!(
            "{kind} naive, {wire}: {cut} streams cut and reopened (tuned {cut_tuned}). Fix: {fix}."
        ));
    }
    out
}

fn charts_of(feed: &[&ScenarioResult]) -> Result<Vec<Chart>, ReportError> {
    let targets: Vec<String> = feed.iter().map(|s| label(s)).collect();
    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
    let wires = wires_of(feed);
    let groups = |f: &dyn Fn(&WireResult) -> Option<f64>| {
        wires
            .iter()
            .map(|&wire| {
                let values = feed
                    .iter()
                    .map(|s| s.wires.iter().find(|w| w.wire == wire).and_then(f))
                    .collect();
                (wire, values)
            })
            .collect::<Vec<_>>()
    };
    let chart = |file: &str, title: &str, svg: Result<String, String>| {
        super::error::drawn(file.into(), title.into(), svg)
    };
    Ok(vec![
        chart(
            "proxy-latency.svg",
            "p99 latency per wire, direct and through each edge",
            charts::bars(
                &names,
                "p99 latency",
                &groups(&|w| Some(latency_of(w).p99 as f64)),
                |v| us(v as u64),
            ),
        )?,
        chart(
            "proxy-cpu.svg",
            "The proxy's CPU per delivered event, per edge",
            charts::bars(
                &names,
                "proxy CPU µs per event",
                &groups(&|w| w.proxy.as_ref().map(|p| p.cpu_us_per_event)),
                cpu_us,
            ),
        )?,
        chart(
            "proxy-memory.svg",
            "The proxy's memory per connection, per edge",
            charts::bars(
                &names,
                "proxy RSS per connection",
                &groups(&|w| w.proxy.as_ref().map(|p| p.rss_per_connection)),
                bytes,
            ),
        )?,
    ])
}
